// Launchers of the multi-tensor optimiser updates (optim/optim_math.h). `slots` is a host
// array of num_slots AdamSlot<T> / SgdSlot<T> (T = the dtype's C++ type) in chunk order, and
// total_chunks the number of chunks over all slots. One call updates every slot: on the CPU in
// one parallel region, on CUDA in one kernel launch (the table is staged to the device first,
// asynchronously, through a TableStage).
#pragma once

#include <cstdint>
#include <memory>

#include "tensor/dtype.h"
#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

namespace cpu {
void adam_multi_tensor(DType dtype, const void* slots, int64_t num_slots, int64_t total_chunks);
void sgd_multi_tensor(DType dtype, const void* slots, int64_t num_slots, int64_t total_chunks);
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
// Staging for the per-step work tables: a pinned host buffer and a device buffer, grown on
// demand, and an event that says when the last upload has left the host buffer. An optimiser
// owns one, so consecutive steps reuse the same memory and never wait for the GPU to finish
// the previous step's kernels (only for its upload of a few kilobytes to be done).
class TableStage;
std::shared_ptr<TableStage> make_table_stage(int device);

void adam_multi_tensor(cudaStream_t stream, TableStage& stage, DType dtype, const void* slots,
                       int64_t num_slots, int64_t total_chunks);
void sgd_multi_tensor(cudaStream_t stream, TableStage& stage, DType dtype, const void* slots,
                      int64_t num_slots, int64_t total_chunks);
// Uploads the table of the next replay of a step captured into a CUDA graph (the launch above
// ran under capture with a table of the same size).
void restage_table(cudaStream_t stream, TableStage& stage, const void* slots, size_t bytes);
}  // namespace cuda
#endif

}  // namespace cudl
