#include "tensor/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

#include "tensor/block_pool.h"
#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/caching_allocator.h"
#endif

namespace cudl {

namespace {

// CPU memory. Blocks of at least kCacheMin bytes come from memory that cudl maps from the
// system itself (mmap) and keeps: glibc would map and unmap each such block on its own, so every
// large tensor of every training step would be fresh memory, a page fault and a kernel
// zero-fill per 4 KiB (measured: 227,000 faults, ~0.45 CPU seconds, per ResNet-18 step at
// 16 x 300x300). A request takes the smallest free block that fits (best fit) and splits off
// the rest when that is at least kCacheMin; a freed block merges with its free neighbours. The
// blocks live in one range of addresses that grows at its end (cpu_arena below), so any free
// neighbours merge. Memory freed by one phase of a step serves requests of other sizes in the
// next, and what is reserved stays near the peak of live bytes: at batch 256 x 224x224, a
// cache keyed by exact size parked 2.8 GB beside 6 GB of live tensors, and a segment per
// request 1 GB (18%); the arena, 1%. Smaller blocks go to malloc, which keeps and reuses them
// itself. CUDL_CPU_CACHE=0 turns all this off (plain aligned malloc/free: for memory checkers,
// or the least memory at the cost of page faults); empty_cache(Device::cpu()) gives back the
// arena's free end and the segments that are entirely free.
constexpr size_t kCacheMin = size_t(1) << 20;
constexpr size_t kCacheGranule = size_t(64) << 10;  // sizes are rounded up to 64 KiB

// The CPU arena of the block pool: addresses for as many bytes as the machine has memory,
// reserved without memory behind them (PROT_NONE, MAP_NORESERVE: no commit charge), made
// usable as the pool grows and given back (mapped over afresh) when it shrinks. The kernel
// backs each page when it is first touched. No arena (separate segments only) when even the
// reservation fails.
BlockPool::Arena cpu_arena() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return {};
  const size_t capacity =
      (static_cast<size_t>(pages) * static_cast<size_t>(page) + kCacheGranule - 1) /
      kCacheGranule * kCacheGranule;
  void* base = mmap(nullptr, capacity, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (base == MAP_FAILED) return {};
  BlockPool::Arena a;
  a.base = static_cast<char*>(base);
  a.capacity = capacity;
  a.commit = [](char* at, size_t n) { return mprotect(at, n, PROT_READ | PROT_WRITE) == 0; };
  a.decommit = [](char* at, size_t n) {
    // A fresh mapping over the range drops its pages and their commit charge. Should that fail
    // (the kernel's limit on mappings), drop the pages and close the range in place.
    if (mmap(at, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
        MAP_FAILED)
      return;
    if (madvise(at, n, MADV_DONTNEED) != 0 || mprotect(at, n, PROT_NONE) != 0)
      log_warning("CPU allocator: could not give back " + std::to_string(n >> 20) +
                  " MiB of its arena");
  };
  return a;
}

void* map_segment(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

struct CpuState {
  explicit CpuState(bool caching_on)
      : caching(caching_on),
        large(kCacheMin, map_segment, [](void* p, size_t n) { munmap(p, n); },
              caching_on ? cpu_arena() : BlockPool::Arena()) {}
  std::mutex mutex;
  MemoryStats s;
  const bool caching;  // CUDL_CPU_CACHE=0 turns it off (no arena reserved then)
  // Large blocks (tensor/block_pool.h) in cpu_arena(), or in segments mapped here when it
  // cannot grow; split when at least kCacheMin would be left over.
  BlockPool large;
  // Blocks from malloc (small ones, and every one with the cache off) and pinned ones.
  int64_t malloc_reserved = 0, malloc_allocs = 0, malloc_frees = 0;
  int64_t watched_peak = -1;  // watch_peak_allocated

  void sync_stats() {
    s.reserved_bytes = malloc_reserved + large.reserved_bytes();
    s.num_device_allocs = malloc_allocs + large.num_maps();
    s.num_device_frees = malloc_frees + large.num_unmaps();
    s.peak_reserved_bytes = std::max(s.peak_reserved_bytes, s.reserved_bytes);
  }
  // A block of `bytes` obtained from malloc (or pinned memory) and given back.
  void note_malloc(int64_t bytes) {
    malloc_allocs++;
    malloc_reserved += bytes;
  }
  void note_malloc_free(int64_t bytes) {
    malloc_frees++;
    malloc_reserved -= bytes;
    sync_stats();
  }
  // A storage of `nbytes` handed out (after its block was found or obtained).
  void note_request(int64_t nbytes) {
    sync_stats();
    s.allocated_bytes += nbytes;
    s.peak_allocated_bytes = std::max(s.peak_allocated_bytes, s.allocated_bytes);
    if (watched_peak >= 0) watched_peak = std::max(watched_peak, s.allocated_bytes);
  }
};
CpuState& cpu_state() {
  static CpuState* s = [] {
    const char* env = std::getenv("CUDL_CPU_CACHE");
    return new CpuState(!(env && std::string(env) == "0"));  // leaked: static tensors free late
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
  st.large.release_free_segments();
  st.sync_stats();
}

void* cpu_cached_allocate(size_t nbytes) {
  CpuState& st = cpu_state();
  const size_t size = cpu_block_size(nbytes);
  std::unique_lock<std::mutex> lock(st.mutex);
  st.s.num_alloc_requests++;
  void* ptr = nullptr;
  if (from_segments(st, size)) {
    ptr = st.large.take(size).ptr;
    if (!ptr)
      CUDL_THROW("out of host memory: tried to allocate ", nbytes, " bytes with ",
                 st.large.reserved_bytes(), " bytes in cudl's segments (",
                 st.large.free_bytes(), " of them free)");
  } else {
    lock.unlock();
    ptr = cpu_allocate(nbytes);
    lock.lock();
    st.note_malloc(static_cast<int64_t>(size));
  }
  st.note_request(static_cast<int64_t>(nbytes));
  return ptr;
}

void cpu_cached_free(void* ptr, size_t nbytes) {
  CpuState& st = cpu_state();
  const size_t size = cpu_block_size(nbytes);
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.allocated_bytes -= static_cast<int64_t>(nbytes);
  if (from_segments(st, size)) {
    if (st.large.give_back(ptr) == 0) log_warning("CPU allocator: free of a block it does not hold");
    return;
  }
  std::free(ptr);
  st.note_malloc_free(static_cast<int64_t>(size));
}

#ifndef CUDL_WITH_CUDA
[[noreturn]] void no_cuda(const char* what) {
  CUDL_THROW(what, ": cudl was built without CUDA (configure with nvcc available or -DCUDL_CUDA=ON)");
}
#endif

// `return call;` for a CUDA device, or the error of a build without CUDA (the call, which names
// the CUDA caching allocator's functions, is then left out).
#ifdef CUDL_WITH_CUDA
#define CUDL_CUDA_CACHE_CALL(what, call) return call
#else
#define CUDL_CUDA_CACHE_CALL(what, call) no_cuda(what)
#endif

// The allocation trace (set_alloc_trace). `on` is read without the lock on every allocation.
struct Trace {
  std::mutex mutex;
  std::atomic<bool> on{false};
  FILE* file = nullptr;
  void open(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex);
    on = false;
    if (file) std::fclose(file);
    file = path.empty() ? nullptr : std::fopen(path.c_str(), "w");
    CUDL_CHECK(path.empty() || file, "set_alloc_trace: cannot write ", path);
    on = file != nullptr;
  }
  void write(Device device, char what, size_t nbytes, const void* ptr) {
    std::lock_guard<std::mutex> lock(mutex);
    if (file) std::fprintf(file, "%s %c %zu %p\n", device.str().c_str(), what, nbytes, ptr);
  }
};
Trace& alloc_trace() {
  static Trace* t = [] {
    auto* tr = new Trace();  // leaked, as the allocators' state
    const char* path = std::getenv("CUDL_ALLOC_TRACE");
    if (path && *path) {
      try {
        tr->open(path);
      } catch (const Error& e) {
        log_warning(std::string("CUDL_ALLOC_TRACE: ") + e.what() + "; not tracing");
      }
    }
    return tr;
  }();
  return *t;
}

void* allocate_untraced(size_t nbytes, Device device, bool pinned) {
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
    st.note_malloc(static_cast<int64_t>(nbytes));
    st.note_request(static_cast<int64_t>(nbytes));
    return ptr;
  }
#else
  (void)pinned;
#endif
  return cpu_cached_allocate(nbytes);
}

void deallocate_untraced(void* ptr, size_t nbytes, Device device, bool pinned) noexcept {
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
    st.note_malloc_free(static_cast<int64_t>(nbytes));
    st.s.allocated_bytes -= static_cast<int64_t>(nbytes);
    return;
  }
#else
  (void)pinned;
#endif
  cpu_cached_free(ptr, nbytes);
}

}  // namespace

namespace detail {

void* allocate(size_t nbytes, Device device, bool pinned) {
  Trace& t = alloc_trace();
  void* ptr = allocate_untraced(nbytes, device, pinned);
  if (t.on) t.write(device, 'a', nbytes, ptr);
  return ptr;
}

void deallocate(void* ptr, size_t nbytes, Device device, bool pinned) noexcept {
  Trace& t = alloc_trace();
  if (t.on) t.write(device, 'f', nbytes, ptr);
  deallocate_untraced(ptr, nbytes, device, pinned);
}

}  // namespace detail

void set_alloc_trace(const std::string& path) { alloc_trace().open(path); }

MemoryStats memory_stats(Device device) {
  if (device.is_cuda()) CUDL_CUDA_CACHE_CALL("memory_stats", cuda::caching_stats(device.index));
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.s;
}

void reset_peak_memory_stats(Device device) {
  if (device.is_cuda())
    CUDL_CUDA_CACHE_CALL("reset_peak_memory_stats", cuda::caching_reset_peak(device.index));
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.peak_allocated_bytes = st.s.allocated_bytes;
  st.s.peak_reserved_bytes = st.s.reserved_bytes;
}

void watch_peak_allocated(Device device) {
  if (device.is_cuda())
    CUDL_CUDA_CACHE_CALL("watch_peak_allocated", cuda::caching_watch_peak(device.index));
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.watched_peak = st.s.allocated_bytes;
}

int64_t watched_peak_allocated(Device device) {
  if (device.is_cuda())
    CUDL_CUDA_CACHE_CALL("watched_peak_allocated", cuda::caching_watched_peak(device.index));
  CpuState& st = cpu_state();
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.watched_peak;
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
