// CPU metric kernels. The threshold histogram uses the rank function of ops/metrics_math.h,
// as the CUDA kernel does. Average precision sorts each class once (O(n log n)), while the
// CUDA kernel counts pairs; both implement the definition in metrics_kernels.h, so the CUDA
// test compares two different algorithms.
#include <algorithm>
#include <mutex>
#include <numeric>
#include <vector>

#include "tensor/ops/metrics_kernels.h"
#include "tensor/ops/metrics_math.h"
#include "tensor/parallel.h"

namespace cudl::cpu {

namespace {

template <class T>
void histogram_impl(int64_t n, int64_t c, const T* probs, const T* targets, const T* thr,
                    int64_t t, int64_t* hist, int64_t* rows) {
  std::mutex merge;
  const int64_t hist_size = c * (t + 1) * 2;
  parallel_for(0, n, std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> h(hist_size, 0), rw(t + 1, 0);
    for (int64_t i = r0; i < r1; ++i) {
      int64_t lo = 0, hi = t;
      for (int64_t j = 0; j < c; ++j) {
        const int64_t k = math::threshold_rank(probs[i * c + j], thr, t);
        const bool y = math::is_positive_label(targets[i * c + j]);
        ++h[(j * (t + 1) + k) * 2 + (y ? 1 : 0)];
        if (y) {
          hi = std::min(hi, k);
        } else {
          lo = std::max(lo, k);
        }
      }
      if (lo < hi) {
        ++rw[lo];
        --rw[hi];
      }
    }
    std::lock_guard<std::mutex> lock(merge);  // integer sums: the merge order does not matter
    for (int64_t k = 0; k < hist_size; ++k) hist[k] += h[k];
    for (int64_t k = 0; k <= t; ++k) rows[k] += rw[k];
  });
}

template <class T>
void ap_terms_impl(int64_t n, int64_t c, const T* probs, const T* targets, double* terms) {
  parallel_for(0, c, 1, [&](int64_t j0, int64_t j1) {
    std::vector<int64_t> order(n);
    for (int64_t j = j0; j < j1; ++j) {
      auto score = [&](int64_t i) { return probs[i * c + j]; };
      std::iota(order.begin(), order.end(), int64_t(0));
      // Descending; NaN last (a strict weak order even with NaN present).
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const T sa = score(a), sb = score(b);
        return sa > sb || (sa == sa && sb != sb);
      });
      int64_t seen = 0, seen_pos = 0;
      for (int64_t g = 0; g < n;) {
        // The tie group [g, e): one threshold for all of its members.
        int64_t e = g + 1;
        while (e < n && score(order[e]) == score(order[g])) ++e;
        for (int64_t q = g; q < e; ++q) seen_pos += math::is_positive_label(targets[order[q] * c + j]);
        seen += e - g;
        const double precision = static_cast<double>(seen_pos) / static_cast<double>(seen);
        for (int64_t q = g; q < e; ++q) {
          const int64_t i = order[q];
          terms[i * c + j] = math::is_positive_label(targets[i * c + j]) ? precision : 0.0;
        }
        g = e;
      }
    }
  });
}

}  // namespace

void threshold_histogram(DType dtype, int64_t n, int64_t c, const void* probs, const void* targets,
                         const void* thresholds, int64_t t, int64_t* hist, int64_t* rows) {
  CUDL_DISPATCH_FLOATING(dtype, "threshold_histogram", [&] {
    histogram_impl(n, c, static_cast<const scalar_t*>(probs), static_cast<const scalar_t*>(targets),
                   static_cast<const scalar_t*>(thresholds), t, hist, rows);
  });
}

void average_precision_terms(DType dtype, int64_t n, int64_t c, const void* probs,
                             const void* targets, double* terms) {
  CUDL_DISPATCH_FLOATING(dtype, "average_precision_terms", [&] {
    ap_terms_impl(n, c, static_cast<const scalar_t*>(probs), static_cast<const scalar_t*>(targets),
                  terms);
  });
}

}  // namespace cudl::cpu
