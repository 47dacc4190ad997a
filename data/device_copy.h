// Asynchronous host -> GPU copies for the DataLoader (CUDA builds only).
//
// A batch is assembled on the host in page-locked (pinned) memory and copied with
// cudaMemcpyAsync, either on cudl's stream of the target device (tensor/cuda/context.h), so the
// copy is ordered before every kernel that later uses the batch, or on the device's copy stream,
// so that it overlaps the kernels, ordered against them by events. The host thread does not
// wait. A CopyEvent recorded after the copy tells when the pinned buffer may be reused.
#pragma once

#ifdef CUDL_WITH_CUDA

#include "tensor/tensor.h"

namespace cudl::data {

// A CUDA event (created on first record; destroyed without throwing). Move-only.
class CopyEvent {
 public:
  CopyEvent() = default;
  ~CopyEvent();
  CopyEvent(const CopyEvent&) = delete;
  CopyEvent& operator=(const CopyEvent&) = delete;
  CopyEvent(CopyEvent&& o) noexcept;
  CopyEvent& operator=(CopyEvent&& o) noexcept;

  // Marks the current end of cudl's stream on `device` (or of its copy stream).
  void record(int device);
  void record_on_copy_stream(int device);
  // Blocks until the recorded work has finished (no-op when nothing was recorded).
  void wait();
  // Makes the work queued on cudl's stream (or on its copy stream) from now on wait for the
  // recorded work, without blocking the host (no-op when nothing was recorded).
  void make_compute_wait();
  void make_copy_stream_wait();

 private:
  void* event_ = nullptr;  // cudaEvent_t
  int device_ = -1;
  bool pending_ = false;
};

// A new tensor on `device` (CUDA) with the contents of `host` (a contiguous CPU tensor, ideally
// pinned), copied asynchronously on cudl's stream; `done` is recorded after the copy.
Tensor upload_async(const Tensor& host, Device device, CopyEvent& done);

// The same copy on the device's copy stream, so that it runs while cudl's stream computes. The
// destination comes from the caching allocator's pool of cudl's stream, where the work already
// queued there may still use that memory: the copy first waits for that work (through an event,
// `done` serving as its carrier), then `done` is recorded after the copy. The caller must call
// done.make_compute_wait() before cudl's stream uses the result or frees it; from then on the
// memory is ordered on cudl's stream like any other. Issued before the next step is queued, the
// copy overlaps that step.
Tensor upload_on_copy_stream(const Tensor& host, Device device, CopyEvent& done);

// Blocks until everything queued on the device's copy stream has finished.
void synchronize_copy_stream(Device device);

}  // namespace cudl::data

#endif  // CUDL_WITH_CUDA
