// CPU reductions over the middle dim of a contiguous (outer, r, inner) array. Sums of float32
// and bfloat16 accumulate in double, so long sums do not drift; the result rounds once.
#include <algorithm>
#include <limits>
#include <vector>

#include "tensor/ops/kernels.h"
#include "tensor/parallel.h"

namespace cudl::cpu {

namespace {
template <class T>
void reduce_impl(ReduceOp op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  const bool is_sum = op == ReduceOp::kSum;
  const double init = is_sum ? 0.0 : -std::numeric_limits<double>::infinity();
  auto combine = [is_sum](double acc, double v) {
    // NaN propagates through max, as in PyTorch.
    return is_sum ? acc + v : (v > acc || v != v ? v : acc);
  };
  const int64_t outputs = outer * inner;
  if (outputs >= 4 * get_num_threads() || r < 4096) {
    parallel_for(0, outputs, std::max<int64_t>(1, 16384 / std::max<int64_t>(r, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t o = b; o < e; ++o) {
                     const int64_t oi = o / inner, ii = o % inner;
                     const T* p = in + oi * r * inner + ii;
                     double acc = init;
                     for (int64_t j = 0; j < r; ++j) acc = combine(acc, static_cast<double>(p[j * inner]));
                     out[o] = static_cast<T>(acc);
                   }
                 });
    return;
  }
  // Few outputs, long rows: split each row across threads, then combine the partials.
  const int threads = get_num_threads();
  for (int64_t o = 0; o < outputs; ++o) {
    const int64_t oi = o / inner, ii = o % inner;
    const T* p = in + oi * r * inner + ii;
    std::vector<double> partial(threads, init);
    const int64_t chunk = (r + threads - 1) / threads;
    parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        double acc = init;
        for (int64_t j = t * chunk; j < std::min(r, (t + 1) * chunk); ++j)
          acc = combine(acc, static_cast<double>(p[j * inner]));
        partial[t] = acc;
      }
    });
    double acc = init;
    for (double v : partial) acc = combine(acc, v);
    out[o] = static_cast<T>(acc);
  }
}
}  // namespace

void reduce(ReduceOp op, DType dtype, const void* in, void* out, int64_t outer, int64_t r,
            int64_t inner) {
  CUDL_DISPATCH_FLOATING_BF16(dtype, "reduce", [&] {
    reduce_impl(op, static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), outer, r, inner);
  });
}

}  // namespace cudl::cpu
