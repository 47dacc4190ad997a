// Asynchronous host -> GPU copies for the DataLoader (CUDA builds only).
//
// A batch is assembled on the host in page-locked (pinned) memory and copied with
// cudaMemcpyAsync on cudl's stream of the target device (tensor/cuda/context.h), so the copy is
// ordered before every kernel that later uses the batch and the host thread does not wait. A
// CopyEvent recorded after the copy tells when the pinned buffer may be reused.
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

  // Marks the current end of cudl's stream on `device`.
  void record(int device);
  // Blocks until the recorded work has finished (no-op when nothing was recorded).
  void wait();

 private:
  void* event_ = nullptr;  // cudaEvent_t
  int device_ = -1;
  bool pending_ = false;
};

// A new tensor on `device` (CUDA) with the contents of `host` (a contiguous CPU tensor, ideally
// pinned), copied asynchronously on cudl's stream; `done` is recorded after the copy.
Tensor upload_async(const Tensor& host, Device device, CopyEvent& done);

}  // namespace cudl::data

#endif  // CUDL_WITH_CUDA
