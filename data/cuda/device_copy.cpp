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

namespace {
void record_on(void*& event, int& event_device, bool& pending, int device, cudaStream_t s) {
  cuda::DeviceGuard guard(device);
  if (event && event_device != device) {
    CUDL_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
    CUDL_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
    event = nullptr;
  }
  if (!event) {
    cudaEvent_t e;
    CUDL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    event = e;
    event_device = device;
  }
  CUDL_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), s));
  pending = true;
}
}  // namespace

void CopyEvent::record(int device) {
  record_on(event_, device_, pending_, device, cuda::stream(device));
}

void CopyEvent::record_on_copy_stream(int device) {
  record_on(event_, device_, pending_, device, cuda::copy_stream(device));
}

void CopyEvent::make_compute_wait() {
  if (!pending_) return;
  cuda::DeviceGuard guard(device_);
  CUDL_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(device_), static_cast<cudaEvent_t>(event_), 0));
}

void CopyEvent::make_copy_stream_wait() {
  if (!pending_) return;
  cuda::DeviceGuard guard(device_);
  CUDL_CUDA_CHECK(
      cudaStreamWaitEvent(cuda::copy_stream(device_), static_cast<cudaEvent_t>(event_), 0));
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

Tensor upload_on_copy_stream(const Tensor& host, Device device, CopyEvent& done) {
  CUDL_CHECK(device.is_cuda(), "upload_on_copy_stream: expected a CUDA device, got ",
             device.str());
  CUDL_CHECK(host.device().is_cpu() && host.is_contiguous(),
             "upload_on_copy_stream: expected a contiguous CPU tensor, got ", host.info());
  Tensor out = empty(host.shape(), TensorOptions(host.dtype()).device(device));
  cuda::DeviceGuard guard(device.index);
  // The copy stream first waits for the work queued on cudl's stream so far: the last users of
  // the memory `out` was given.
  done.record(device.index);
  done.make_copy_stream_wait();
  if (host.nbytes() > 0)
    CUDL_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), host.data_ptr(), host.nbytes(),
                                    cudaMemcpyHostToDevice, cuda::copy_stream(device.index)));
  done.record_on_copy_stream(device.index);
  return out;
}

void synchronize_copy_stream(Device device) {
  cuda::DeviceGuard guard(device.index);
  CUDL_CUDA_CHECK(cudaStreamSynchronize(cuda::copy_stream(device.index)));
}

}  // namespace cudl::data
