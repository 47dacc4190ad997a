// CUDA multi-tensor optimiser updates: one launch for every parameter of every group.
//
// The work table (optim_math.h: one slot per parameter, chunks numbered across slots) is
// uploaded with one asynchronous copy from a pinned staging buffer; block b of the grid finds
// the slot of chunk b by binary search (a handful of cached loads) and its 256 threads stride
// over the chunk's kChunk elements, coalesced. The kernel reads p, g, m, v and writes p, m, v
// once per element: it is bound by memory bandwidth.
#include <algorithm>
#include <cstring>

#include "optim/kernels.h"
#include "optim/optim_math.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/tensor.h"

namespace cudl::cuda {

class TableStage {
 public:
  explicit TableStage(int device) : device_(device) {
    DeviceGuard guard(device_);
    CUDL_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming));
  }
  ~TableStage() {
    // The pinned buffer (freed after this body) must not go while a copy still reads it.
    if (recorded_) CUDL_CUDA_WARN(cudaEventSynchronize(uploaded_));
    if (uploaded_) CUDL_CUDA_WARN(cudaEventDestroy(uploaded_));
  }
  TableStage(const TableStage&) = delete;
  TableStage& operator=(const TableStage&) = delete;

  // Copies `bytes` from host memory to the device buffer on `stream` and returns the device
  // address. Work queued on the stream after this call sees the table; the next upload is
  // queued behind it, so the buffer is never overwritten while a kernel still reads it.
  //
  // While the stream is captured into a CUDA graph nothing is copied: the table goes to a
  // buffer of the graph's own, which restage() fills before each replay (outside the graph,
  // in stream order), so every replay reads the hyperparameters of its own step.
  const void* upload(cudaStream_t stream, const void* host, size_t bytes) {
    if (stream_is_capturing(stream)) {
      graph_buf_ = empty({static_cast<int64_t>(bytes)}, TensorOptions(kUInt8).device(Device::cuda(device_)));
      graph_bytes_ = bytes;
      return graph_buf_.data_ptr();
    }
    ensure_host(bytes);
    if (!device_buf_.defined() || static_cast<size_t>(device_buf_.numel()) < bytes) {
      // The old device buffer goes back to the caching allocator, which hands it out again
      // only in stream order (after the kernels queued before this point).
      device_buf_ = empty({host_.numel()}, TensorOptions(kUInt8).device(Device::cuda(device_)));
    }
    copy_in(stream, device_buf_.data_ptr(), host, bytes);
    return device_buf_.data_ptr();
  }

  // Fills the captured table (see upload) for the next replay.
  void restage(cudaStream_t stream, const void* host, size_t bytes) {
    CUDL_CHECK(graph_buf_.defined(), "optimiser: prepare_replay() before a step was captured");
    CUDL_CHECK(bytes == graph_bytes_, "optimiser: the captured step updated a different set of "
               "parameters (", graph_bytes_, " table bytes, now ", bytes, ")");
    ensure_host(bytes);
    copy_in(stream, graph_buf_.data_ptr(), host, bytes);
  }

 private:
  void ensure_host(size_t bytes) {
    // The previous upload must have left the pinned buffer before it is rewritten.
    if (recorded_) CUDL_CUDA_CHECK(cudaEventSynchronize(uploaded_));
    recorded_ = false;
    if (!host_.defined() || static_cast<size_t>(host_.numel()) < bytes) {
      const int64_t cap = static_cast<int64_t>(std::max<size_t>(bytes, 2 * (host_.defined() ? host_.numel() : 2048)));
      host_ = empty({cap}, TensorOptions(kUInt8).pinned());
    }
  }
  void copy_in(cudaStream_t stream, void* dst, const void* host, size_t bytes) {
    std::memcpy(host_.data_ptr(), host, bytes);
    CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, host_.data_ptr(), bytes, cudaMemcpyHostToDevice, stream));
    CUDL_CUDA_CHECK(cudaEventRecord(uploaded_, stream));
    recorded_ = true;
  }

  int device_;
  Tensor host_, device_buf_;
  Tensor graph_buf_;  // the table a captured update reads
  size_t graph_bytes_ = 0;
  cudaEvent_t uploaded_ = nullptr;
  bool recorded_ = false;
};

std::shared_ptr<TableStage> make_table_stage(int device) {
  return std::make_shared<TableStage>(device);
}

namespace {

template <class T>
__global__ void adam_kernel(const optim::AdamSlot<T>* __restrict__ slots, int64_t num_slots,
                            int64_t total_chunks) {
  for (int64_t b = blockIdx.x; b < total_chunks; b += gridDim.x) {
    const optim::AdamSlot<T> s = slots[optim::slot_of_chunk(slots, num_slots, b)];
    const int64_t lo = (b - s.first_chunk) * optim::kChunk;
    const int64_t hi = min(s.numel, lo + optim::kChunk);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      T p = s.param[i], m = s.exp_avg[i], v = s.exp_avg_sq[i];
      optim::adam_update(p, s.grad[i], m, v, s.h);
      s.param[i] = p;
      s.exp_avg[i] = m;
      s.exp_avg_sq[i] = v;
    }
  }
}

template <class T>
__global__ void sgd_kernel(const optim::SgdSlot<T>* __restrict__ slots, int64_t num_slots,
                           int64_t total_chunks) {
  for (int64_t b = blockIdx.x; b < total_chunks; b += gridDim.x) {
    const optim::SgdSlot<T> s = slots[optim::slot_of_chunk(slots, num_slots, b)];
    const int64_t lo = (b - s.first_chunk) * optim::kChunk;
    const int64_t hi = min(s.numel, lo + optim::kChunk);
    T unused = T(0);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      T p = s.param[i];
      optim::sgd_update(p, s.grad[i], s.momentum_buffer ? s.momentum_buffer + i : &unused, s.h);
      s.param[i] = p;
    }
  }
}

unsigned grid_of(int64_t total_chunks) {
  return static_cast<unsigned>(std::min<int64_t>(total_chunks, 65535LL * 32));
}

}  // namespace

void adam_multi_tensor(cudaStream_t stream, TableStage& stage, DType dtype, const void* slots,
                       int64_t num_slots, int64_t total_chunks) {
  if (num_slots == 0 || total_chunks == 0) return;
  CUDL_DISPATCH_FLOATING(dtype, "adam step", [&] {
    using Slot = optim::AdamSlot<scalar_t>;
    auto table = static_cast<const Slot*>(stage.upload(stream, slots, num_slots * sizeof(Slot)));
    adam_kernel<<<grid_of(total_chunks), kBlock, 0, stream>>>(table, num_slots, total_chunks);
    CUDL_KERNEL_CHECK();
  });
}

void restage_table(cudaStream_t stream, TableStage& stage, const void* slots, size_t bytes) {
  stage.restage(stream, slots, bytes);
}

void sgd_multi_tensor(cudaStream_t stream, TableStage& stage, DType dtype, const void* slots,
                      int64_t num_slots, int64_t total_chunks) {
  if (num_slots == 0 || total_chunks == 0) return;
  CUDL_DISPATCH_FLOATING(dtype, "sgd step", [&] {
    using Slot = optim::SgdSlot<scalar_t>;
    auto table = static_cast<const Slot*>(stage.upload(stream, slots, num_slots * sizeof(Slot)));
    sgd_kernel<<<grid_of(total_chunks), kBlock, 0, stream>>>(table, num_slots, total_chunks);
    CUDL_KERNEL_CHECK();
  });
}

}  // namespace cudl::cuda
