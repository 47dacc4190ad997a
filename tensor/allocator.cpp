#include "tensor/allocator.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <set>
#include <unordered_map>
#include <utility>

#include <sys/mman.h>

#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/caching_allocator.h"
#endif

namespace cudl {

namespace {

// CPU memory. Blocks of at least kCacheMin bytes come from segments that cudl maps from the
// system itself (mmap) and keeps: glibc would map and unmap each such block on its own, so every
// large tensor of every training step would be fresh memory, a page fault and a kernel
// zero-fill per 4 KiB (measured: 227,000 faults, ~0.45 CPU seconds, per ResNet-18 step at
// 16 x 300x300). A request takes the smallest free block that fits (best fit) and splits off
// the rest when that is at least kCacheMin; a freed block merges with its free neighbours in
// the segment. So memory freed by one phase of a step serves requests of other sizes in the
// next, and what is reserved stays near the peak of live bytes (a cache keyed by exact size
// parked 2.8 GB beside 6 GB of live tensors at batch 256 x 224x224). Smaller blocks go to
// malloc, which keeps and reuses them itself. CUDL_CPU_CACHE=0 turns all this off (plain
// aligned malloc/free: for memory checkers, or the least memory at the cost of page faults);
// empty_cache(Device::cpu()) unmaps the segments that are entirely free.
constexpr size_t kCacheMin = size_t(1) << 20;
constexpr size_t kCacheGranule = size_t(64) << 10;  // sizes are rounded up to 64 KiB

// A block of a segment; `prev`/`next` are its neighbours in address order within the segment
// (both null: the block is the whole segment).
struct Block {
  char* addr;
  size_t size;
  bool free;
  Block* prev;
  Block* next;
};

uintptr_t key(const Block* b) { return reinterpret_cast<uintptr_t>(b->addr); }

struct CpuState {
  std::mutex mutex;
  MemoryStats s;
  std::unordered_map<const void*, Block*> blocks;  // every block of every segment, by address
  std::set<std::pair<size_t, uintptr_t>> free_blocks;  // (size, address) of the free ones
  int64_t cached_bytes = 0;                              // bytes in free blocks
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

bool from_segments(const CpuState& st, size_t size) { return st.caching && size >= kCacheMin; }

void* cpu_allocate(size_t nbytes) {
  void* ptr = nullptr;
  const size_t size = cpu_block_size(nbytes);
  if (posix_memalign(&ptr, 64, size) != 0 || !ptr)
    CUDL_THROW("out of host memory: tried to allocate ", nbytes, " bytes");
  return ptr;
}

// Unmaps every segment that is one free block; the caller holds the mutex.
void release_cached(CpuState& st) {
  for (auto it = st.free_blocks.begin(); it != st.free_blocks.end();) {
    Block* b = st.blocks.at(reinterpret_cast<const void*>(it->second));
    if (b->prev || b->next) {
      ++it;
      continue;
    }
    munmap(b->addr, b->size);
    st.s.num_device_frees++;
    st.s.reserved_bytes -= static_cast<int64_t>(b->size);
    st.cached_bytes -= static_cast<int64_t>(b->size);
    st.blocks.erase(b->addr);
    delete b;
    it = st.free_blocks.erase(it);
  }
}

// A new segment of `size` bytes as one block in use; the caller holds the mutex.
Block* map_segment(CpuState& st, size_t size, size_t nbytes) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    // Out of memory with free blocks parked: give whole free segments back and try once more.
    release_cached(st);
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      CUDL_THROW("out of host memory: tried to allocate ", nbytes, " bytes with ",
                 st.s.reserved_bytes, " bytes reserved (", st.cached_bytes, " of them free)");
  }
  auto* b = new Block{static_cast<char*>(p), size, false, nullptr, nullptr};
  st.blocks.emplace(b->addr, b);
  st.s.num_device_allocs++;
  st.s.reserved_bytes += static_cast<int64_t>(size);
  return b;
}

// The smallest free block of at least `size` bytes, split to `size` when the rest is worth
// keeping, marked in use; null when none fits. The caller holds the mutex.
Block* take_free_block(CpuState& st, size_t size) {
  auto it = st.free_blocks.lower_bound({size, 0});
  if (it == st.free_blocks.end()) return nullptr;
  Block* b = st.blocks.at(reinterpret_cast<const void*>(it->second));
  st.free_blocks.erase(it);
  if (b->size - size >= kCacheMin) {
    auto* rest = new Block{b->addr + size, b->size - size, true, b, b->next};
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    st.blocks.emplace(rest->addr, rest);
    st.free_blocks.emplace(rest->size, key(rest));
  } else {
    st.cached_bytes -= static_cast<int64_t>(b->size - size);  // the small rest goes with it
  }
  st.cached_bytes -= static_cast<int64_t>(size);
  b->free = false;
  return b;
}

// Marks the block at `ptr` free and merges it with free neighbours; the caller holds the mutex.
void give_back_block(CpuState& st, void* ptr) {
  auto found = st.blocks.find(ptr);
  CUDL_CHECK(found != st.blocks.end() && !found->second->free,
             "internal error: freeing a CPU block that is not in use");
  Block* b = found->second;
  b->free = true;
  st.cached_bytes += static_cast<int64_t>(b->size);
  auto absorb_next = [&](Block* left) {  // left and left->next are free: one block
    Block* right = left->next;
    st.free_blocks.erase({right->size, key(right)});
    left->size += right->size;
    left->next = right->next;
    if (right->next) right->next->prev = left;
    st.blocks.erase(right->addr);
    delete right;
  };
  if (b->next && b->next->free) absorb_next(b);
  if (b->prev && b->prev->free) {
    Block* left = b->prev;
    st.free_blocks.erase({left->size, key(left)});
    absorb_next(left);
    b = left;
  }
  st.free_blocks.emplace(b->size, key(b));
}

void* cpu_cached_allocate(size_t nbytes) {
  CpuState& st = cpu_state();
  const size_t size = cpu_block_size(nbytes);
  std::unique_lock<std::mutex> lock(st.mutex);
  st.s.num_alloc_requests++;
  void* ptr = nullptr;
  if (from_segments(st, size)) {
    Block* b = take_free_block(st, size);
    if (!b) b = map_segment(st, size, nbytes);
    ptr = b->addr;
  } else {
    lock.unlock();
    ptr = cpu_allocate(nbytes);
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
  if (from_segments(st, size)) {
    give_back_block(st, ptr);
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
