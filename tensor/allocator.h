// Raw memory for Storage, and the statistics users and tests read.
//
// CPU memory is 64-byte aligned heap memory (pinned, page-locked memory when asked and CUDA is
// available, for fast asynchronous uploads). Freed CPU blocks of 1 MiB and more are kept and
// reused (best fit, split and merged, in one range of addresses: tensor/block_pool.h), so a
// training loop stops asking the kernel for fresh, zero-filled pages after its first step
// (tensor/allocator.cpp says why).
// CUDA memory comes from a caching allocator: freed blocks go to size-ordered free lists and
// are reused, so a training loop stops calling cudaMalloc after its first step. See
// tensor/cuda/caching_allocator.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/device.h"

namespace cudl {

struct MemoryStats {
  int64_t allocated_bytes = 0;       // held by live storages
  int64_t peak_allocated_bytes = 0;  // max of the above since the last reset
  int64_t reserved_bytes = 0;        // obtained from the system (includes the cache)
  int64_t peak_reserved_bytes = 0;
  int64_t num_alloc_requests = 0;    // storages created
  int64_t num_device_allocs = 0;     // real cudaMalloc / malloc calls
  int64_t num_device_frees = 0;      // real cudaFree / free calls
};

MemoryStats memory_stats(Device device);
void reset_peak_memory_stats(Device device);
// A second peak of allocated bytes, for code that sizes memory after a trial run (TrainStep
// sizes its CUDA graph's pool by an eager step) without resetting the peaks memory_stats
// reports: watch_peak_allocated starts it at the bytes allocated now, watched_peak_allocated
// reads it (-1 when no watch was started). One per device.
void watch_peak_allocated(Device device);
int64_t watched_peak_allocated(Device device);
// Gives cached, unused blocks back to the driver (CUDA) or the system (CPU).
void empty_cache(Device device);
// Writes a line per storage allocated and freed on any device, "<device> a|f <bytes>
// <address>", to `path` ("" stops), for bench/alloc_replay.py, which replays the requests
// through allocator designs. CUDL_ALLOC_TRACE=path in the environment starts it at the first
// allocation. Throws when the file cannot be written.
void set_alloc_trace(const std::string& path);

namespace detail {
void* allocate(size_t nbytes, Device device, bool pinned);
void deallocate(void* ptr, size_t nbytes, Device device, bool pinned) noexcept;
}  // namespace detail

}  // namespace cudl
