// Checked calls into the CUDA runtime, cuBLAS and cuDNN. Each failure throws cudl::DeviceError
// (a cudl::Error) with file:line, the call as written and the library's own message; its
// out_of_memory() says whether device memory ran out (cudaErrorMemoryAllocation, cuBLAS's
// CUBLAS_STATUS_ALLOC_FAILED; cuDNN's workspaces come from cudl's allocator). Kernel launches are followed
// by CUDL_KERNEL_CHECK(). Destructors use CUDL_CUDA_WARN, which logs and never throws.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "tensor/error.h"

namespace cudl::cuda {
const char* cublas_status_string(cublasStatus_t s);
}  // namespace cudl::cuda

#define CUDL_CUDA_CHECK(call)                                                     \
  do {                                                                            \
    cudaError_t cudl_err_ = (call);                                               \
    if (cudl_err_ != cudaSuccess) {                                               \
      cudaGetLastError();                                                         \
      CUDL_THROW_DEVICE(cudl_err_ == cudaErrorMemoryAllocation, #call, " failed: ",  \
                        cudaGetErrorName(cudl_err_), ": ", cudaGetErrorString(cudl_err_)); \
    }                                                                             \
  } while (0)

#define CUDL_CUBLAS_CHECK(call)                                                        \
  do {                                                                                 \
    cublasStatus_t cudl_st_ = (call);                                                  \
    if (cudl_st_ != CUBLAS_STATUS_SUCCESS)                                             \
      CUDL_THROW_DEVICE(cudl_st_ == CUBLAS_STATUS_ALLOC_FAILED, #call, " failed: ",  \
                        ::cudl::cuda::cublas_status_string(cudl_st_));                 \
  } while (0)

#define CUDL_CUDNN_CHECK(call)                                                  \
  do {                                                                          \
    cudnnStatus_t cudl_st_ = (call);                                            \
    if (cudl_st_ != CUDNN_STATUS_SUCCESS)                                       \
      CUDL_THROW_DEVICE(false, #call, " failed: ", cudnnGetErrorString(cudl_st_));  \
  } while (0)

// After every <<<...>>> launch: reports bad launch configurations at the launch site.
#define CUDL_KERNEL_CHECK() CUDL_CUDA_CHECK(cudaGetLastError())

#define CUDL_CUDA_WARN(call)                                                          \
  do {                                                                                \
    cudaError_t cudl_err_ = (call);                                                   \
    if (cudl_err_ != cudaSuccess) {                                                   \
      cudaGetLastError();                                                             \
      ::cudl::log_warning(::cudl::str(__FILE__, ":", __LINE__, ": ", #call, " failed: ", \
                                      cudaGetErrorString(cudl_err_)));                \
    }                                                                                 \
  } while (0)
