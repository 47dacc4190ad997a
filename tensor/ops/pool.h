// 2-D pooling with autograd.
//
//   max_pool2d(x, kernel, stride, padding, dilation): x (N, C, H, W) -> (N, C, OH, OW),
//     y[n, c, i, j] = max over the window of output (i, j) (padding never wins; OH, OW from
//     window_out_size, ceil_mode off). The position of the maximum is kept (the first one in
//     row-major window order; a NaN propagates, as in PyTorch) and dx receives dy there only.
//     Needs padding <= kernel / 2 (PyTorch's rule, so every window sees the image).
//   global_max_pool2d(x): (N, C, H, W) -> (N, C, 1, 1), max over H and W; the gradient goes to
//     the position of the maximum (first one; = adaptive_max_pool2d(x, 1)).
//   global_avg_pool2d(x): (N, C, H, W) -> (N, C, 1, 1), mean over H and W; dx = dy / (H*W)
//     everywhere (= adaptive_avg_pool2d(x, 1)).
//
// A channels-last input gives a channels-last result and input gradient, with the same values
// (the kernels read either layout in place).
//
// Both backends run cudl's own kernels, whose per-element formulas live in pool_kernels.h
// and are shared by the CPU loops and the CUDA kernels. We do not use cuDNN's max pooling:
// its backward recomputes the winner from x and y with an undocumented tie rule, while these
// kernels keep PyTorch's argmax and route gradients exactly like PyTorch and the CPU twin.
// The backward passes gather (one thread per input element), so they are deterministic.
#pragma once

#include "tensor/ops/conv_geometry.h"
#include "tensor/tensor.h"

namespace cudl {

Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding = 0,
                  Size2 dilation = 1);
Tensor global_max_pool2d(const Tensor& x);
Tensor global_avg_pool2d(const Tensor& x);

}  // namespace cudl
