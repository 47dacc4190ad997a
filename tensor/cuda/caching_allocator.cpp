#include "tensor/cuda/caching_allocator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/block_pool.h"
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace cudl::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  size_t r = n < kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

double mib(int64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

// One device's memory. Small blocks (< 1 MiB) are cached by size and reused for requests up to
// half their size. Large ones live in cudaMalloc'd segments managed by a BlockPool
// (tensor/block_pool.h): best fit, split, merged when freed, as on the CPU.
struct DevicePool {
  explicit DevicePool(int device)
      : large(kSmallLimit,
              [this, device](size_t n) -> void* {
                DeviceGuard guard(device);
                void* p = nullptr;
                last_error = cudaMalloc(&p, n);
                if (last_error == cudaSuccess) return p;
                cudaGetLastError();  // clear it: the caller reports it
                return nullptr;
              },
              [device](void* p, size_t) {
                DeviceGuard guard(device);
                CUDL_CUDA_WARN(cudaFree(p));
              }) {}

  std::multimap<size_t, void*> free_small;        // size -> block
  std::unordered_map<void*, size_t> live_blocks;  // block in use -> its size
  BlockPool large;
  cudaError_t last_error = cudaSuccess;
  int64_t small_reserved = 0, small_allocs = 0, small_frees = 0;
  MemoryStats stats;

  void sync_stats() {
    stats.reserved_bytes = small_reserved + large.reserved_bytes();
    stats.num_device_allocs = small_allocs + large.num_maps();
    stats.num_device_frees = small_frees + large.num_unmaps();
    stats.peak_reserved_bytes = std::max(stats.peak_reserved_bytes, stats.reserved_bytes);
  }

  void release_cache(int device) {
    DeviceGuard guard(device);
    for (auto& [size, ptr] : free_small) {
      CUDL_CUDA_WARN(cudaFree(ptr));
      small_reserved -= static_cast<int64_t>(size);
      small_frees++;
    }
    free_small.clear();
    large.release_free_segments();
    sync_stats();
  }

  [[noreturn]] void throw_failure(int device, size_t size, cudaError_t err) {
    if (err == cudaErrorMemoryAllocation) {
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      CUDL_THROW("CUDA out of memory on cuda:", device, ": tried to allocate ",
                 mib(static_cast<int64_t>(size)), " MiB; cudl holds ", mib(stats.allocated_bytes),
                 " MiB in tensors (", mib(stats.reserved_bytes), " MiB reserved); the device has ",
                 mib(static_cast<int64_t>(free_b)), " MiB free of ",
                 mib(static_cast<int64_t>(total_b)), " MiB");
    }
    CUDL_THROW("cudaMalloc(", size, ") on cuda:", device, " failed: ", cudaGetErrorString(err));
  }
};

struct Allocator {
  std::mutex mutex;
  std::vector<std::unique_ptr<DevicePool>> pools;

  DevicePool& pool(int device) {
    if (static_cast<size_t>(device) >= pools.size()) pools.resize(device + 1);
    if (!pools[device]) pools[device] = std::make_unique<DevicePool>(device);
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
  if (size >= kSmallLimit) {
    BlockPool::Taken t = p.large.take(size);  // gives free large segments back and retries
    if (!t.ptr && p.last_error == cudaErrorMemoryAllocation) {
      p.release_cache(device);  // the small blocks too
      t = p.large.take(size);
    }
    if (!t.ptr) {
      p.sync_stats();
      p.throw_failure(device, size, p.last_error);
    }
    ptr = t.ptr;
    size = t.size;
  } else {
    auto it = p.free_small.lower_bound(size);
    if (it != p.free_small.end() && it->first <= 2 * size) {
      size = it->first;
      ptr = it->second;
      p.free_small.erase(it);
    } else {
      DeviceGuard guard(device);
      cudaError_t err = cudaMalloc(&ptr, size);
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        p.release_cache(device);
        err = cudaMalloc(&ptr, size);
      }
      if (err != cudaSuccess) {
        cudaGetLastError();
        p.sync_stats();
        p.throw_failure(device, size, err);
      }
      p.small_allocs++;
      p.small_reserved += static_cast<int64_t>(size);
    }
  }
  p.sync_stats();
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
  if (it->second >= kSmallLimit) {
    p.large.give_back(ptr);
  } else {
    p.free_small.emplace(it->second, ptr);
  }
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
