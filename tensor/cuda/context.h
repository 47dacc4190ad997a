// Per-device CUDA state: the stream all cudl work on that device is ordered on, and the
// cuBLAS and cuDNN handles bound to it. Created on first use, destroyed at exit.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <mutex>

namespace cudl::cuda {

// The stream cudl kernels, copies and library calls on `device` are issued to. One stream per
// device keeps every op ordered, so memory freed to the caching allocator can be reused at once.
cudaStream_t stream(int device);
// A second stream of the device for host-to-device copies that overlap the kernels on
// stream(device) (the DataLoader's uploads ahead of use). Work on it is ordered against
// stream(device) only through events: see data/device_copy.h.
cudaStream_t copy_stream(int device);
cublasHandle_t cublas_handle(int device);
// The device's cuBLAS handle bound to stream `s`, with cudl's own workspace (so that cuBLAS
// never allocates, e.g. while a CUDA graph is captured).
cublasHandle_t cublas_handle_on(int device, cudaStream_t s);
// Bytes of that workspace (0 before the handle exists); device memory outside the caching
// allocator's statistics.
size_t cublas_workspace_size(int device);
cudnnHandle_t cudnn_handle(int device);
// A cuDNN handle is bound to a stream and then used, and it is not thread-safe: every cuDNN
// user holds this lock from binding the handle (cudnn_handle_on) to its last call with it.
std::mutex& cudnn_mutex();
// The device's cuDNN handle bound to stream `s`; the caller holds cudnn_mutex().
cudnnHandle_t cudnn_handle_on(int device, cudaStream_t s);
// Whether `s` is being captured into a CUDA graph (an active capture, or one a bad call has
// invalidated: either way no work may be run or waited for on it).
bool stream_is_capturing(cudaStream_t s);
// Blocks until all work on the device's cudl stream is done.
void synchronize(int device);

// Makes `device` current for the lifetime of the guard (restores the previous one after).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Threads per block and grid size for n independent elements.
constexpr int kBlock = 256;
inline unsigned grid_for(long long n, int block = kBlock) {
  long long g = (n + block - 1) / block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g > 65535LL * 32 ? 65535LL * 32 : g);
}

}  // namespace cudl::cuda
