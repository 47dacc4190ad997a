// Timing helpers for the benchmarks: medians of repeated runs, synchronised on CUDA.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "tensor/ops.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/context.h"
#endif

namespace cudl::bench {

inline void sync(Device d) {
#ifdef CUDL_WITH_CUDA
  if (d.is_cuda()) cuda::synchronize(d.index);
#else
  (void)d;
#endif
}

// Seconds per call of f: `warmup` untimed calls, then the median of `reps` timed calls.
inline double median_seconds(Device d, int warmup, int reps, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  sync(d);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    sync(d);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace cudl::bench
