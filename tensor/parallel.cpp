#include "tensor/parallel.h"

#include <cblas.h>

#include <atomic>
#include <thread>

namespace cudl {

namespace {
int initial_threads() {
  int n = omp_get_max_threads();
  if (n < 1) n = static_cast<int>(std::thread::hardware_concurrency());
  return n < 1 ? 1 : n;
}
std::atomic<int>& thread_count() {
  static std::atomic<int> n{[] {
    int t = initial_threads();
    openblas_set_num_threads(t);
    return t;
  }()};
  return n;
}
}  // namespace

std::string blas_info() {
  const int mode = openblas_get_parallel();
  return std::string(openblas_get_config()) + " " + openblas_get_corename() +
         (mode == 2 ? " (OpenMP)" : mode == 1 ? " (pthreads)" : " (sequential)");
}

bool blas_uses_openmp() { return openblas_get_parallel() == 2; }

int get_num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_count().store(n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

}  // namespace cudl
