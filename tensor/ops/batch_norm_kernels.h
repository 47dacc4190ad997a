// Launchers of batch_norm (see batch_norm.h), one per backend with the same arguments; the
// CUDA ones take the stream first. x, y, dy, dx are contiguous (n, c, s) arrays (s = elements
// per channel and sample); weight, bias, the statistics and their gradients are (c,).
// save_mean / save_invstd receive the batch mean and 1/sqrt(var + eps) for the backward pass.
// running_mean / running_var are both null (not tracked) or both set (updated in place).
// x, y, dy, dx have `dtype`; weight, bias, the statistics and dweight, dbias have
// compute_dtype(dtype) (float32 for bfloat16 activations, as cuDNN and PyTorch keep them).
// The forward launchers end with an epilogue (batch_norm_act): y = bn(x), then + residual when
// residual is not null (an (n, c, s) array of `dtype`), then ReLU when relu; each step rounds
// to `dtype` as the separate ops would, so the results equal bn, add and relu one after another.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/macros.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

namespace bn {
// The epilogue of one output: v = bn(x) in the compute type; rounded to T, plus the residual
// (rounded again), then ReLU (x > 0 ? x : 0, as the ReLU op: NaN becomes 0).
template <class T>
CUDL_HOST_DEVICE_INLINE T epilogue(compute_t<T> v, const T* residual, int64_t at, bool relu) {
  T t = T(v);
  if (residual) t = T(compute_t<T>(t) + compute_t<T>(residual[at]));
  if (relu && !(compute_t<T>(t) > compute_t<T>(0))) t = T(0);
  return t;
}
}  // namespace bn

#define CUDL_BATCH_NORM_KERNELS(STREAM_ARG)                                                       \
  void batch_norm_forward_train(STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s,          \
                                const void* x, const void* weight, const void* bias, void* y,     \
                                void* save_mean, void* save_invstd, void* running_mean,           \
                                void* running_var, double momentum, double eps,                   \
                                const void* residual, bool relu);                                 \
  void batch_norm_forward_eval(                                                                   \
      STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s, const void* x, const void* weight, \
      const void* bias, const void* running_mean, const void* running_var, double eps, void* y,   \
      const void* residual, bool relu);                                                           \
  /* Training-mode gradients; dx, dweight and dbias are all written. */                           \
  void batch_norm_backward_train(STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s,         \
                                 const void* x, const void* dy, const void* weight,               \
                                 const void* save_mean, const void* save_invstd, double eps,      \
                                 void* dx, void* dweight, void* dbias);                           \
  /* *counter += 1 (one int64). */                                                                \
  void increment_counter(STREAM_ARG int64_t* counter);

namespace cpu {
CUDL_BATCH_NORM_KERNELS()
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_BATCH_NORM_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
}  // namespace cuda
#endif

#undef CUDL_BATCH_NORM_KERNELS

}  // namespace cudl
