// CPU threading: one thread count for our loops (OpenMP) and for OpenBLAS.
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace cudl {

// Threads used by cudl's CPU ops and by the BLAS. Defaults to the machine's cores
// (or OMP_NUM_THREADS when set).
int get_num_threads();
void set_num_threads(int n);

// Runs f(begin_i, end_i) on disjoint chunks of [begin, end) in parallel. Runs inline when the
// range is at most `grain` long or when already inside a parallel region. f must not throw.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = get_num_threads();
  if (n <= grain || threads <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int64_t max_chunks = (n + grain - 1) / std::max<int64_t>(grain, 1);
  const int use = static_cast<int>(std::min<int64_t>(threads, max_chunks));
#pragma omp parallel num_threads(use)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = begin + t * chunk;
    const int64_t e = std::min(end, b + chunk);
    if (b < e) f(b, e);
  }
}

}  // namespace cudl
