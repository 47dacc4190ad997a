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

// A set of cached blocks. Small blocks (< 1 MiB) are cached by size and reused for requests up
// to half their size. Large ones live in cudaMalloc'd segments managed by a BlockPool
// (tensor/block_pool.h): best fit, split, merged when freed, as on the CPU.
struct Cache {
  explicit Cache(int device)
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

  std::multimap<size_t, void*> free_small;  // size -> block
  BlockPool large;
  cudaError_t last_error = cudaSuccess;
  int64_t small_reserved = 0, small_allocs = 0, small_frees = 0;
  int64_t live = 0;  // blocks handed out and not freed yet

  int64_t reserved() const { return small_reserved + large.reserved_bytes(); }

  // Gives every free small block and every entirely free segment back to the driver.
  void release(int device) {
    DeviceGuard guard(device);
    for (auto& [size, ptr] : free_small) {
      CUDL_CUDA_WARN(cudaFree(ptr));
      small_reserved -= static_cast<int64_t>(size);
      small_frees++;
    }
    free_small.clear();
    large.release_free_segments();
  }

  // A block of `size` bytes (rounded); null with `err` set when the driver has no memory. With
  // `may_release`, a failed cudaMalloc first gives this cache's free blocks back and retries.
  void* take(size_t& size, bool may_release, int device, cudaError_t& err) {
    err = cudaSuccess;
    if (size >= kSmallLimit) {
      BlockPool::Taken t = large.take(size, may_release);  // may give free segments back, retry
      if (!t.ptr && last_error == cudaErrorMemoryAllocation && may_release) {
        release(device);  // the small blocks too
        t = large.take(size);
      }
      if (!t.ptr) {
        err = last_error == cudaSuccess ? cudaErrorMemoryAllocation : last_error;
        return nullptr;
      }
      size = t.size;
      return t.ptr;
    }
    auto it = free_small.lower_bound(size);
    if (it != free_small.end() && it->first <= 2 * size) {
      size = it->first;
      void* ptr = it->second;
      free_small.erase(it);
      return ptr;
    }
    DeviceGuard guard(device);
    void* ptr = nullptr;
    err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation && may_release) {
      cudaGetLastError();
      release(device);
      err = cudaMalloc(&ptr, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    small_allocs++;
    small_reserved += static_cast<int64_t>(size);
    return ptr;
  }

  void give_back(void* ptr, size_t size) {
    if (size >= kSmallLimit) {
      large.give_back(ptr);
    } else {
      free_small.emplace(size, ptr);
    }
  }
};

// The memory a CUDA graph recorded: blocks allocated while it was captured, and blocks of the
// main cache freed meanwhile (the graph's kernels may still use them at every replay).
struct GraphPool {
  explicit GraphPool(int device) : cache(device) {}
  Cache cache;
  std::vector<std::pair<void*, size_t>> deferred;  // main-cache blocks freed during the capture
  bool released = false;                           // the graph is gone
  bool release_pending = false;  // released while another graph was captured: finish after it
};

// One device's memory: the main cache and the pools of CUDA graphs.
struct DevicePool {
  explicit DevicePool(int device) : main(device) {}

  struct Live {
    size_t size;
    int pool;  // 0: the main cache, else a graph pool's id
  };
  Cache main;
  std::map<int, std::unique_ptr<GraphPool>> graphs;
  int capturing = 0;  // the graph pool receiving allocations, 0 when no capture runs
  int next_id = 1;
  std::unordered_map<void*, Live> live_blocks;
  MemoryStats stats;
  int64_t watched_peak = -1;  // caching_watch_peak

  void sync_stats() {
    int64_t reserved = main.reserved(), allocs = main.small_allocs + main.large.num_maps(),
            frees = main.small_frees + main.large.num_unmaps();
    for (const auto& [id, g] : graphs) {
      reserved += g->cache.reserved();
      allocs += g->cache.small_allocs + g->cache.large.num_maps();
      frees += g->cache.small_frees + g->cache.large.num_unmaps();
    }
    stats.reserved_bytes = reserved;
    stats.num_device_allocs = allocs;
    stats.num_device_frees = frees;
    stats.peak_reserved_bytes = std::max(stats.peak_reserved_bytes, stats.reserved_bytes);
  }

  // Frees what a released graph's pool holds free (nothing allocates from it any more; blocks
  // still in use keep their segments) and forgets the pool once it is empty. Not while a
  // capture runs: cudaFree would synchronise the device.
  void drop_if_done(int id, int device) {
    auto it = graphs.find(id);
    if (capturing || it == graphs.end() || !it->second->released) return;
    it->second->cache.release(device);
    if (it->second->cache.live == 0 && it->second->cache.reserved() == 0) graphs.erase(it);
  }

  [[noreturn]] void throw_failure(int device, size_t size, cudaError_t err) {
    sync_stats();
    const char* during = capturing ? " while a CUDA graph was being captured" : "";
    if (err == cudaErrorMemoryAllocation) {
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      CUDL_THROW_DEVICE(true, "CUDA out of memory on cuda:", device, during, ": tried to allocate ",
                 mib(static_cast<int64_t>(size)), " MiB; cudl holds ", mib(stats.allocated_bytes),
                 " MiB in tensors (", mib(stats.reserved_bytes), " MiB reserved); the device has ",
                 mib(static_cast<int64_t>(free_b)), " MiB free of ",
                 mib(static_cast<int64_t>(total_b)), " MiB");
    }
    CUDL_THROW_DEVICE(false, "cudaMalloc(", size, ") on cuda:", device, during, " failed: ",
                      cudaGetErrorString(err));
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

  // While a graph is captured its blocks come from its own pool, and nothing is given back to
  // the driver (cudaFree would synchronise the device, which a capture forbids).
  const int pool_id = p.capturing;
  Cache& c = pool_id ? p.graphs.at(pool_id)->cache : p.main;
  cudaError_t err = cudaSuccess;
  void* ptr = c.take(size, /*may_release=*/pool_id == 0, device, err);
  if (!ptr) p.throw_failure(device, size, err);
  c.live++;
  p.sync_stats();
  p.live_blocks.emplace(ptr, DevicePool::Live{size, pool_id});
  p.stats.allocated_bytes += static_cast<int64_t>(size);
  if (p.stats.allocated_bytes > p.stats.peak_allocated_bytes)
    p.stats.peak_allocated_bytes = p.stats.allocated_bytes;
  if (p.watched_peak >= 0) p.watched_peak = std::max(p.watched_peak, p.stats.allocated_bytes);
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
  const DevicePool::Live live = it->second;
  p.live_blocks.erase(it);
  p.stats.allocated_bytes -= static_cast<int64_t>(live.size);
  if (live.pool == 0) {
    p.main.live--;
    if (p.capturing) {
      // The graph being captured may use this block at each replay: it stays out of the main
      // cache until the graph is released.
      p.graphs.at(p.capturing)->deferred.emplace_back(ptr, live.size);
    } else {
      p.main.give_back(ptr, live.size);
    }
    return;
  }
  auto g = p.graphs.find(live.pool);
  if (g == p.graphs.end()) return;  // cannot happen: a pool lives while it has blocks
  g->second->cache.live--;
  g->second->cache.give_back(ptr, live.size);
  try {
    p.drop_if_done(live.pool, device);  // may throw (DeviceGuard): this function may not
  } catch (const std::exception& e) {
    log_warning(std::string("caching allocator: releasing a CUDA graph's pool failed: ") +
                e.what());
  }
  p.sync_stats();
}

void caching_empty_cache(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  CUDL_CHECK(!p.capturing, "empty_cache() while a CUDA graph is being captured on cuda:", device);
  // Pending kernels may still read blocks that were freed by the host: wait for them first.
  synchronize(device);
  p.main.release(device);
  p.sync_stats();
}

int caching_begin_graph_pool(int device, size_t reserve_bytes) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  CUDL_CHECK(!p.capturing, "a CUDA graph is already being captured on cuda:", device);
  const int id = p.next_id++;
  auto pool = std::make_unique<GraphPool>(device);
  if (reserve_bytes >= kSmallLimit) {
    // One segment, handed back at once: a single free block the capture's requests carve up.
    // Without the memory (the map function has cleared the error) the pool maps per request,
    // as without a reservation.
    BlockPool::Taken t = pool->cache.large.take(round_size(reserve_bytes), /*may_release=*/false);
    if (t.ptr) pool->cache.large.give_back(t.ptr);
  }
  p.graphs.emplace(id, std::move(pool));
  p.capturing = id;
  p.sync_stats();
  return id;
}

namespace {
// Returns a released graph's held-back blocks to the main cache and frees what it can.
void finish_release(DevicePool& p, int device, int id) {
  auto it = p.graphs.find(id);
  if (it == p.graphs.end()) return;
  // A replay may still be running: its blocks are reused only after it is done.
  synchronize(device);
  for (auto& [ptr, size] : it->second->deferred) p.main.give_back(ptr, size);
  it->second->deferred.clear();
  it->second->released = true;
  it->second->release_pending = false;
  p.drop_if_done(id, device);
}
}  // namespace

void caching_end_graph_pool(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  p.capturing = 0;
  std::vector<int> pending;
  // Graphs released during the capture, and released ones whose last blocks were freed then.
  for (const auto& [id, g] : p.graphs)
    if (g->release_pending || g->released) pending.push_back(id);
  for (int id : pending) finish_release(p, device, id);
  p.sync_stats();
}

void caching_release_graph_pool(int device, int id) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  auto it = p.graphs.find(id);
  if (it == p.graphs.end()) return;
  if (p.capturing == id) p.capturing = 0;  // a capture that failed
  if (p.capturing) {
    // Another graph is being captured: no synchronising now; caching_end_graph_pool finishes.
    it->second->release_pending = true;
    return;
  }
  finish_release(p, device, id);
  p.sync_stats();
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

void caching_watch_peak(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  DevicePool& p = a.pool(device);
  p.watched_peak = p.stats.allocated_bytes;
}

int64_t caching_watched_peak(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.pool(device).watched_peak;
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
