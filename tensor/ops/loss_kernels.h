// Launchers of the loss kernels (tensor/ops/loss.h), one set per backend with the same
// arguments; the CUDA ones take the stream first. Raw pointers to contiguous memory; shapes
// and dtypes were checked by the op.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

#define CUDL_LOSS_KERNELS(STREAM_ARG)                                                           \
  /* BCE-with-logits over n = rows * c elements, class = i % c. pos_weight: c values or null. \
     One pass computes, per element, the loss and d loss_i / d x_i:                          \
       loss: n values (reduction none), or null;                                              \
       grad: n values, the derivative times grad_scale, or null (no gradient needed);         \
       sum:  one value = sum_scale * sum_i loss_i (reduction mean or sum), or null.           \
     The sum is accumulated in double in a fixed order, so it does not depend on threads. */ \
  void bce_with_logits(STREAM_ARG DType dtype, int64_t n, int64_t c, const void* x,           \
                       const void* y, const void* pos_weight, void* loss, void* grad,         \
                       double grad_scale, void* sum, double sum_scale);                       \
  /* Softmax cross-entropy, logits (rows, c), target (rows) int64 class indices, weight: c    \
     values or null. Per row i with w_i = weight[target_i] (1 without weights):              \
       loss: rows values w_i * (logsumexp(x_i) - x_i[target_i]), or null;                     \
       grad: (rows, c) values w_i * (softmax(x_i) - onehot(target_i)), or null;               \
       sums: two values {sum_i w_i * loss_i, sum_i w_i}, or null.                             \
     A target outside [0, c) makes that row's loss and gradient NaN (the op checks targets   \
     on the CPU before calling; on CUDA the NaN is how the error surfaces without a sync). */ \
  void cross_entropy(STREAM_ARG DType dtype, int64_t rows, int64_t c, const void* logits,     \
                     const int64_t* target, const void* weight, void* loss, void* grad,       \
                     void* sums);

namespace cpu {
CUDL_LOSS_KERNELS()
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_LOSS_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
}  // namespace cuda
#endif

#undef CUDL_LOSS_KERNELS

}  // namespace cudl
