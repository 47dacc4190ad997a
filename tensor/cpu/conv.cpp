// CPU conv2d: im2col + BLAS GEMM (OpenBLAS, multi-threaded).
//
// The unfold/fold loops run on the calling thread, deliberately: OpenBLAS (the pthread build)
// has its own thread pool, and alternating an OpenMP region with a BLAS call for every group
// of samples made the two pools fight for the cores (the OpenMP workers spin after their
// region while the BLAS threads wait). Measured on the 2-core CI machine under load, the
// serial unfold was 1.5-4x faster per convolution than the parallel one; the GEMMs, which are
// most of the work, still use every core.
//
// Columns: row r = (c*kH + a)*kW + b of the column matrix holds, for every output position of
// every sample in the current group of samples, the input value the kernel tap (c, a, b) sees
// (0 in the padding). With `ns` samples per GEMM, the matrix is (C*kH*kW, ns*OH*OW), so
//   y_group[o, (s, p)] = W[o, :] @ col[:, (s, p)]      (one GEMM per conv group)
//   dW += dy_group @ col^T,  dcol = W^T @ dy_group, then col2im adds dcol back into dx.
// A 1x1, stride-1, unpadded convolution of one sample reads x directly (no unfold).
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "tensor/ops/conv_kernels.h"
#include "tensor/tensor.h"

namespace cudl::cpu {

namespace {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// Columns per GEMM we aim for: below this, GEMMs of late, small feature maps (e.g. 10x10)
// run far below the BLAS's peak; above it the column buffer only grows.
constexpr int64_t kTargetColumns = 1024;
// Upper bound on the column buffer, in elements (64 MiB of float32).
constexpr int64_t kMaxColumnElems = int64_t(16) << 20;

int64_t samples_per_gemm(const ConvGeometry& g) {
  const int64_t ohw = g.oh * g.ow;
  const int64_t rows = g.c * g.kh * g.kw;
  int64_t ns = (kTargetColumns + ohw - 1) / ohw;
  ns = std::min(ns, std::max<int64_t>(1, kMaxColumnElems / std::max<int64_t>(rows * ohw, 1)));
  return std::clamp<int64_t>(ns, 1, std::max<int64_t>(g.n, 1));
}

bool is_direct(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Output positions j in [lo, hi) read input column j*s + off inside [0, n); the others read
// padding.
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_range(int64_t off, int64_t s, int64_t n, int64_t out) {
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = n - 1 - off >= 0 ? (n - 1 - off) / s + 1 : 0;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// Unfolds samples [n0, n0 + ns) of x into col (C*kH*kW, ns*OH*OW).
template <class T>
void im2col(const ConvGeometry& g, const T* x, int64_t n0, int64_t ns, T* col) {
  const int64_t kk = g.kh * g.kw, rows = g.c * kk, ohw = g.oh * g.ow, ld = ns * ohw;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / kk, a = (r / g.kw) % g.kh, b = r % g.kw;
    for (int64_t s = 0; s < ns; ++s) {
      const T* plane = x + ((n0 + s) * g.c + c) * g.h * g.w;
      T* out = col + r * ld + s * ohw;
      const int64_t off_w = b * g.dw - g.pw;
      const ValidRange vr = valid_range(off_w, g.sw, g.w, g.ow);
      for (int64_t i = 0; i < g.oh; ++i) {
        T* orow = out + i * g.ow;
        const int64_t ih = i * g.sh - g.ph + a * g.dh;
        if (ih < 0 || ih >= g.h) {
          std::fill(orow, orow + g.ow, T(0));
          continue;
        }
        const T* xrow = plane + ih * g.w + off_w;
        std::fill(orow, orow + vr.lo, T(0));
        if (g.sw == 1) {
          std::copy(xrow + vr.lo, xrow + vr.hi, orow + vr.lo);
        } else {
          for (int64_t j = vr.lo; j < vr.hi; ++j) orow[j] = xrow[j * g.sw];
        }
        std::fill(orow + vr.hi, orow + g.ow, T(0));
      }
    }
  }
}

// dx[n0 + s] = the columns folded back (overlapping taps add up), for samples [n0, n0 + ns).
// Taps are added in a fixed order (a, b), so the result is reproducible.
template <class T>
void col2im(const ConvGeometry& g, const T* col, int64_t n0, int64_t ns, T* dx) {
  const int64_t ohw = g.oh * g.ow, ld = ns * ohw;
  for (int64_t s = 0; s < ns; ++s) {
    for (int64_t c = 0; c < g.c; ++c) {
      T* plane = dx + ((n0 + s) * g.c + c) * g.h * g.w;
      std::fill(plane, plane + g.h * g.w, T(0));
      for (int64_t a = 0; a < g.kh; ++a) {
        for (int64_t b = 0; b < g.kw; ++b) {
          const T* in = col + ((c * g.kh + a) * g.kw + b) * ld + s * ohw;
          const int64_t off_w = b * g.dw - g.pw;
          const ValidRange vr = valid_range(off_w, g.sw, g.w, g.ow);
          for (int64_t i = 0; i < g.oh; ++i) {
            const int64_t ih = i * g.sh - g.ph + a * g.dh;
            if (ih < 0 || ih >= g.h) continue;
            T* xrow = plane + ih * g.w + off_w;
            const T* irow = in + i * g.ow;
            for (int64_t j = vr.lo; j < vr.hi; ++j) xrow[j * g.sw] += irow[j];
          }
        }
      }
    }
  }
}

template <class T>
Tensor scratch(int64_t elems) {
  return empty({std::max<int64_t>(elems, 0)}, DTypeOf<T>::value);
}

template <class T>
void forward_impl(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t ohw = g.oh * g.ow, og = g.o / g.groups, krows = (g.c / g.groups) * g.kh * g.kw;
  const int64_t ns_max = samples_per_gemm(g);
  const bool direct = is_direct(g);
  const bool need_col = !(direct && ns_max == 1);
  Tensor col_t = scratch<T>(need_col ? g.c * g.kh * g.kw * ns_max * ohw : 0);
  Tensor tmp_t = scratch<T>(ns_max > 1 ? g.o * ns_max * ohw : 0);
  T* col = need_col ? col_t.data<T>() : nullptr;
  T* tmp = ns_max > 1 ? tmp_t.data<T>() : nullptr;
  for (int64_t n0 = 0; n0 < g.n; n0 += ns_max) {
    const int64_t ns = std::min(ns_max, g.n - n0), ld = ns * ohw;
    const T* cols = x + n0 * g.c * ohw;  // the direct case: x[n0] is its own column matrix
    if (need_col) {
      im2col(g, x, n0, ns, col);
      cols = col;
    }
    // One sample: the GEMM writes y[n0] directly, on top of the bias (beta = 1).
    T* out = ns == 1 ? y + n0 * g.o * ohw : tmp;
    T beta = T(0);
    if (ns == 1 && bias) {
      for (int64_t o = 0; o < g.o; ++o) std::fill(out + o * ohw, out + (o + 1) * ohw, bias[o]);
      beta = T(1);
    }
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm(false, false, og, ld, krows, w + grp * og * krows, krows, cols + grp * krows * ld, ld,
           beta, out + grp * og * ld, ld);
    }
    if (ns > 1) {
      // tmp (O, ns, OH*OW) -> y[n0 + s] (O, OH*OW), adding the bias.
      for (int64_t s = 0; s < ns; ++s) {
        for (int64_t o = 0; o < g.o; ++o) {
          const T* src = tmp + o * ld + s * ohw;
          T* dst = y + ((n0 + s) * g.o + o) * ohw;
          const T add = bias ? bias[o] : T(0);
          for (int64_t p = 0; p < ohw; ++p) dst[p] = src[p] + add;
        }
      }
    }
  }
}

template <class T>
void backward_impl(const ConvGeometry& g, const T* x, const T* w, const T* dy, T* dx, T* dw,
                   T* db) {
  const int64_t ohw = g.oh * g.ow, og = g.o / g.groups, krows = (g.c / g.groups) * g.kh * g.kw;
  if (db) {
    for (int64_t o = 0; o < g.o; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* p = dy + (n * g.o + o) * ohw;
        for (int64_t i = 0; i < ohw; ++i) acc += static_cast<double>(p[i]);
      }
      db[o] = static_cast<T>(acc);
    }
  }
  if (!dx && !dw) return;
  const int64_t ns_max = samples_per_gemm(g);
  const bool direct = is_direct(g);
  const bool need_col = !(direct && ns_max == 1);
  Tensor col_t = scratch<T>(need_col ? g.c * g.kh * g.kw * ns_max * ohw : 0);
  Tensor tmp_t = scratch<T>(ns_max > 1 ? g.o * ns_max * ohw : 0);
  T* col = need_col ? col_t.data<T>() : nullptr;
  T* tmp = ns_max > 1 ? tmp_t.data<T>() : nullptr;
  for (int64_t n0 = 0; n0 < g.n; n0 += ns_max) {
    const int64_t ns = std::min(ns_max, g.n - n0), ld = ns * ohw;
    // dy of the group as (O, ns*OH*OW).
    const T* dyc = dy + n0 * g.o * ohw;
    if (ns > 1) {
      for (int64_t s = 0; s < ns; ++s) {
        for (int64_t o = 0; o < g.o; ++o) {
          const T* src = dy + ((n0 + s) * g.o + o) * ohw;
          std::copy(src, src + ohw, tmp + o * ld + s * ohw);
        }
      }
      dyc = tmp;
    }
    if (dw) {
      const T* cols = x + n0 * g.c * ohw;
      if (need_col) {
        im2col(g, x, n0, ns, col);
        cols = col;
      }
      const T beta = n0 == 0 ? T(0) : T(1);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        gemm(false, true, og, krows, ld, dyc + grp * og * ld, ld, cols + grp * krows * ld, ld, beta,
             dw + grp * og * krows, krows);
      }
    }
    if (dx) {
      // dcol = W^T @ dy; in the direct case dcol is dx[n0] itself.
      T* dcol = need_col ? col : dx + n0 * g.c * ohw;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        gemm(true, false, krows, ld, og, w + grp * og * krows, krows, dyc + grp * og * ld, ld, T(0),
             dcol + grp * krows * ld, ld);
      }
      if (need_col) col2im(g, col, n0, ns, dx);
    }
  }
}

}  // namespace

void conv2d_forward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y, bool /*benchmark*/, bool /*allow_tf32*/) {
  CUDL_DISPATCH_FLOATING(dtype, "conv2d", [&] {
    forward_impl(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w),
                 static_cast<const scalar_t*>(bias), static_cast<scalar_t*>(y));
  });
}

void conv2d_backward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                     const void* dy, void* dx, void* dw, void* db, bool /*benchmark*/,
                     bool /*allow_tf32*/) {
  CUDL_DISPATCH_FLOATING(dtype, "conv2d backward", [&] {
    backward_impl(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w),
                  static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx),
                  static_cast<scalar_t*>(dw), static_cast<scalar_t*>(db));
  });
}

}  // namespace cudl::cpu
