// CUDA batch norm through cuDNN's spatial batch normalisation (legacy API, present in cuDNN 9).
// The input (n, c, s) is described as NCHW with H = s, W = 1, so BatchNorm1d and BatchNorm2d
// share one path. cuDNN updates the running averages itself with factor = momentum and the
// unbiased batch variance, which is PyTorch's rule. The descriptors are two host-side
// objects set per call (microseconds); there is no algorithm to choose.
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
    set_nchw(param, dtype, 1, c, 1, 1);
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

}  // namespace

void batch_norm_forward_train(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                              const void* x, const void* weight, const void* bias, void* y,
                              void* save_mean, void* save_invstd, void* running_mean,
                              void* running_var, double momentum, double eps) {
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
