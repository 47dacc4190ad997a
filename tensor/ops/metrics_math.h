// Per-element pieces of the metric kernels, shared by the CPU loops and the CUDA kernels.
// See tensor/ops/metrics.h for the metrics themselves.
#pragma once

#include <cstdint>

#include "tensor/macros.h"

namespace cudl::math {

// A target counts as a positive label when it is above 0.5 (multi-hot 0/1 targets, or soft
// labels rounded to the nearest class).
template <class T>
CUDL_HOST_DEVICE_INLINE bool is_positive_label(T y) {
  return y > T(0.5);
}

// How many of the ascending thresholds t[0..count) lie strictly below p, i.e. the number of
// thresholds at which p is predicted positive (pred = p > t, strict, in p's dtype). Because the
// thresholds are sorted, p is positive exactly at thresholds 0 .. rank-1. NaN gives 0 (never
// positive).
template <class T>
CUDL_HOST_DEVICE_INLINE int64_t threshold_rank(T p, const T* t, int64_t count) {
  int64_t lo = 0, hi = count;  // invariant: t[i] < p for i < lo, !(t[i] < p) for i >= hi
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (t[mid] < p) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// num / den with the 0/0 convention of scikit-learn's zero_division=0: an empty denominator
// (no predicted positives for precision, no actual positives for recall) scores 0.
CUDL_HOST_DEVICE_INLINE double ratio_or_zero(double num, double den) {
  return den > 0.0 ? num / den : 0.0;
}

}  // namespace cudl::math
