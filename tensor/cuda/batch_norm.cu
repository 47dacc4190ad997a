// CUDA batch norm. float32 / float64: cuDNN's spatial batch normalisation (legacy API, present
// in cuDNN 9). The input (n, c, s) is described as NCHW with H = s, W = 1, so BatchNorm1d and
// BatchNorm2d share one path. cuDNN updates the running averages itself with factor = momentum
// and the unbiased batch variance, which is PyTorch's rule. The descriptors are two host-side
// objects set per call (microseconds); there is no algorithm to choose.
//
// bfloat16 (x, y, dy, dx; the parameters and statistics are float32): cudl's own kernels with
// the CPU's formulas (tensor/cpu/batch_norm.cpp): one block per channel, statistics summed in
// double (shifted by the channel's first value), the elementwise passes in float, rounded once
// on store, so they match the CPU twin formula for formula. cuDNN's legacy batch norm is not
// used for bfloat16: its documentation names no bfloat16 configuration we could confirm;
// PyTorch keeps bfloat16 off it (ATen's Normalization.cpp, in _select_batch_norm_backend,
// excludes kBFloat16 from cuDNN); TensorFlow's bfloat16 batch norm through cuDNN needs Ampere
// or later and falls back to float32 otherwise (tensorflow/tensorflow#58512).
#include "tensor/cuda/channel_kernels.cuh"
#include "tensor/cuda/context.h"
#include "tensor/cuda/cudnn_descriptors.h"
#include "tensor/ops/batch_norm_kernels.h"

namespace cudl::cuda {

namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;

struct BnDescriptors {
  TensorDescriptor x, param;
  BnDescriptors(DType dtype, int64_t n, int64_t c, int64_t s) {
    set_nchw(x, dtype, n, c, s, 1);
    set_nchw(param, compute_dtype(dtype), 1, c, 1, 1);  // cuDNN: float params for half inputs
  }
};

cudnnHandle_t handle_on(cudaStream_t stream) {
  int device = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&device));
  cudnnHandle_t h = cudnn_handle(device);
  CUDL_CUDNN_CHECK(cudnnSetStream(h, stream));
  return h;
}

__global__ void increment_kernel(int64_t* counter) {
  *counter += 1;
}

// ---- bfloat16 (the CPU's formulas; see forward_train_impl etc. in tensor/cpu/batch_norm.cpp) ----

__global__ void __launch_bounds__(kChannelBlock)
    bf16_forward_train_kernel(int64_t n, int64_t c, int64_t s, const bfloat16* x, const float* w,
                              const float* b, bfloat16* y, float* save_mean, float* save_invstd,
                              float* running_mean, float* running_var, double momentum,
                              double eps) {
  __shared__ double scratch[64];
  __shared__ float coef[3];
  const double m = static_cast<double>(n * s);
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    // Sums of (x - shift) and its square, shifted by the channel's first value so that a large
    // mean does not cancel the variance away.
    const double shift = static_cast<float>(x[ch * s]);
    double sum = 0.0, sq = 0.0;
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s)) {
      const double d = static_cast<double>(static_cast<float>(x[e.index(c, ch, s)])) - shift;
      sum += d;
      sq += d * d;
    }
    block_sum2(sum, sq, scratch);
    if (threadIdx.x == 0) {
      const double mean_shifted = sum / m;
      const double mean = shift + mean_shifted;
      const double var = fmax(sq / m - mean_shifted * mean_shifted, 0.0);
      const double invstd = 1.0 / sqrt(var + eps);
      save_mean[ch] = static_cast<float>(mean);
      save_invstd[ch] = static_cast<float>(invstd);
      if (running_mean) {
        running_mean[ch] =
            static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] =
            static_cast<float>((1.0 - momentum) * running_var[ch] + momentum * var * m / (m - 1.0));
      }
      coef[0] = static_cast<float>(mean);
      coef[1] = static_cast<float>(invstd * static_cast<double>(w[ch]));
      coef[2] = b[ch];
    }
    __syncthreads();
    // y = (x - mean) * (invstd * w) + b in float (the subtraction first: no cancellation).
    const float mu = coef[0], alpha = coef[1], beta = coef[2];
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s)) {
      const int64_t at = e.index(c, ch, s);
      y[at] = bfloat16((static_cast<float>(x[at]) - mu) * alpha + beta);
    }
    __syncthreads();  // coef is written again for the next channel
  }
}

__global__ void __launch_bounds__(kChannelBlock)
    bf16_forward_eval_kernel(int64_t n, int64_t c, int64_t s, const bfloat16* x, const float* w,
                             const float* b, const float* rm, const float* rv, double eps,
                             bfloat16* y) {
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const float alpha =
        static_cast<float>(static_cast<double>(w[ch]) / sqrt(static_cast<double>(rv[ch]) + eps));
    const float mu = rm[ch], beta = b[ch];
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s)) {
      const int64_t at = e.index(c, ch, s);
      y[at] = bfloat16((static_cast<float>(x[at]) - mu) * alpha + beta);
    }
  }
}

__global__ void __launch_bounds__(kChannelBlock)
    bf16_backward_train_kernel(int64_t n, int64_t c, int64_t s, const bfloat16* x,
                               const bfloat16* dy, const float* w, const float* save_mean,
                               const float* save_invstd, bfloat16* dx, float* dw, float* db) {
  __shared__ double scratch[64];
  __shared__ float coef[4];
  const double m = static_cast<double>(n * s);
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mean = save_mean[ch], invstd = save_invstd[ch];
    double sum_dy = 0.0, sum_dy_xc = 0.0;
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s)) {
      const int64_t at = e.index(c, ch, s);
      const double g = static_cast<float>(dy[at]);
      sum_dy += g;
      sum_dy_xc += g * (static_cast<double>(static_cast<float>(x[at])) - mean);
    }
    block_sum2(sum_dy, sum_dy_xc, scratch);
    if (threadIdx.x == 0) {
      const double sum_dy_xhat = sum_dy_xc * invstd;
      db[ch] = static_cast<float>(sum_dy);
      dw[ch] = static_cast<float>(sum_dy_xhat);
      // dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
      //    = k1 * dy + (x - mean) * k2 + k3.
      const double k1 = static_cast<double>(w[ch]) * invstd;
      coef[0] = static_cast<float>(k1);
      coef[1] = static_cast<float>(-k1 * invstd * sum_dy_xhat / m);
      coef[2] = static_cast<float>(-k1 * sum_dy / m);
      coef[3] = static_cast<float>(mean);
    }
    __syncthreads();
    const float a = coef[0], k2 = coef[1], k3 = coef[2], mu = coef[3];
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s)) {
      const int64_t at = e.index(c, ch, s);
      dx[at] =
          bfloat16(a * static_cast<float>(dy[at]) + (static_cast<float>(x[at]) - mu) * k2 + k3);
    }
    __syncthreads();  // coef is written again for the next channel
  }
}

}  // namespace

void batch_norm_forward_train(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                              const void* x, const void* weight, const void* bias, void* y,
                              void* save_mean, void* save_invstd, void* running_mean,
                              void* running_var, double momentum, double eps) {
  if (dtype == kBFloat16) {
    if (c == 0 || n * s == 0) return;  // the op layer refuses training with M <= 1
    bf16_forward_train_kernel<<<channel_grid(c), kChannelBlock, 0, stream>>>(
        n, c, s, static_cast<const bfloat16*>(x), static_cast<const float*>(weight),
        static_cast<const float*>(bias), static_cast<bfloat16*>(y), static_cast<float*>(save_mean),
        static_cast<float*>(save_invstd), static_cast<float*>(running_mean),
        static_cast<float*>(running_var), momentum, eps);
    CUDL_KERNEL_CHECK();
    return;
  }
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      h, kMode, k.one(), k.zero(), d.x, x, d.x, y, d.param, weight, bias, momentum, running_mean,
      running_var, eps, save_mean, save_invstd));
}

void batch_norm_forward_eval(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                             const void* x, const void* weight, const void* bias,
                             const void* running_mean, const void* running_var, double eps,
                             void* y) {
  if (dtype == kBFloat16) {
    if (c == 0 || n * s == 0) return;  // no elements
    bf16_forward_eval_kernel<<<channel_grid(c), kChannelBlock, 0, stream>>>(
        n, c, s, static_cast<const bfloat16*>(x), static_cast<const float*>(weight),
        static_cast<const float*>(bias), static_cast<const float*>(running_mean),
        static_cast<const float*>(running_var), eps, static_cast<bfloat16*>(y));
    CUDL_KERNEL_CHECK();
    return;
  }
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(h, kMode, k.one(), k.zero(), d.x, x, d.x,
                                                           y, d.param, weight, bias, running_mean,
                                                           running_var, eps));
}

void batch_norm_backward_train(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                               const void* x, const void* dy, const void* weight,
                               const void* save_mean, const void* save_invstd, double eps, void* dx,
                               void* dweight, void* dbias) {
  if (dtype == kBFloat16) {
    if (c == 0 || n * s == 0) return;  // the op layer refuses training with M <= 1
    bf16_backward_train_kernel<<<channel_grid(c), kChannelBlock, 0, stream>>>(
        n, c, s, static_cast<const bfloat16*>(x), static_cast<const bfloat16*>(dy),
        static_cast<const float*>(weight), static_cast<const float*>(save_mean),
        static_cast<const float*>(save_invstd), static_cast<bfloat16*>(dx),
        static_cast<float*>(dweight), static_cast<float*>(dbias));
    CUDL_KERNEL_CHECK();
    return;
  }
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationBackward(h, kMode, k.one(), k.zero(), k.one(), k.zero(),
                                                   d.x, x, d.x, dy, d.x, dx, d.param, weight,
                                                   dweight, dbias, eps, save_mean, save_invstd));
}

void increment_counter(cudaStream_t stream, int64_t* counter) {
  increment_kernel<<<1, 1, 0, stream>>>(counter);
  CUDL_KERNEL_CHECK();
}

}  // namespace cudl::cuda
