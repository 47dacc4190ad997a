// Geometry shared by the sliding-window ops (convolution and pooling) on both backends.
//
// A window of size k with dilation d covers d*(k-1)+1 input positions; with padding p on both
// sides and stride s, an input of size n gives floor((n + 2p - d*(k-1) - 1) / s) + 1 outputs
// (PyTorch's formula, ceil_mode off). Output position o reads input positions
// o*s - p + i*d for i in [0, k); positions outside [0, n) are padding.
#pragma once

#include <cstdint>

#include "tensor/macros.h"

namespace cudl {

// A (height, width) pair of window parameters. Implicit from one value, as in PyTorch's
// `kernel_size=3` meaning (3, 3).
struct Size2 {
  int64_t h = 0, w = 0;
  Size2() = default;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  bool operator==(const Size2& o) const { return h == o.h && w == o.w; }
  bool operator!=(const Size2& o) const { return !(*this == o); }
};

CUDL_HOST_DEVICE_INLINE int64_t window_out_size(int64_t in, int64_t k, int64_t s, int64_t p,
                                                int64_t d) {
  const int64_t span = d * (k - 1) + 1;
  return in + 2 * p < span ? 0 : (in + 2 * p - span) / s + 1;
}

// The geometry of one 2-D convolution: x (n, c, h, w), weight (o, c/groups, kh, kw),
// y (n, o, oh, ow). Plain data, passed by value to the launchers of both backends.
struct ConvGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t o = 0, kh = 0, kw = 0;       // filters
  int64_t oh = 0, ow = 0;              // output
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t groups = 1;
  // x, y and their gradients are channels-last (NHWC memory). The weight and its gradient are
  // (O, kH, kW, C/groups) in memory on CUDA (cuDNN's NHWC filters), row-major OIHW on the CPU
  // (whose kernels run row-major on converted activations, see conv.h).
  bool channels_last = false;
};

}  // namespace cudl
