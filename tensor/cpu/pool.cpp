// CPU pooling: loops over the shared per-element formulas of pool_kernels.h.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "tensor/cpu/widen.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl::cpu {

namespace {

// One tap of a row of windows: for outputs j < n, the input at src[j * stride] replaces the
// running maximum best[j] (and arg[j] := at0 + j * stride) when larger or NaN: pool::max_window's
// rule. Written so the compiler vectorises it (no branch, 32-bit indices, a compile-time
// stride for the common 1 and 2).
template <class T, int64_t kStride>
void max_tap(const T* __restrict__ src, int64_t stride, T* __restrict__ best,
             int32_t* __restrict__ arg, int32_t at0, int64_t n) {
  const int64_t st = kStride > 0 ? kStride : stride;
  for (int64_t j = 0; j < n; ++j) {
    const T v = src[j * st];
    const T b = best[j];
    const bool take = v > b || v != v;
    best[j] = take ? v : b;
    arg[j] = take ? at0 + static_cast<int32_t>(j * st) : arg[j];
  }
}

// One plane of max pooling. Windows that lie wholly inside the plane (all but a border of
// outputs) take a loop without bounds checks; it applies pool::max_window's rule exactly
// (first tap, then replace on a strictly larger value or a NaN), so every output and argmax is
// the same as the shared formula gives, which the border outputs still use.
template <class T>
void max_pool_plane(const PoolGeometry& g, const T* plane, T* y, int64_t* arg) {
  // Columns j whose window [j*sw - pw, j*sw - pw + (kw-1)*dw] is inside [0, w).
  const int64_t span_w = (g.kw - 1) * g.dw;
  int64_t j_lo = (g.pw + g.sw - 1) / g.sw;
  int64_t j_hi = g.w - 1 - span_w + g.pw >= 0 ? (g.w - 1 - span_w + g.pw) / g.sw + 1 : 0;
  j_lo = std::min(j_lo, g.ow);
  j_hi = std::clamp(j_hi, j_lo, g.ow);
  // The fast loop keeps indices in 32 bits: planes beyond 2^31 elements all take the general
  // formula.
  const bool fast = g.h * g.w <= INT32_MAX;
  std::vector<int32_t> arg32(g.ow);
  for (int64_t i = 0; i < g.oh; ++i) {
    const int64_t h0 = i * g.sh - g.ph;
    T* yrow = y + i * g.ow;
    int64_t* arow = arg + i * g.ow;
    const bool rows_inside = fast && h0 >= 0 && h0 + (g.kh - 1) * g.dh < g.h;
    const int64_t lo = rows_inside ? j_lo : g.ow, hi = rows_inside ? j_hi : g.ow;
    for (int64_t j = 0; j < lo; ++j) pool::max_window(g, plane, i, j, yrow + j, arow + j);
    // Taps in the outer loop, outputs in the inner one: the outputs of a row are independent,
    // so the loop vectorises. The first tap starts each window (as in max_window).
    const int64_t base = h0 * g.w - g.pw;
    for (int64_t j = lo; j < hi; ++j) {
      yrow[j] = plane[base + j * g.sw];
      arg32[j] = static_cast<int32_t>(base + j * g.sw);
    }
    for (int64_t a = 0; a < g.kh; ++a) {
      for (int64_t b = a == 0 ? 1 : 0; b < g.kw; ++b) {
        const int64_t off = base + a * g.dh * g.w + b * g.dw + lo * g.sw;
        const T* src = plane + off;
        const int32_t at0 = static_cast<int32_t>(off);
        if (g.sw == 1) {
          max_tap<T, 1>(src, 1, yrow + lo, arg32.data() + lo, at0, hi - lo);
        } else if (g.sw == 2) {
          max_tap<T, 2>(src, 2, yrow + lo, arg32.data() + lo, at0, hi - lo);
        } else {
          max_tap<T, 0>(src, g.sw, yrow + lo, arg32.data() + lo, at0, hi - lo);
        }
      }
    }
    for (int64_t j = lo; j < hi; ++j) arow[j] = arg32[j];
    for (int64_t j = std::max(hi, lo); j < g.ow; ++j)
      pool::max_window(g, plane, i, j, yrow + j, arow + j);
  }
}

// One plane's input gradient: zero, then each output's gradient added at its argmax. The
// plane's elements are `step` apart in gy, a and d (1 row-major, C channels-last).
template <class T>
void scatter_plane(const T* gy, const int64_t* a, int64_t out_plane, int64_t in_plane, T* d,
                   int64_t step) {
  for (int64_t k = 0; k < in_plane; ++k) d[k * step] = T(0);
  for (int64_t o = 0; o < out_plane; ++o) d[a[o * step] * step] += gy[o * step];
}

// bfloat16: add in float, round once (the sums pool::max_grad_at makes).
void scatter_plane(const bfloat16* gy, const int64_t* a, int64_t out_plane, int64_t in_plane,
                   bfloat16* d, int64_t step) {
  std::vector<float> acc(static_cast<size_t>(in_plane), 0.0f);
  for (int64_t o = 0; o < out_plane; ++o) acc[a[o * step]] += gy[o * step];
  for (int64_t k = 0; k < in_plane; ++k) d[k * step] = acc[k];
}

// Channels-last max pooling of one plane: the shared formula at every output (the row-major
// planes take the vectorised max_pool_plane).
template <class T>
void max_pool_plane_strided(const PoolGeometry& g, const T* plane, T* y, int64_t* arg) {
  const int64_t step = pool::plane_step(g.channels);
  for (int64_t i = 0; i < g.oh; ++i)
    for (int64_t j = 0; j < g.ow; ++j)
      pool::max_window(g, plane, i, j, y + (i * g.ow + j) * step, arg + (i * g.ow + j) * step);
}

}  // namespace

void max_pool2d_forward(DType dtype, const PoolGeometry& g, const void* x, void* y,
                        int64_t* argmax) {
  if (dtype == kBFloat16) {  // the vectorised float loops, then exact narrowing (widen.h)
    const Tensor xf = widen(x, g.planes * g.h * g.w);
    const Tensor yf = float_buffer(y, g.planes * g.oh * g.ow);
    max_pool2d_forward(kFloat32, g, data_or_null(xf), data_or_null(yf), argmax);
    narrow(yf, y);
    return;
  }
  CUDL_DISPATCH_FLOATING_BF16(dtype, "max_pool2d", [&] {
    const auto* px = static_cast<const scalar_t*>(x);
    auto* py = static_cast<scalar_t*>(y);
    const int64_t out_plane = g.oh * g.ow, in_plane = g.h * g.w;
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const scalar_t* xp = px + pool::plane_base(p, in_plane, g.channels);
        const int64_t out_base = pool::plane_base(p, out_plane, g.channels);
        if (g.channels > 0) {
          max_pool_plane_strided(g, xp, py + out_base, argmax + out_base);
        } else {
          max_pool_plane(g, xp, py + out_base, argmax + out_base);
        }
      }
    });
  });
}

// Scatter: each output adds its gradient at its argmax, in row-major output order, which is
// the order pool::max_grad_at (the CUDA kernel's gather) adds them in: the same sums, bit for
// bit, in one pass over the outputs instead of a window search per input element.
void max_pool2d_backward(DType dtype, const PoolGeometry& g, const void* dy, const int64_t* argmax,
                         void* dx) {
  CUDL_DISPATCH_FLOATING_BF16(dtype, "max_pool2d backward", [&] {
    const auto* pdy = static_cast<const scalar_t*>(dy);
    auto* pdx = static_cast<scalar_t*>(dx);
    const int64_t out_plane = g.oh * g.ow, in_plane = g.h * g.w;
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        scalar_t* d = pdx + pool::plane_base(p, in_plane, g.channels);
        const int64_t out_base = pool::plane_base(p, out_plane, g.channels);
        const scalar_t* gy = pdy + out_base;
        const int64_t* a = argmax + out_base;
        scatter_plane(gy, a, out_plane, in_plane, d, pool::plane_step(g.channels));
      }
    });
  });
}

void global_max_pool_forward(DType dtype, int64_t planes, int64_t hw, const void* x, void* y,
                             int64_t* argmax, int64_t channels) {
  CUDL_DISPATCH_FLOATING_BF16(dtype, "global_max_pool2d", [&] {
    const auto* px = static_cast<const scalar_t*>(x);
    auto* py = static_cast<scalar_t*>(y);
    parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t p = begin; p < end; ++p)
                     pool::max_plane(px + pool::plane_base(p, hw, channels), hw,
                                     pool::plane_step(channels), py + p, argmax + p);
                 });
  });
}

void global_max_pool_backward(DType dtype, int64_t planes, int64_t hw, const void* dy,
                              const int64_t* argmax, void* dx, int64_t channels) {
  CUDL_DISPATCH_FLOATING_BF16(dtype, "global_max_pool2d backward", [&] {
    const auto* pdy = static_cast<const scalar_t*>(dy);
    auto* pdx = static_cast<scalar_t*>(dx);
    parallel_for(0, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(hw, 1)),
                 [&](int64_t begin, int64_t end) {
                   const int64_t step = pool::plane_step(channels);
                   for (int64_t p = begin; p < end; ++p) {
                     scalar_t* d = pdx + pool::plane_base(p, hw, channels);
                     for (int64_t k = 0; k < hw; ++k)
                       d[k * step] = k == argmax[p] ? pdy[p] : scalar_t(0);
                   }
                 });
  });
}

}  // namespace cudl::cpu
