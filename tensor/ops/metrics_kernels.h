// Launchers of the metric kernels (tensor/ops/metrics.h), one set per backend with the same
// arguments; the CUDA ones take the stream first. Raw pointers to contiguous memory.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

#define CUDL_METRICS_KERNELS(STREAM_ARG)                                                        \
  /* One pass over probs and targets, both (n, c), against t ascending thresholds (dtype of   \
     probs). Element (i, j) with rank K = #thresholds strictly below p_ij (so it is predicted \
     positive exactly at thresholds 0..K-1) adds 1 to hist[(j * (t + 1) + K) * 2 + y_ij]      \
     (y = target > 0.5). Row i is entirely right at thresholds [lo, hi) with lo = the largest \
     K of its negatives and hi = the smallest K of its positives; it adds +1 to rows[lo] and  \
     -1 to rows[hi] when lo < hi. hist (c * (t + 1) * 2) and rows (t + 1) must be zeroed. */  \
  void threshold_histogram(STREAM_ARG DType dtype, int64_t n, int64_t c, const void* probs,     \
                           const void* targets, const void* thresholds, int64_t t,             \
                           int64_t* hist, int64_t* rows);                                      \
  /* Average-precision terms, (n, c) doubles: for a positive (i, j), the precision at the     \
     threshold p_ij, #{k : p_kj >= p_ij, y_kj positive} / #{k : p_kj >= p_ij} (ties share    \
     one threshold, as scikit-learn); 0 for a negative. AP_j = sum_i terms_ij / #positives. */ \
  void average_precision_terms(STREAM_ARG DType dtype, int64_t n, int64_t c, const void* probs, \
                               const void* targets, double* terms);

namespace cpu {
CUDL_METRICS_KERNELS()
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_METRICS_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
}  // namespace cuda
#endif

#undef CUDL_METRICS_KERNELS

}  // namespace cudl
