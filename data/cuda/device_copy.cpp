#include "data/device_copy.h"

#include <cuda_runtime_api.h>

#include <exception>
#include <utility>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace cudl::data {

CopyEvent::~CopyEvent() {
  if (!event_) return;
  try {  // never throw from a destructor (the runtime may be shutting down)
    cuda::DeviceGuard guard(device_);
    CUDL_CUDA_WARN(cudaEventDestroy(static_cast<cudaEvent_t>(event_)));
  } catch (const std::exception& e) {
    log_warning(str("CopyEvent: ", e.what()));
  }
}

CopyEvent::CopyEvent(CopyEvent&& o) noexcept
    : event_(std::exchange(o.event_, nullptr)),
      device_(o.device_),
      pending_(std::exchange(o.pending_, false)) {}

CopyEvent& CopyEvent::operator=(CopyEvent&& o) noexcept {
  if (this != &o) {
    std::swap(event_, o.event_);
    std::swap(device_, o.device_);
    std::swap(pending_, o.pending_);
  }
  return *this;
}

void CopyEvent::record(int device) {
  cuda::DeviceGuard guard(device);
  if (event_ && device_ != device) {
    CUDL_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
    CUDL_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event_)));
    event_ = nullptr;
  }
  if (!event_) {
    cudaEvent_t e;
    CUDL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    event_ = e;
    device_ = device;
  }
  CUDL_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), cuda::stream(device)));
  pending_ = true;
}

void CopyEvent::wait() {
  if (!pending_) return;
  cuda::DeviceGuard guard(device_);
  CUDL_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
  pending_ = false;
}

Tensor upload_async(const Tensor& host, Device device, CopyEvent& done) {
  CUDL_CHECK(device.is_cuda(), "upload_async: expected a CUDA device, got ", device.str());
  CUDL_CHECK(host.device().is_cpu() && host.is_contiguous(),
             "upload_async: expected a contiguous CPU tensor, got ", host.info());
  Tensor out = empty(host.shape(), TensorOptions(host.dtype()).device(device));
  cuda::DeviceGuard guard(device.index);
  if (host.nbytes() > 0)
    CUDL_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), host.data_ptr(), host.nbytes(),
                                    cudaMemcpyHostToDevice, cuda::stream(device.index)));
  done.record(device.index);
  return out;
}

}  // namespace cudl::data
