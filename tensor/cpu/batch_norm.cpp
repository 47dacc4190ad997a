// CPU batch norm: one task per channel (statistics need every sample of a channel); sums in
// double, so float32 statistics over millions of elements do not drift.
#include <cmath>

#include "tensor/ops/batch_norm_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl::cpu {

namespace {

// Calls f(p, len) for every contiguous run of channel ch: the (n, c, s) layout gives n runs of s.
template <class T, class F>
void for_channel(const T* base, int64_t n, int64_t c, int64_t s, int64_t ch, F&& f) {
  for (int64_t i = 0; i < n; ++i) f(base + (i * c + ch) * s, i);
}

int64_t channel_grain(int64_t n, int64_t s) {
  // Enough channels per task to amortise the thread start on small inputs (e.g. BatchNorm1d).
  const int64_t per_channel = std::max<int64_t>(n * s, 1);
  return std::max<int64_t>(1, 16384 / per_channel);
}

template <class T>
void forward_train_impl(int64_t n, int64_t c, int64_t s, const T* x, const T* w, const T* b, T* y,
                        T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                        double momentum, double eps) {
  const double m = static_cast<double>(n * s);
  parallel_for(0, c, channel_grain(n, s), [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) {
      double sum = 0.0;
      for_channel(x, n, c, s, ch, [&](const T* p, int64_t) {
        for (int64_t k = 0; k < s; ++k) sum += static_cast<double>(p[k]);
      });
      const double mean = sum / m;
      double sq = 0.0;  // two passes: no cancellation for inputs with a large mean
      for_channel(x, n, c, s, ch, [&](const T* p, int64_t) {
        for (int64_t k = 0; k < s; ++k) {
          const double d = static_cast<double>(p[k]) - mean;
          sq += d * d;
        }
      });
      const double var = sq / m;
      const double invstd = 1.0 / std::sqrt(var + eps);
      save_mean[ch] = static_cast<T>(mean);
      save_invstd[ch] = static_cast<T>(invstd);
      if (running_mean) {
        running_mean[ch] = static_cast<T>((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] =
            static_cast<T>((1.0 - momentum) * running_var[ch] + momentum * var * m / (m - 1.0));
      }
      const double alpha = invstd * static_cast<double>(w[ch]);
      const double beta = static_cast<double>(b[ch]) - mean * alpha;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        T* q = y + (i * c + ch) * s;
        for (int64_t k = 0; k < s; ++k)
          q[k] = static_cast<T>(static_cast<double>(p[k]) * alpha + beta);
      }
    }
  });
}

template <class T>
void forward_eval_impl(int64_t n, int64_t c, int64_t s, const T* x, const T* w, const T* b,
                       const T* rm, const T* rv, double eps, T* y) {
  parallel_for(0, n * c, channel_grain(1, s), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ch = t % c;
      const double alpha =
          static_cast<double>(w[ch]) / std::sqrt(static_cast<double>(rv[ch]) + eps);
      const double beta = static_cast<double>(b[ch]) - static_cast<double>(rm[ch]) * alpha;
      const T* p = x + t * s;
      T* q = y + t * s;
      for (int64_t k = 0; k < s; ++k)
        q[k] = static_cast<T>(static_cast<double>(p[k]) * alpha + beta);
    }
  });
}

template <class T>
void backward_train_impl(int64_t n, int64_t c, int64_t s, const T* x, const T* dy, const T* w,
                         const T* save_mean, const T* save_invstd, T* dx, T* dw, T* db) {
  const double m = static_cast<double>(n * s);
  parallel_for(0, c, channel_grain(n, s), [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) {
      const double mean = save_mean[ch], invstd = save_invstd[ch];
      double sum_dy = 0.0, sum_dy_xhat = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        const T* g = dy + (i * c + ch) * s;
        for (int64_t k = 0; k < s; ++k) {
          const double gk = static_cast<double>(g[k]);
          sum_dy += gk;
          sum_dy_xhat += gk * (static_cast<double>(p[k]) - mean);
        }
      }
      sum_dy_xhat *= invstd;
      db[ch] = static_cast<T>(sum_dy);
      dw[ch] = static_cast<T>(sum_dy_xhat);
      // dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
      const double k1 = static_cast<double>(w[ch]) * invstd;
      const double mean_dy = sum_dy / m, mean_dy_xhat = sum_dy_xhat / m;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        const T* g = dy + (i * c + ch) * s;
        T* q = dx + (i * c + ch) * s;
        for (int64_t k = 0; k < s; ++k) {
          const double xhat = (static_cast<double>(p[k]) - mean) * invstd;
          q[k] = static_cast<T>(k1 * (static_cast<double>(g[k]) - mean_dy - xhat * mean_dy_xhat));
        }
      }
    }
  });
}

}  // namespace

void batch_norm_forward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                              const void* weight, const void* bias, void* y, void* save_mean,
                              void* save_invstd, void* running_mean, void* running_var,
                              double momentum, double eps) {
  CUDL_DISPATCH_FLOATING(dtype, "batch_norm", [&] {
    using T = scalar_t;
    forward_train_impl(n, c, s, static_cast<const T*>(x), static_cast<const T*>(weight),
                       static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(save_mean),
                       static_cast<T*>(save_invstd), static_cast<T*>(running_mean),
                       static_cast<T*>(running_var), momentum, eps);
  });
}

void batch_norm_forward_eval(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                             const void* weight, const void* bias, const void* running_mean,
                             const void* running_var, double eps, void* y) {
  CUDL_DISPATCH_FLOATING(dtype, "batch_norm", [&] {
    using T = scalar_t;
    forward_eval_impl(n, c, s, static_cast<const T*>(x), static_cast<const T*>(weight),
                      static_cast<const T*>(bias), static_cast<const T*>(running_mean),
                      static_cast<const T*>(running_var), eps, static_cast<T*>(y));
  });
}

void batch_norm_backward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                               const void* dy, const void* weight, const void* save_mean,
                               const void* save_invstd, double /*eps*/, void* dx, void* dweight,
                               void* dbias) {
  CUDL_DISPATCH_FLOATING(dtype, "batch_norm backward", [&] {
    using T = scalar_t;
    backward_train_impl(n, c, s, static_cast<const T*>(x), static_cast<const T*>(dy),
                        static_cast<const T*>(weight), static_cast<const T*>(save_mean),
                        static_cast<const T*>(save_invstd), static_cast<T*>(dx),
                        static_cast<T*>(dweight), static_cast<T*>(dbias));
  });
}

void increment_counter(int64_t* counter) {
  ++*counter;
}

}  // namespace cudl::cpu
