#include "tensor/cuda/context.h"

#include <memory>
#include <mutex>
#include <vector>

#include "tensor/cuda/check.h"

namespace cudl::cuda {

const char* cublas_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

namespace {

// A device's streams, library handles and cuBLAS workspace live as long as the process: they
// are never destroyed (the driver frees them at exit). Destroying them from a static
// destructor could run after cuDNN's and cuBLAS's own libraries were torn down, or while
// static tensors freed later still queue work on the stream (PyTorch keeps its handles for the
// same reason).
struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;  // created on first use
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  void* cublas_workspace = nullptr;
  size_t cublas_workspace_bytes = 0;
};

std::mutex& mutex() {
  static std::mutex m;
  return m;
}

DeviceContext& context(int device) {
  static auto& contexts = *new std::vector<std::unique_ptr<DeviceContext>>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex());
  if (device < 0) CUDL_THROW("invalid CUDA device index ", device);
  if (static_cast<size_t>(device) >= contexts.size()) contexts.resize(device + 1);
  auto& ctx = contexts[device];
  if (!ctx) {
    DeviceGuard guard(device);
    auto c = std::make_unique<DeviceContext>();
    c->device = device;
    CUDL_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    ctx = std::move(c);
  }
  return *ctx;
}

}  // namespace

cudaStream_t stream(int device) { return context(device).stream; }

cudaStream_t copy_stream(int device) {
  DeviceContext& c = context(device);
  std::lock_guard<std::mutex> lock(mutex());
  if (!c.copy_stream) {
    DeviceGuard guard(device);
    CUDL_CUDA_CHECK(cudaStreamCreateWithFlags(&c.copy_stream, cudaStreamNonBlocking));
  }
  return c.copy_stream;
}

cublasHandle_t cublas_handle(int device) {
  DeviceContext& c = context(device);
  std::lock_guard<std::mutex> lock(mutex());
  if (!c.cublas) {
    DeviceGuard guard(device);
    CUDL_CUBLAS_CHECK(cublasCreate(&c.cublas));
    CUDL_CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream));
    // Default math (float32 products in full float32, no TF32, as PyTorch's default) and, for
    // bfloat16 products, split-K partial sums kept in float rather than rounded to bfloat16.
    CUDL_CUBLAS_CHECK(cublasSetMathMode(
        c.cublas, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                            CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    // A workspace of the handle's own, so that cuBLAS never allocates while a CUDA graph is
    // captured: 32 MiB on Hopper and later, 4 MiB before (cuBLAS's recommendation).
    int major = 0;
    CUDL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    const size_t bytes = (major >= 9 ? 32 : 4) << 20;
    CUDL_CUDA_CHECK(cudaMalloc(&c.cublas_workspace, bytes));
    c.cublas_workspace_bytes = bytes;
    CUDL_CUBLAS_CHECK(cublasSetWorkspace(c.cublas, c.cublas_workspace, bytes));
  }
  return c.cublas;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceContext& c = context(device);
  std::lock_guard<std::mutex> lock(mutex());
  if (!c.cudnn) {
    DeviceGuard guard(device);
    CUDL_CUDNN_CHECK(cudnnCreate(&c.cudnn));
    CUDL_CUDNN_CHECK(cudnnSetStream(c.cudnn, c.stream));
  }
  return c.cudnn;
}

std::mutex& cudnn_mutex() {
  static std::mutex m;
  return m;
}

cudnnHandle_t cudnn_handle_on(int device, cudaStream_t s) {
  cudnnHandle_t h = cudnn_handle(device);
  CUDL_CUDNN_CHECK(cudnnSetStream(h, s));
  return h;
}

cublasHandle_t cublas_handle_on(int device, cudaStream_t s) {
  cublasHandle_t h = cublas_handle(device);
  DeviceContext& c = context(device);
  std::lock_guard<std::mutex> lock(mutex());
  // cublasSetStream resets the handle's workspace to cuBLAS's own pool: set ours again.
  CUDL_CUBLAS_CHECK(cublasSetStream(h, s));
  CUDL_CUBLAS_CHECK(cublasSetWorkspace(h, c.cublas_workspace, c.cublas_workspace_bytes));
  return h;
}

size_t cublas_workspace_size(int device) {
  DeviceContext& c = context(device);
  std::lock_guard<std::mutex> lock(mutex());
  return c.cublas_workspace_bytes;
}

bool stream_is_capturing(cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDL_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
  return status != cudaStreamCaptureStatusNone;
}

void synchronize(int device) {
  DeviceGuard guard(device);
  CUDL_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

DeviceGuard::DeviceGuard(int device) {
  CUDL_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) CUDL_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0)
    CUDL_CUDA_WARN(cudaSetDevice(previous_));
}

}  // namespace cudl::cuda
