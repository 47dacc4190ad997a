// Launchers of batch_norm (see batch_norm.h), one per backend with the same arguments; the
// CUDA ones take the stream first. x, y, dy, dx are dense (n, c, s) arrays (s = elements per
// channel and sample), row-major, or (channels_last) stored as (n, s, c): a channels-last
// (N, C, H, W) tensor. Channels-last batch norm is batch norm of the (n * s, c) array the same
// memory is: the CPU and cudl's bfloat16 kernels sum it in blocks of rows, across the channels
// (the same elements grouped otherwise than the row-major sums: the float statistics may differ
// in their last bit), cuDNN gets an NHWC descriptor. Weight, bias, the statistics and their
// gradients are (c,).
// save_mean / save_invstd receive the batch mean and 1/sqrt(var + eps) for the backward pass.
// running_mean / running_var are both null (not tracked) or both set (updated in place).
// x, y, dy, dx have `dtype`; weight, bias, the statistics and dweight, dbias have
// compute_dtype(dtype) (float32 for bfloat16 activations, as cuDNN and PyTorch keep them).
// The forward launchers end with an epilogue (batch_norm_act): y = bn(x), then + residual when
// residual is not null (an (n, c, s) array of `dtype`), then ReLU when relu; each step rounds
// to `dtype` as the separate ops would, so the results equal bn, add and relu one after another.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/macros.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

namespace bn {
// The per-channel formulas both backends use (the CPU loops and the CUDA kernels), in double.

// Batch statistics from the sums of (x - shift) and of its square over m values (shifted by a
// value of the channel, so that a large mean does not cancel the variance away). A NaN input
// stays NaN in the variance.
struct Stats {
  double mean, var, invstd;
};
CUDL_HOST_DEVICE_INLINE Stats stats_from_sums(double sum, double sq, double m, double shift,
                                              double eps) {
  const double mean_shifted = sum / m;
  const double v = sq / m - mean_shifted * mean_shifted;
  const double var = v < 0.0 ? 0.0 : v;
  return {shift + mean_shifted, var, 1.0 / sqrt(var + eps)};
}

// PyTorch's running averages: factor momentum, the unbiased variance (m / (m - 1)).
CUDL_HOST_DEVICE_INLINE double running_mean(double old, const Stats& st, double momentum) {
  return (1.0 - momentum) * old + momentum * st.mean;
}
CUDL_HOST_DEVICE_INLINE double running_var(double old, const Stats& st, double m,
                                           double momentum) {
  return (1.0 - momentum) * old + momentum * st.var * m / (m - 1.0);
}
// Stores channel ch's batch statistics for the backward pass and, when they are tracked
// (running_mean not null), updates its running averages. C: the parameters' type.
template <class C>
CUDL_HOST_DEVICE_INLINE void store_stats(const Stats& st, int64_t ch, double m, double momentum,
                                         C* save_mean, C* save_invstd, C* running_mean,
                                         C* running_var) {
  save_mean[ch] = static_cast<C>(st.mean);
  save_invstd[ch] = static_cast<C>(st.invstd);
  if (running_mean) {
    running_mean[ch] = static_cast<C>(bn::running_mean(running_mean[ch], st, momentum));
    running_var[ch] = static_cast<C>(bn::running_var(running_var[ch], st, m, momentum));
  }
}

// Training-mode gradients from sum(dy) and sum(dy * (x - mean)) over m values:
// dbias, dweight and dx = k1 * dy + (x - mean) * k2 + k3
//                       = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
struct GradCoef {
  double dbias, dweight, k1, k2, k3;
};
CUDL_HOST_DEVICE_INLINE GradCoef grad_coefficients(double sum_dy, double sum_dy_xc, double w,
                                                   double invstd, double m) {
  const double sum_dy_xhat = sum_dy_xc * invstd;
  const double k1 = w * invstd;
  return {sum_dy, sum_dy_xhat, k1, -k1 * invstd * sum_dy_xhat / m, -k1 * sum_dy / m};
}

// The epilogue of one output: v = bn(x) in the compute type; rounded to T, plus the residual
// (rounded again), then ReLU (x <= 0 ? 0 : x, as the ReLU op: NaN stays NaN).
template <class T>
CUDL_HOST_DEVICE_INLINE T epilogue(compute_t<T> v, const T* residual, int64_t at, bool relu) {
  T t = T(v);
  if (residual) t = T(compute_t<T>(t) + compute_t<T>(residual[at]));
  if (relu && compute_t<T>(t) <= compute_t<T>(0)) t = T(0);
  return t;
}
}  // namespace bn

#define CUDL_BATCH_NORM_KERNELS(STREAM_ARG)                                                       \
  void batch_norm_forward_train(STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s,          \
                                const void* x, const void* weight, const void* bias, void* y,     \
                                void* save_mean, void* save_invstd, void* running_mean,           \
                                void* running_var, double momentum, double eps,                   \
                                const void* residual, bool relu, bool channels_last);             \
  void batch_norm_forward_eval(                                                                   \
      STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s, const void* x, const void* weight, \
      const void* bias, const void* running_mean, const void* running_var, double eps, void* y,   \
      const void* residual, bool relu, bool channels_last);                                       \
  /* Training-mode gradients; dx, dweight and dbias are all written. */                           \
  void batch_norm_backward_train(STREAM_ARG DType dtype, int64_t n, int64_t c, int64_t s,         \
                                 const void* x, const void* dy, const void* weight,               \
                                 const void* save_mean, const void* save_invstd, double eps,      \
                                 void* dx, void* dweight, void* dbias, bool channels_last);

namespace cpu {
CUDL_BATCH_NORM_KERNELS()
// *counter += 1 (one int64).
void increment_counter(int64_t* counter);
// The compiled copies the launchers above call (tensor/cpu/isa.h).
namespace baseline {
CUDL_BATCH_NORM_KERNELS()
}
namespace avx2 {
CUDL_BATCH_NORM_KERNELS()
}
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_BATCH_NORM_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
void increment_counter(cudaStream_t stream, int64_t* counter);
}  // namespace cuda
#endif

#undef CUDL_BATCH_NORM_KERNELS

}  // namespace cudl
