// CPU loss kernels over the formulas of ops/loss_math.h. Sums go through fixed-size blocks
// whose partial sums (in double) are added in block order, so the result is the same for any
// thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "tensor/ops/loss_kernels.h"
#include "tensor/ops/loss_math.h"
#include "tensor/parallel.h"

namespace cudl::cpu {

namespace {
constexpr int64_t kSumBlock = 4096;

template <class T>
void bce_impl(int64_t n, int64_t c, const T* x, const T* y, const T* pw, T* loss, T* grad,
              T grad_scale, T* sum, double sum_scale) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(sum ? blocks : 0, 0.0);
  parallel_for(0, blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t lo = blk * kSumBlock, hi = std::min(n, lo + kSumBlock);
      double acc = 0.0;
      int64_t col = lo % c;
      for (int64_t i = lo; i < hi; ++i) {
        const math::LossAndGrad<T> r =
            pw ? math::bce_with_logits(x[i], y[i], pw[col]) : math::bce_with_logits(x[i], y[i]);
        if (loss) loss[i] = r.loss;
        if (grad) grad[i] = r.grad * grad_scale;
        acc += static_cast<double>(r.loss);
        if (++col == c) col = 0;
      }
      if (sum) partial[blk] = acc;
    }
  });
  if (sum) {
    double total = 0.0;
    for (double v : partial) total += v;
    *sum = static_cast<T>(total * sum_scale);
  }
}

template <class T>
void cross_entropy_impl(int64_t rows, int64_t c, const T* logits, const int64_t* target,
                        const T* weight, T* loss, T* grad, T* sums) {
  std::vector<double> row_loss(sums ? rows : 0), row_weight(sums ? rows : 0);
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(c, 1)),
               [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = logits + r * c;
      const int64_t t = target[r];
      T* g = grad ? grad + r * c : nullptr;
      if (t < 0 || t >= c) {  // the op rejects these first; keep the kernel total anyway
        const T nan = std::numeric_limits<T>::quiet_NaN();
        if (loss) loss[r] = nan;
        if (g) for (int64_t j = 0; j < c; ++j) g[j] = nan;
        if (sums) row_loss[r] = row_weight[r] = std::nan("");
        continue;
      }
      const T w = weight ? weight[t] : T(1);
      T m = x[0];
      for (int64_t j = 1; j < c; ++j) m = x[j] > m ? x[j] : m;
      T s = T(0);
      for (int64_t j = 0; j < c; ++j) s += math::exp(x[j] - m);
      const T l = math::cross_entropy_loss(x[t], m, s, w);
      if (loss) loss[r] = l;
      if (g) {
        const T inv_s = T(1) / s;
        for (int64_t j = 0; j < c; ++j) g[j] = math::cross_entropy_grad(x[j], j == t, m, inv_s, w);
      }
      if (sums) {
        row_loss[r] = static_cast<double>(l);
        row_weight[r] = static_cast<double>(w);
      }
    }
  });
  if (sums) {
    double total = 0.0, total_w = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      total += row_loss[r];
      total_w += row_weight[r];
    }
    sums[0] = static_cast<T>(total);
    sums[1] = static_cast<T>(total_w);
  }
}
}  // namespace

void bce_with_logits(DType dtype, int64_t n, int64_t c, const void* x, const void* y,
                     const void* pos_weight, void* loss, void* grad, double grad_scale, void* sum,
                     double sum_scale) {
  CUDL_DISPATCH_FLOATING(dtype, "bce_with_logits", [&] {
    bce_impl(n, c, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(y),
             static_cast<const scalar_t*>(pos_weight), static_cast<scalar_t*>(loss),
             static_cast<scalar_t*>(grad), static_cast<scalar_t>(grad_scale),
             static_cast<scalar_t*>(sum), sum_scale);
  });
}

void cross_entropy(DType dtype, int64_t rows, int64_t c, const void* logits, const int64_t* target,
                   const void* weight, void* loss, void* grad, void* sums) {
  CUDL_DISPATCH_FLOATING(dtype, "cross_entropy", [&] {
    cross_entropy_impl(rows, c, static_cast<const scalar_t*>(logits), target,
                       static_cast<const scalar_t*>(weight), static_cast<scalar_t*>(loss),
                       static_cast<scalar_t*>(grad), static_cast<scalar_t*>(sums));
  });
}

}  // namespace cudl::cpu
