// Batch normalisation over the channel dim (dim 1) with autograd, PyTorch's semantics.
//
//   x (N, C), (N, C, L) or (N, C, H, W); weight, bias, running_mean, running_var (C,)
//   M = N * (number of elements per channel and sample), statistics per channel c:
//   training:  mean = sum(x) / M,  var = sum((x - mean)^2) / M   (biased, used to normalise)
//              running_mean <- (1 - momentum) * running_mean + momentum * mean
//              running_var  <- (1 - momentum) * running_var + momentum * var * M / (M - 1)
//              (the running variance takes the unbiased estimate, as PyTorch does)
//   eval:      mean = running_mean, var = running_var (nothing is updated)
//   y = (x - mean) / sqrt(var + eps) * weight + bias
//
// Gradients (training, xhat = (x - mean) * invstd, invstd = 1 / sqrt(var + eps)):
//   dbias = sum(dy), dweight = sum(dy * xhat),
//   dx = weight * invstd / M * (M * dy - dbias - xhat * dweight)
// In eval mode the statistics are constants: dx = dy * weight * invstd.
//
// weight/bias may be undefined (affine = false: 1 and 0). In training the running statistics
// may be undefined (no tracking); when given they are updated in place, outside autograd, and
// must be contiguous (C,) tensors on x's device. Parameters and statistics have x's compute
// dtype: x's own, or float32 for bfloat16 activations (mixed precision; y and dx are bfloat16,
// dweight and dbias float32). Training needs M > 1.
//
// Memory format: a channels-last (N, C, H, W) input gives a channels-last output and input
// gradient (the same values as for the row-major input); any other input is read row-major.
//
// CUDA: cuDNN's spatial batch norm for float32/float64 (forward training with running averages,
// forward inference, backward); cudl's own kernels for bfloat16 (the CPU formulas, statistics in
// double); the eval-mode backward is the plain formula above in cudl ops. CPU: own kernels,
// statistics accumulated in double.
#pragma once

#include "tensor/tensor.h"

namespace cudl {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);

// batch_norm with an epilogue in the same pass: y = relu(batch_norm(x) + residual), the add
// when residual is defined (x's shape, dtype and device), the ReLU when relu. The results equal
// those of the separate ops (bfloat16 rounds after each step as they do), while the
// intermediates are neither written nor kept for the backward pass: the gradient is masked by
// y > 0 and handed to both batch norm and the residual. ResNet's blocks use it for bn1 + ReLU
// and bn2 + identity + ReLU.
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      double momentum, double eps, const Tensor& residual, bool relu);

// counter += 1 for an int64 tensor with one element (BatchNorm's num_batches_tracked), on its
// own device without a host round trip.
void increment_counter_(Tensor& counter);

}  // namespace cudl
