// CUDA metric kernels.
//
// threshold_histogram: one thread per row (multi-label data has few classes), the histogram
// and row counters in shared memory (int atomics), flushed once per block with 64-bit global
// atomics; when they do not fit in shared memory (thousands of classes) the threads add to
// global memory directly. Integer counts: the result does not depend on the order.
// average_precision_terms: for each (row, class) pair, counts the rows of that class with a
// score at least as high, in 256-row tiles staged through shared memory: O(n^2) per class,
// a few milliseconds for tens of thousands of validation rows.
#include <algorithm>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/ops/metrics_kernels.h"
#include "tensor/ops/metrics_math.h"

namespace cudl::cuda {

namespace {
constexpr size_t kSharedLimit = 48 * 1024;  // dynamic shared memory available without opt-in

__device__ __forceinline__ void add_global(int64_t* p, long long v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

// kShared: counters in shared memory (else straight to global). Shared layout: t thresholds
// (T), then hist_size + t + 1 int counters.
template <class T, bool kShared>
__global__ void histogram_kernel(int64_t n, int64_t c, const T* __restrict__ probs,
                                 const T* __restrict__ targets, const T* __restrict__ thresholds,
                                 int64_t t, int64_t* __restrict__ hist, int64_t* __restrict__ rows) {
  extern __shared__ unsigned char smem[];
  T* thr = reinterpret_cast<T*>(smem);
  const int64_t hist_size = c * (t + 1) * 2;
  int* sh = reinterpret_cast<int*>(smem + ((t * sizeof(T) + 7) / 8) * 8);
  for (int64_t k = threadIdx.x; k < t; k += blockDim.x) thr[k] = thresholds[k];
  if (kShared)
    for (int64_t k = threadIdx.x; k < hist_size + t + 1; k += blockDim.x) sh[k] = 0;
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = t;
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = math::threshold_rank(probs[i * c + j], thr, t);
      const bool y = math::is_positive_label(targets[i * c + j]);
      const int64_t slot = (j * (t + 1) + k) * 2 + (y ? 1 : 0);
      if (kShared) {
        atomicAdd(&sh[slot], 1);
      } else {
        add_global(&hist[slot], 1);
      }
      if (y) {
        hi = k < hi ? k : hi;
      } else {
        lo = k > lo ? k : lo;
      }
    }
    if (lo < hi) {
      if (kShared) {
        atomicAdd(&sh[hist_size + lo], 1);
        atomicAdd(&sh[hist_size + hi], -1);
      } else {
        add_global(&rows[lo], 1);
        add_global(&rows[hi], -1);
      }
    }
  }
  if (kShared) {
    __syncthreads();
    for (int64_t k = threadIdx.x; k < hist_size + t + 1; k += blockDim.x) {
      const int v = sh[k];
      if (v != 0) add_global(k < hist_size ? &hist[k] : &rows[k - hist_size], v);
    }
  }
}

template <class T>
__global__ void ap_terms_kernel(int64_t n, int64_t c, const T* __restrict__ probs,
                                const T* __restrict__ targets, double* __restrict__ terms) {
  __shared__ T tile_s[kBlock];
  __shared__ unsigned char tile_y[kBlock];
  const int64_t j = blockIdx.y;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const bool valid = i < n;
  const T s = valid ? probs[i * c + j] : T(0);
  const bool pos = valid && math::is_positive_label(targets[i * c + j]);
  int64_t ge = 0, ge_pos = 0;
  for (int64_t base = 0; base < n; base += blockDim.x) {
    const int64_t k = base + threadIdx.x;
    if (k < n) {
      tile_s[threadIdx.x] = probs[k * c + j];
      tile_y[threadIdx.x] = math::is_positive_label(targets[k * c + j]) ? 1 : 0;
    }
    __syncthreads();
    const int64_t m = n - base < blockDim.x ? n - base : blockDim.x;
    if (pos) {
      for (int64_t q = 0; q < m; ++q) {
        const bool at_least = tile_s[q] >= s;
        ge += at_least;
        ge_pos += at_least && tile_y[q];
      }
    }
    __syncthreads();
  }
  if (valid) terms[i * c + j] = pos ? static_cast<double>(ge_pos) / static_cast<double>(ge) : 0.0;
}
}  // namespace

void threshold_histogram(cudaStream_t stream, DType dtype, int64_t n, int64_t c, const void* probs,
                         const void* targets, const void* thresholds, int64_t t, int64_t* hist,
                         int64_t* rows) {
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING(dtype, "threshold_histogram", [&] {
    using T = scalar_t;
    const size_t thr_bytes = ((t * sizeof(T) + 7) / 8) * 8;
    const size_t counter_bytes = static_cast<size_t>(c * (t + 1) * 2 + t + 1) * sizeof(int);
    // Enough blocks to fill the GPU, few enough that the per-block flush stays cheap.
    const unsigned grid = std::min<unsigned>(grid_for(n), 512);
    auto p = static_cast<const T*>(probs);
    auto y = static_cast<const T*>(targets);
    auto th = static_cast<const T*>(thresholds);
    if (thr_bytes + counter_bytes <= kSharedLimit) {
      histogram_kernel<T, true><<<grid, kBlock, thr_bytes + counter_bytes, stream>>>(
          n, c, p, y, th, t, hist, rows);
    } else {
      CUDL_CHECK(thr_bytes <= kSharedLimit, "threshold_histogram: ", t,
                 " thresholds do not fit in shared memory");
      histogram_kernel<T, false><<<grid, kBlock, thr_bytes, stream>>>(n, c, p, y, th, t, hist, rows);
    }
    CUDL_KERNEL_CHECK();
  });
}

void average_precision_terms(cudaStream_t stream, DType dtype, int64_t n, int64_t c,
                             const void* probs, const void* targets, double* terms) {
  if (n == 0 || c == 0) return;
  CUDL_CHECK(c <= 65535, "average_precision: at most 65535 classes on CUDA, got ", c);
  CUDL_DISPATCH_FLOATING(dtype, "average_precision_terms", [&] {
    const dim3 grid(static_cast<unsigned>((n + kBlock - 1) / kBlock), static_cast<unsigned>(c));
    ap_terms_kernel<<<grid, kBlock, 0, stream>>>(n, c, static_cast<const scalar_t*>(probs),
                                                 static_cast<const scalar_t*>(targets), terms);
    CUDL_KERNEL_CHECK();
  });
}

}  // namespace cudl::cuda
