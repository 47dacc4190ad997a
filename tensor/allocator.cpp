#include "tensor/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/caching_allocator.h"
#endif

namespace cudl {

namespace {

// CPU statistics; the CPU has no cache, so reserved == allocated.
struct CpuStats {
  std::mutex mutex;
  MemoryStats s;
};
CpuStats& cpu_stats() {
  static CpuStats* s = new CpuStats();  // leaked: used by static tensors during exit
  return *s;
}

void* cpu_allocate(size_t nbytes) {
  void* ptr = nullptr;
  size_t size = (nbytes + 63) / 64 * 64;
  if (size == 0) size = 64;
  if (posix_memalign(&ptr, 64, size) != 0 || !ptr)
    CUDL_THROW("out of host memory: tried to allocate ", nbytes, " bytes");
  return ptr;
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
  void* ptr = nullptr;
#ifdef CUDL_WITH_CUDA
  // Pinned memory only makes sense with a GPU to copy to; fall back to pageable otherwise.
  if (pinned && cuda_device_count() > 0) ptr = cuda::pinned_allocate(nbytes);
#endif
  if (!ptr) ptr = cpu_allocate(nbytes);
  CpuStats& st = cpu_stats();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.num_alloc_requests++;
  st.s.num_device_allocs++;
  st.s.allocated_bytes += static_cast<int64_t>(nbytes);
  st.s.reserved_bytes = st.s.allocated_bytes;
  if (st.s.allocated_bytes > st.s.peak_allocated_bytes) {
    st.s.peak_allocated_bytes = st.s.allocated_bytes;
    st.s.peak_reserved_bytes = st.s.allocated_bytes;
  }
  return ptr;
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
  } else {
    std::free(ptr);
  }
#else
  std::free(ptr);
#endif
  CpuStats& st = cpu_stats();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.num_device_frees++;
  st.s.allocated_bytes -= static_cast<int64_t>(nbytes);
  st.s.reserved_bytes = st.s.allocated_bytes;
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
  CpuStats& st = cpu_stats();
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
  CpuStats& st = cpu_stats();
  std::lock_guard<std::mutex> lock(st.mutex);
  st.s.peak_allocated_bytes = st.s.allocated_bytes;
  st.s.peak_reserved_bytes = st.s.reserved_bytes;
}

void empty_cache(Device device) {
#ifdef CUDL_WITH_CUDA
  if (device.is_cuda()) cuda::caching_empty_cache(device.index);
#else
  (void)device;
#endif
}

}  // namespace cudl
