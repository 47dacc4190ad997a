#include "tensor/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/caching_allocator.h"
#endif

namespace cudl {

namespace {

// CPU memory: blocks of at least kCacheMin bytes are kept when freed and handed out again for
// a request of the same rounded size. glibc serves such sizes with mmap and returns them to
// the kernel on free, so without the cache every large tensor of every training step is fresh
// memory: a page fault and a kernel zero-fill per 4 KiB (measured: 227,000 faults, ~0.45 CPU
// seconds, per ResNet-18 step at 16 x 300x300). A training loop requests the same sizes every
// step, so after the first step every large block comes from the cache. Smaller blocks go to
// malloc, which keeps and reuses them itself. CUDL_CPU_CACHE=0 turns the cache off (e.g. for
// memory checkers); empty_cache(Device::cpu()) returns the cached blocks to the system.
constexpr size_t kCacheMin = size_t(1) << 20;
constexpr size_t kCacheGranule = size_t(64) << 10;  // sizes are rounded up to 64 KiB

struct CpuState {
  std::mutex mutex;
  MemoryStats s;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  int64_t cached_bytes = 0;
  bool caching = true;
};
CpuState& cpu_state() {
  static CpuState* s = [] {
    auto* st = new CpuState();  // leaked: used by static tensors during exit
    const char* env = std::getenv("CUDL_CPU_CACHE");
    st->caching = !(env && std::string(env) == "0");
    return st;
  }();
  return *s;
}

size_t cpu_block_size(size_t nbytes) {
  if (nbytes < kCacheMin) return (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  return (nbytes + kCacheGranule - 1) / kCacheGranule * kCacheGranule;
}

void* cpu_allocate(size_t nbytes) {
  void* ptr = nullptr;
  const size_t size = cpu_block_size(nbytes);
  if (posix_memalign(&ptr, 64, size) != 0 || !ptr)
    CUDL_THROW("out of host memory: tried to allocate ", nbytes, " bytes");
  return ptr;
}

// Frees every cached block; the caller holds the mutex.
void release_cached(CpuState& st) {
  for (auto& [size, blocks] : st.free_blocks) {
    for (void* p : blocks) std::free(p);
    st.s.num_device_frees += static_cast<int64_t>(blocks.size());
    st.s.reserved_bytes -= static_cast<int64_t>(size * blocks.size());
  }
  st.free_blocks.clear();
  st.cached_bytes = 0;
}

// A CPU block of at least nbytes: from the cache when one of the same rounded size is free.
void* cpu_cached_allocate(size_t nbytes) {
  CpuState& st = cpu_state();
  const size_t size = cpu_block_size(nbytes);
  std::unique_lock<std::mutex> lock(st.mutex);
  st.s.num_alloc_requests++;
  void* ptr = nullptr;
  if (st.caching && size >= kCacheMin) {
    auto it = st.free_blocks.find(size);
    if (it != st.free_blocks.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      st.cached_bytes -= static_cast<int64_t>(size);
    }
  }
  if (!ptr) {
    lock.unlock();
    try {
      ptr = cpu_allocate(nbytes);
    } catch (const Error&) {
      // Out of memory with blocks parked in the cache: give them back and try once more.
      lock.lock();
      release_cached(st);
      lock.unlock();
      ptr = cpu_allocate(nbytes);
    }
    lock.lock();
    st.s.num_device_allocs++;
    st.s.reserved_bytes += static_cast<int64_t>(size);
  }
  st.s.allocated_bytes += static_cast<int64_t>(nbytes);
  st.s.peak_allocated_bytes = std::max(st.s.peak_allocated_bytes, st.s.allocated_bytes);
  st.s.peak_reserved_bytes = std::max(st.s.peak_reserved_bytes, st.s.reserved_bytes);
  return ptr;
}

void cpu_cached_free(void* ptr, size_t nbytes) {
  CpuState& st = cpu_state();
  const size_t size = cpu_block_size(nbytes);
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.allocated_bytes -= static_cast<int64_t>(nbytes);
  if (st.caching && size >= kCacheMin) {
    st.free_blocks[size].push_back(ptr);
    st.cached_bytes += static_cast<int64_t>(size);
    return;
  }
  std::free(ptr);
  st.s.num_device_frees++;
  st.s.reserved_bytes -= static_cast<int64_t>(size);
}

#ifndef CUDL_WITH_CUDA
[[noreturn]] void no_cuda(const char* what) {
  CUDL_THROW(what, ": cudl was built without CUDA (configure with nvcc available or -DCUDL_CUDA=ON)");
}
#endif

}  // namespace

namespace detail {

void* allocate(size_t nbytes, Device device, bool pinned) {
  if (device.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    return cuda::caching_allocate(nbytes, device.index);
#else
    no_cuda("allocating CUDA memory");
#endif
  }
#ifdef CUDL_WITH_CUDA
  // Pinned memory only makes sense with a GPU to copy to; fall back to pageable otherwise.
  if (pinned && cuda_device_count() > 0) {
    void* ptr = cuda::pinned_allocate(nbytes);
    CpuState& st = cpu_state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.s.num_alloc_requests++;
    st.s.num_device_allocs++;
    st.s.allocated_bytes += static_cast<int64_t>(nbytes);
    st.s.reserved_bytes += static_cast<int64_t>(nbytes);
    st.s.peak_allocated_bytes = std::max(st.s.peak_allocated_bytes, st.s.allocated_bytes);
    st.s.peak_reserved_bytes = std::max(st.s.peak_reserved_bytes, st.s.reserved_bytes);
    return ptr;
  }
#else
  (void)pinned;
#endif
  return cpu_cached_allocate(nbytes);
}

void deallocate(void* ptr, size_t nbytes, Device device, bool pinned) noexcept {
  if (device.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    cuda::caching_free(ptr, device.index);
#endif
    return;
  }
#ifdef CUDL_WITH_CUDA
  if (pinned && cuda_device_count() > 0) {
    cuda::pinned_free(ptr);
    CpuState& st = cpu_state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.s.num_device_frees++;
    st.s.allocated_bytes -= static_cast<int64_t>(nbytes);
    st.s.reserved_bytes -= static_cast<int64_t>(nbytes);
    return;
  }
#else
  (void)pinned;
#endif
  cpu_cached_free(ptr, nbytes);
}

}  // namespace detail

MemoryStats memory_stats(Device device) {
  if (device.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    return cuda::caching_stats(device.index);
#else
    no_cuda("memory_stats");
#endif
  }
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.s;
}

void reset_peak_memory_stats(Device device) {
  if (device.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    cuda::caching_reset_peak(device.index);
    return;
#else
    no_cuda("reset_peak_memory_stats");
#endif
  }
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.peak_allocated_bytes = st.s.allocated_bytes;
  st.s.peak_reserved_bytes = st.s.reserved_bytes;
}

void empty_cache(Device device) {
  if (device.is_cuda()) {
#ifdef CUDL_WITH_CUDA
    cuda::caching_empty_cache(device.index);
#endif
    return;
  }
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  release_cached(st);
}

}  // namespace cudl
