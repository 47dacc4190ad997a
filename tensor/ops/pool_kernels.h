// Pooling kernels (see pool.h): the per-element formulas shared by the CPU loops and the CUDA
// kernels, and the launchers of both backends (the CUDA ones take the stream first).
// A "plane" is one (n, c) image of h*w elements; plane p is (n, c) = (p / C, p % C). Arrays are
// dense, row-major (planes one after the other) or, when `channels` > 0, channels-last: the
// planes of a sample interleaved, element k of plane p at (p / C) * hw * C + k * C + p % C.
// argmax holds, per output, the index ih*w + iw of the winning input inside its plane
// (PyTorch's `indices`), laid out as y is (so channels-last kernels read and write it in the
// same coalesced order as y).
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/macros.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

struct PoolGeometry {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t channels = 0;  // > 0: channels-last memory with this many channels (C)
};

namespace pool {

// The step between neighbouring elements of a plane.
CUDL_HOST_DEVICE_INLINE int64_t plane_step(int64_t channels) {
  return channels > 0 ? channels : 1;
}

// Where plane p's first element lies in an array of planes of `size` elements.
CUDL_HOST_DEVICE_INLINE int64_t plane_base(int64_t p, int64_t size, int64_t channels) {
  return channels > 0 ? (p / channels) * size * channels + p % channels : p * size;
}

// The plane p and the in-plane index k of the element at memory position e (the inverse of
// plane_base(p) + k * plane_step).
CUDL_HOST_DEVICE_INLINE void locate(int64_t e, int64_t size, int64_t channels, int64_t* p,
                                    int64_t* k) {
  if (channels > 0) {
    *p = e / (size * channels) * channels + e % channels;
    *k = e / channels % size;
  } else {
    *p = e / size;
    *k = e % size;
  }
}

// First in-bounds tap of a window starting at `start` (may be negative) with dilation d.
CUDL_HOST_DEVICE_INLINE int64_t first_inside(int64_t start, int64_t d) {
  while (start < 0) start += d;
  return start;
}

// Max of output (i, j) of one plane (its first element at `plane`) and its argmax. Like
// PyTorch: start from -inf at the first in-bounds tap, replace on a strictly larger value or a
// NaN.
template <class T>
CUDL_HOST_DEVICE_INLINE void max_window(const PoolGeometry& g, const T* plane, int64_t i, int64_t j,
                                        T* out, int64_t* arg) {
  const int64_t h0 = i * g.sh - g.ph, w0 = j * g.sw - g.pw, step = plane_step(g.channels);
  T best = -static_cast<T>(INFINITY);
  int64_t best_at = first_inside(h0, g.dh) * g.w + first_inside(w0, g.dw);
  for (int64_t a = 0; a < g.kh; ++a) {
    const int64_t ih = h0 + a * g.dh;
    if (ih < 0 || ih >= g.h) continue;
    for (int64_t b = 0; b < g.kw; ++b) {
      const int64_t iw = w0 + b * g.dw;
      if (iw < 0 || iw >= g.w) continue;
      const T v = plane[(ih * g.w + iw) * step];
      if (v > best || v != v) {
        best = v;
        best_at = ih * g.w + iw;
      }
    }
  }
  *out = best;
  *arg = best_at;
}

// dL/dx at input (ih, iw) of one plane: the sum of dy over the outputs whose argmax is this
// position, visited in row-major output order (so every backend adds in the same order).
// dy_plane, arg_plane: the plane's first gradient and argmax (both in the layout of g).
template <class T>
CUDL_HOST_DEVICE_INLINE T max_grad_at(const PoolGeometry& g, const T* dy_plane,
                                      const int64_t* arg_plane, int64_t ih, int64_t iw) {
  // Output i covers ih when i*sh - ph + a*dh == ih for some a in [0, kh).
  const int64_t nh = ih + g.ph - (g.kh - 1) * g.dh, nw = iw + g.pw - (g.kw - 1) * g.dw;
  const int64_t i_lo = nh <= 0 ? 0 : (nh + g.sh - 1) / g.sh;
  const int64_t j_lo = nw <= 0 ? 0 : (nw + g.sw - 1) / g.sw;
  const int64_t i_hi = (ih + g.ph) / g.sh < g.oh - 1 ? (ih + g.ph) / g.sh : g.oh - 1;
  const int64_t j_hi = (iw + g.pw) / g.sw < g.ow - 1 ? (iw + g.pw) / g.sw : g.ow - 1;
  const int64_t me = ih * g.w + iw, step = plane_step(g.channels);
  compute_t<T> acc = 0;  // float for bfloat16: rounded once, at the end
  for (int64_t i = i_lo; i <= i_hi; ++i)
    for (int64_t j = j_lo; j <= j_hi; ++j)
      if (arg_plane[(i * g.ow + j) * step] == me)
        acc += compute_t<T>(dy_plane[(i * g.ow + j) * step]);
  return T(acc);
}

// Max over a whole plane of hw elements `step` apart and its argmax (same rule as max_window).
template <class T>
CUDL_HOST_DEVICE_INLINE void max_plane(const T* plane, int64_t hw, int64_t step, T* out,
                                       int64_t* arg) {
  T best = -static_cast<T>(INFINITY);
  int64_t best_at = 0;
  for (int64_t k = 0; k < hw; ++k) {
    const T v = plane[k * step];
    if (v > best || v != v) {
      best = v;
      best_at = k;
    }
  }
  *out = best;
  *arg = best_at;
}

}  // namespace pool

#define CUDL_POOL_KERNELS(STREAM_ARG)                                                             \
  /* x (planes, h, w) -> y, argmax (planes, oh, ow), all in g's layout */                         \
  void max_pool2d_forward(STREAM_ARG DType dtype, const PoolGeometry& g, const void* x, void* y,  \
                          int64_t* argmax);                                                       \
  /* dy, argmax (planes, oh, ow) -> dx (planes, h, w), every element written */                   \
  void max_pool2d_backward(STREAM_ARG DType dtype, const PoolGeometry& g, const void* dy,         \
                           const int64_t* argmax, void* dx);                                      \
  /* x (planes, hw) in the layout of `channels` (as PoolGeometry's) -> y, argmax (planes) */      \
  void global_max_pool_forward(STREAM_ARG DType dtype, int64_t planes, int64_t hw, const void* x, \
                               void* y, int64_t* argmax, int64_t channels);                       \
  /* dy, argmax (planes) -> dx (planes, hw) in the layout of `channels`, every element written */ \
  void global_max_pool_backward(STREAM_ARG DType dtype, int64_t planes, int64_t hw,               \
                                const void* dy, const int64_t* argmax, void* dx,                  \
                                int64_t channels);

namespace cpu {
CUDL_POOL_KERNELS()
// The compiled copies the launchers above call (tensor/cpu/isa.h).
namespace baseline {
CUDL_POOL_KERNELS()
}
namespace avx2 {
CUDL_POOL_KERNELS()
}
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_POOL_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
}  // namespace cuda
#endif

#undef CUDL_POOL_KERNELS

}  // namespace cudl
