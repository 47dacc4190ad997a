// CPU pooling: loops over the shared per-element formulas of pool_kernels.h.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/cpu/isa.h"
#include "tensor/cpu/widen.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

CUDL_CPU_KERNELS_BEGIN

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

template <class T>
void scatter_plane(const T* gy, const int64_t* a, int64_t out_plane, int64_t in_plane, T* d) {
  std::fill(d, d + in_plane, T(0));
  for (int64_t o = 0; o < out_plane; ++o) d[a[o]] += gy[o];
}

// bfloat16: add in float, round once (the sums pool::max_grad_at makes).
void scatter_plane(const bfloat16* gy, const int64_t* a, int64_t out_plane, int64_t in_plane,
                   bfloat16* d) {
  std::vector<float> acc(static_cast<size_t>(in_plane), 0.0f);
  for (int64_t o = 0; o < out_plane; ++o) acc[a[o]] += gy[o];
  for (int64_t k = 0; k < in_plane; ++k) d[k] = acc[k];
}

// Channels-last max pooling of output row i of one sample (x, y, arg: the sample's (h, w, C),
// (oh, ow, C) arrays): each output takes its window's taps in pool::max_window's order and
// rule (the first in-bounds tap's position, then a strictly larger value or a NaN replaces),
// for all C channels at once, so the inner loop runs over neighbouring channels.
template <class T>
void max_pool_row_cl(const PoolGeometry& g, const T* x, T* y, int64_t* arg, int64_t i,
                     std::vector<int32_t>& arg32) {
  const int64_t c = g.channels, h0 = i * g.sh - g.ph;
  const bool fast = g.h * g.w <= INT32_MAX;
  for (int64_t j = 0; j < g.ow; ++j) {
    const int64_t w0 = j * g.sw - g.pw;
    T* yo = y + (i * g.ow + j) * c;
    int64_t* ao = arg + (i * g.ow + j) * c;
    if (!fast) {
      for (int64_t ch = 0; ch < c; ++ch) pool::max_window(g, x + ch, i, j, yo + ch, ao + ch);
      continue;
    }
    const int32_t first =
        static_cast<int32_t>(pool::first_inside(h0, g.dh) * g.w + pool::first_inside(w0, g.dw));
    for (int64_t ch = 0; ch < c; ++ch) {
      yo[ch] = -static_cast<T>(INFINITY);
      arg32[ch] = first;
    }
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t ih = h0 + a * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t b = 0; b < g.kw; ++b) {
        const int64_t iw = w0 + b * g.dw;
        if (iw < 0 || iw >= g.w) continue;
        const int32_t at = static_cast<int32_t>(ih * g.w + iw);
        const T* src = x + at * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const T v = src[ch], best = yo[ch];
          const bool take = v > best || v != v;
          yo[ch] = take ? v : best;
          arg32[ch] = take ? at : arg32[ch];
        }
      }
    }
    for (int64_t ch = 0; ch < c; ++ch) ao[ch] = arg32[ch];
  }
}

// Channels-last scatter of one sample: dx = 0, then each output's gradient added at its argmax,
// outputs in row-major order per channel (the order scatter_plane and pool::max_grad_at add
// in). bfloat16 adds in float and rounds once.
template <class T>
void scatter_sample_cl(const PoolGeometry& g, const T* gy, const int64_t* a, T* d) {
  using Acc = compute_t<T>;
  const int64_t c = g.channels, in_size = g.h * g.w * c, out_size = g.oh * g.ow * c;
  auto add_all = [&](Acc* acc) {
    std::fill(acc, acc + in_size, Acc(0));
    for (int64_t o = 0; o < out_size; o += c)
      for (int64_t ch = 0; ch < c; ++ch) acc[a[o + ch] * c + ch] += Acc(gy[o + ch]);
  };
  if constexpr (std::is_same_v<Acc, T>) {
    add_all(d);
  } else {
    std::vector<Acc> acc(static_cast<size_t>(in_size));
    add_all(acc.data());
    for (int64_t k = 0; k < in_size; ++k) d[k] = T(acc[k]);
  }
}

}  // namespace

void max_pool2d_forward(DType dtype, const PoolGeometry& g, const void* x, void* y,
                        int64_t* argmax) {
  detail::count_kernel_call(kThisCopy);
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
    if (g.channels > 0) {  // channels-last: (sample, output row) tasks
      const int64_t c = g.channels, samples = g.planes / c;
      parallel_for(0, samples * g.oh, 1, [&](int64_t begin, int64_t end) {
        std::vector<int32_t> arg32(static_cast<size_t>(c));
        for (int64_t t = begin; t < end; ++t) {
          const int64_t s = t / g.oh;
          max_pool_row_cl(g, px + s * in_plane * c, py + s * out_plane * c,
                          argmax + s * out_plane * c, t % g.oh, arg32);
        }
      });
      return;
    }
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        max_pool_plane(g, px + p * in_plane, py + p * out_plane, argmax + p * out_plane);
    });
  });
}

// Scatter: each output adds its gradient at its argmax, in row-major output order, which is
// the order pool::max_grad_at (the CUDA kernel's gather) adds them in: the same sums, bit for
// bit, in one pass over the outputs instead of a window search per input element.
void max_pool2d_backward(DType dtype, const PoolGeometry& g, const void* dy, const int64_t* argmax,
                         void* dx) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "max_pool2d backward", [&] {
    const auto* pdy = static_cast<const scalar_t*>(dy);
    auto* pdx = static_cast<scalar_t*>(dx);
    const int64_t out_plane = g.oh * g.ow, in_plane = g.h * g.w;
    if (g.channels > 0) {  // channels-last: one task per sample
      const int64_t c = g.channels;
      parallel_for(0, g.planes / c, 1, [&](int64_t begin, int64_t end) {
        for (int64_t s = begin; s < end; ++s)
          scatter_sample_cl(g, pdy + s * out_plane * c, argmax + s * out_plane * c,
                            pdx + s * in_plane * c);
      });
      return;
    }
    parallel_for(0, g.planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        scatter_plane(pdy + p * out_plane, argmax + p * out_plane, out_plane, in_plane,
                      pdx + p * in_plane);
    });
  });
}

void global_max_pool_forward(DType dtype, int64_t planes, int64_t hw, const void* x, void* y,
                             int64_t* argmax, int64_t channels) {
  detail::count_kernel_call(kThisCopy);
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
  detail::count_kernel_call(kThisCopy);
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

CUDL_CPU_KERNELS_END

#if !defined(CUDL_CPU_AVX2_COPY)
namespace cudl::cpu {

void max_pool2d_forward(DType dtype, const PoolGeometry& g, const void* x, void* y,
                        int64_t* argmax) {
  CUDL_CPU_KERNEL_CALL(max_pool2d_forward, dtype, g, x, y, argmax);
}

void max_pool2d_backward(DType dtype, const PoolGeometry& g, const void* dy, const int64_t* argmax,
                         void* dx) {
  CUDL_CPU_KERNEL_CALL(max_pool2d_backward, dtype, g, dy, argmax, dx);
}

void global_max_pool_forward(DType dtype, int64_t planes, int64_t hw, const void* x, void* y,
                             int64_t* argmax, int64_t channels) {
  CUDL_CPU_KERNEL_CALL(global_max_pool_forward, dtype, planes, hw, x, y, argmax, channels);
}

void global_max_pool_backward(DType dtype, int64_t planes, int64_t hw, const void* dy,
                              const int64_t* argmax, void* dx, int64_t channels) {
  CUDL_CPU_KERNEL_CALL(global_max_pool_backward, dtype, planes, hw, dy, argmax, dx, channels);
}

}  // namespace cudl::cpu
#endif
