#include "tensor/cuda/caching_allocator.h"

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace cudl::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB
constexpr size_t kLargeSlack = size_t(8) << 20;  // reuse a large block within 8 MiB of the need

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  size_t r = n < kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

double mib(int64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

struct DevicePool {
  std::multimap<size_t, void*> free_blocks;       // size -> block
  std::unordered_map<void*, size_t> live_blocks;  // block -> size
  MemoryStats stats;

  void release_cache(int device) {
    DeviceGuard guard(device);
    for (auto& [size, ptr] : free_blocks) {
      CUDL_CUDA_WARN(cudaFree(ptr));
      stats.reserved_bytes -= static_cast<int64_t>(size);
      stats.num_device_frees++;
    }
    free_blocks.clear();
  }
};

struct Allocator {
  std::mutex mutex;
  std::vector<std::unique_ptr<DevicePool>> pools;

  DevicePool& pool(int device) {
    if (static_cast<size_t>(device) >= pools.size()) pools.resize(device + 1);
    if (!pools[device]) pools[device] = std::make_unique<DevicePool>();
    return *pools[device];
  }
};

Allocator& allocator() {
  // Leaked on purpose: blocks may be freed by static tensors after other statics are gone.
  static Allocator* a = new Allocator();
  return *a;
}

}  // namespace

void* caching_allocate(size_t nbytes, int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  size_t size = round_size(nbytes);
  p.stats.num_alloc_requests++;

  void* ptr = nullptr;
  auto it = p.free_blocks.lower_bound(size);
  if (it != p.free_blocks.end()) {
    bool fits = size < kSmallLimit ? it->first <= 2 * size : it->first <= size + kLargeSlack;
    if (fits) {
      size = it->first;
      ptr = it->second;
      p.free_blocks.erase(it);
    }
  }
  if (!ptr) {
    DeviceGuard guard(device);
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      p.release_cache(device);
      err = cudaMalloc(&ptr, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      if (err == cudaErrorMemoryAllocation) {
        CUDL_THROW("CUDA out of memory on cuda:", device, ": tried to allocate ",
                   mib(static_cast<int64_t>(size)), " MiB; cudl holds ",
                   mib(p.stats.allocated_bytes), " MiB in tensors (", mib(p.stats.reserved_bytes),
                   " MiB reserved); the device has ", mib(static_cast<int64_t>(free_b)),
                   " MiB free of ", mib(static_cast<int64_t>(total_b)), " MiB");
      }
      CUDL_THROW("cudaMalloc(", size, ") on cuda:", device, " failed: ", cudaGetErrorString(err));
    }
    p.stats.num_device_allocs++;
    p.stats.reserved_bytes += static_cast<int64_t>(size);
    if (p.stats.reserved_bytes > p.stats.peak_reserved_bytes)
      p.stats.peak_reserved_bytes = p.stats.reserved_bytes;
  }
  p.live_blocks.emplace(ptr, size);
  p.stats.allocated_bytes += static_cast<int64_t>(size);
  if (p.stats.allocated_bytes > p.stats.peak_allocated_bytes)
    p.stats.peak_allocated_bytes = p.stats.allocated_bytes;
  return ptr;
}

void caching_free(void* ptr, int device) noexcept {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  auto it = p.live_blocks.find(ptr);
  if (it == p.live_blocks.end()) {
    log_warning("caching allocator: free of a pointer it does not own");
    return;
  }
  p.stats.allocated_bytes -= static_cast<int64_t>(it->second);
  p.free_blocks.emplace(it->second, ptr);
  p.live_blocks.erase(it);
}

void caching_empty_cache(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  // Pending kernels may still read blocks that were freed by the host: wait for them first.
  synchronize(device);
  a.pool(device).release_cache(device);
}

MemoryStats caching_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.pool(device).stats;
}

void caching_reset_peak(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  MemoryStats& s = a.pool(device).stats;
  s.peak_allocated_bytes = s.allocated_bytes;
  s.peak_reserved_bytes = s.reserved_bytes;
}

void* pinned_allocate(size_t nbytes) {
  void* ptr = nullptr;
  CUDL_CUDA_CHECK(cudaHostAlloc(&ptr, nbytes == 0 ? 1 : nbytes, cudaHostAllocDefault));
  return ptr;
}

void pinned_free(void* ptr) noexcept {
  if (ptr) CUDL_CUDA_WARN(cudaFreeHost(ptr));
}

}  // namespace cudl::cuda
