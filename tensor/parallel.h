// CPU threading: one thread count for our loops (OpenMP) and for OpenBLAS.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include <omp.h>

namespace cudl {

// Threads used by cudl's CPU ops and by the BLAS. Defaults to the machine's cores
// (or OMP_NUM_THREADS when set).
int get_num_threads();
void set_num_threads(int n);

// The BLAS cudl runs on, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64
// (OpenMP)": its configuration and threading model as the loaded library reports them.
std::string blas_info();
// True when the loaded OpenBLAS runs its threads on OpenMP (the build cudl links, see
// CMakeLists.txt): then BLAS calls share the OpenMP pool with cudl's loops and run
// single-threaded inside a parallel region.
bool blas_uses_openmp();

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

// Threads parallel_tasks(n, ...) uses: 1 inside a parallel region or for a single task.
inline int parallel_task_threads(int64_t n) {
  if (n <= 1 || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<int64_t>(get_num_threads(), n));
}

// Runs f(i, thread) for every task i in [0, n), handing tasks out one at a time (dynamic
// scheduling, so a thread slowed down by another process simply takes fewer). `thread` is in
// [0, parallel_task_threads(n)) and indexes per-thread scratch memory. f must not throw.
template <class F>
void parallel_tasks(int64_t n, const F& f) {
  const int use = parallel_task_threads(n);
  if (use <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
#pragma omp parallel for num_threads(use) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) f(i, omp_get_thread_num());
}

}  // namespace cudl
