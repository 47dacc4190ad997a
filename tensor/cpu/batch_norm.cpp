// CPU batch norm: one task per channel (statistics need every sample of a channel; channels-last
// input: blocks of rows, see below); sums in double, so float32 statistics over millions of
// elements do not drift; the elementwise passes
// in the compute type C = compute_t<T> (the tensor's own type; float for bfloat16, rounded once
// on store), so they vectorise. Parameters and statistics are C.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "tensor/cpu/isa.h"
#include "tensor/ops/batch_norm_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

CUDL_CPU_KERNELS_BEGIN

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

// Two sums at once in double, of term(k) = {u, v} for k < n, with 4 independent accumulators
// each, so the loop vectorises (one accumulator would make every add wait for the previous).
template <class F>
void sum_terms(int64_t n, F term, double& acc_u, double& acc_v) {
  double u[4] = {0, 0, 0, 0}, v[4] = {0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    for (int l = 0; l < 4; ++l) {
      const auto t = term(k + l);
      u[l] += t.first;
      v[l] += t.second;
    }
  }
  double ru = 0.0, rv = 0.0;
  for (; k < n; ++k) {
    const auto t = term(k);
    ru += t.first;
    rv += t.second;
  }
  acc_u += ((u[0] + u[1]) + (u[2] + u[3])) + ru;
  acc_v += ((v[0] + v[1]) + (v[2] + v[3])) + rv;
}

// q[k] = epilogue of (p[k] - mu) * alpha + beta for k < len (r: the residual run or null).
// The plain case keeps its own loop so that it vectorises as before.
template <class T, class C>
void affine_run(const T* p, T* q, int64_t len, C mu, C alpha, C beta, const T* r, bool relu) {
  if (!r && !relu) {
    for (int64_t k = 0; k < len; ++k) q[k] = T((C(p[k]) - mu) * alpha + beta);
    return;
  }
  for (int64_t k = 0; k < len; ++k) q[k] = bn::epilogue<T>((C(p[k]) - mu) * alpha + beta, r, k, relu);
}

// q[ch] = epilogue of (p[ch] - mu[ch]) * alpha[ch] + beta[ch] for the c channels of one
// channels-last row (r: the residual row or null).
template <class T, class C>
void affine_row(const T* p, T* q, int64_t c, const C* mu, const C* alpha, const C* beta,
                const T* r, bool relu) {
  if (!r && !relu) {
    for (int64_t ch = 0; ch < c; ++ch) q[ch] = T((C(p[ch]) - mu[ch]) * alpha[ch] + beta[ch]);
    return;
  }
  for (int64_t ch = 0; ch < c; ++ch)
    q[ch] = bn::epilogue<T>((C(p[ch]) - mu[ch]) * alpha[ch] + beta[ch], r, ch, relu);
}

template <class T, class C = compute_t<T>>
void forward_train_impl(int64_t n, int64_t c, int64_t s, const T* x, const C* w, const C* b, T* y,
                        C* save_mean, C* save_invstd, C* running_mean, C* running_var,
                        double momentum, double eps, const T* residual, bool relu) {
  const double m = static_cast<double>(n * s);
  parallel_for(0, c, channel_grain(n, s), [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) {
      // One pass: sums of (x - shift) and its square in double, shifted by a value of the
      // channel so a large mean does not cancel the variance away.
      const double shift = static_cast<double>(x[ch * s]);
      double sum = 0.0, sq = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        sum_terms(
            s,
            [&](int64_t k) {
              const double d = static_cast<double>(p[k]) - shift;
              return std::make_pair(d, d * d);
            },
            sum, sq);
      }
      const bn::Stats st = bn::stats_from_sums(sum, sq, m, shift, eps);
      bn::store_stats(st, ch, m, momentum, save_mean, save_invstd, running_mean, running_var);
      // y = (x - mean) * (invstd * w) + b, in C (the subtraction first: no cancellation).
      const C mu = static_cast<C>(st.mean),
              alpha = static_cast<C>(st.invstd * static_cast<double>(w[ch]));
      const C beta = b[ch];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c + ch) * s;
        affine_run(x + off, y + off, s, mu, alpha, beta, residual ? residual + off : nullptr, relu);
      }
    }
  });
}

template <class T, class C = compute_t<T>>
void forward_eval_impl(int64_t n, int64_t c, int64_t s, const T* x, const C* w, const C* b,
                       const C* rm, const C* rv, double eps, T* y, const T* residual, bool relu) {
  parallel_for(0, n * c, channel_grain(1, s), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ch = t % c;
      const C alpha =
          static_cast<C>(static_cast<double>(w[ch]) / std::sqrt(static_cast<double>(rv[ch]) + eps));
      const C mu = rm[ch], beta = b[ch];
      affine_run(x + t * s, y + t * s, s, mu, alpha, beta, residual ? residual + t * s : nullptr,
                 relu);
    }
  });
}

template <class T, class C = compute_t<T>>
void backward_train_impl(int64_t n, int64_t c, int64_t s, const T* x, const T* dy, const C* w,
                         const C* save_mean, const C* save_invstd, T* dx, C* dw, C* db) {
  const double m = static_cast<double>(n * s);
  parallel_for(0, c, channel_grain(n, s), [&](int64_t begin, int64_t end) {
    for (int64_t ch = begin; ch < end; ++ch) {
      const double mean = save_mean[ch], invstd = save_invstd[ch];
      double sum_dy = 0.0, sum_dy_xc = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        const T* g = dy + (i * c + ch) * s;
        sum_terms(
            s,
            [&](int64_t k) {
              const double gk = static_cast<double>(g[k]);
              return std::make_pair(gk, gk * (static_cast<double>(p[k]) - mean));
            },
            sum_dy, sum_dy_xc);
      }
      const bn::GradCoef gc =
          bn::grad_coefficients(sum_dy, sum_dy_xc, static_cast<double>(w[ch]), invstd, m);
      db[ch] = static_cast<C>(gc.dbias);
      dw[ch] = static_cast<C>(gc.dweight);
      // dx = k1 * dy + (x - mean) * k2 + k3, in C.
      const C a = static_cast<C>(gc.k1), k2 = static_cast<C>(gc.k2), k3 = static_cast<C>(gc.k3);
      const C mu = static_cast<C>(mean);
      for (int64_t i = 0; i < n; ++i) {
        const T* p = x + (i * c + ch) * s;
        const T* g = dy + (i * c + ch) * s;
        T* q = dx + (i * c + ch) * s;
        for (int64_t k = 0; k < s; ++k) q[k] = T(a * C(g[k]) + (C(p[k]) - mu) * k2 + k3);
      }
    }
  });
}

// ---- channels-last: (rows, c) arrays, rows = n * s ----
//
// The per-channel sums walk rows in blocks of kRowBlock; a block adds its rows into its own
// partial row of c doubles (the inner loop runs over the channels, so it vectorises), blocks
// run in parallel, and the partials are added in block order: the same sums for any thread
// count. The elementwise passes run over the flat array, channel = position % c.
constexpr int64_t kRowBlock = 256;

// u[ch], v[ch] = the sums over all rows of the terms add_row(r, u_block, v_block) adds.
template <class F>
void rows_sums(int64_t rows, int64_t c, const F& add_row, std::vector<double>& u,
               std::vector<double>& v) {
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> pu(static_cast<size_t>(blocks * c), 0.0), pv(pu.size(), 0.0);
  parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      double* bu = pu.data() + blk * c;
      double* bv = pv.data() + blk * c;
      const int64_t r_end = std::min(rows, (blk + 1) * kRowBlock);
      for (int64_t r = blk * kRowBlock; r < r_end; ++r) add_row(r, bu, bv);
    }
  });
  u.assign(static_cast<size_t>(c), 0.0);
  v.assign(static_cast<size_t>(c), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t ch = 0; ch < c; ++ch) {
      u[ch] += pu[blk * c + ch];
      v[ch] += pv[blk * c + ch];
    }
}

// y = epilogue((x - mu) * alpha + beta) over the flat (rows, c) array.
template <class T, class C>
void affine_rows(int64_t rows, int64_t c, const T* x, T* y, const std::vector<C>& mu,
                 const std::vector<C>& alpha, const std::vector<C>& beta, const T* residual,
                 bool relu) {
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(c, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r)
                   affine_row(x + r * c, y + r * c, c, mu.data(), alpha.data(), beta.data(),
                              residual ? residual + r * c : nullptr, relu);
               });
}

template <class T, class C = compute_t<T>>
void forward_train_rows(int64_t rows, int64_t c, const T* x, const C* w, const C* b, T* y,
                        C* save_mean, C* save_invstd, C* running_mean, C* running_var,
                        double momentum, double eps, const T* residual, bool relu) {
  const double m = static_cast<double>(rows);
  std::vector<double> shift(static_cast<size_t>(c)), sum, sq;
  for (int64_t ch = 0; ch < c; ++ch) shift[ch] = static_cast<double>(x[ch]);  // row 0
  rows_sums(
      rows, c,
      [&](int64_t r, double* u, double* v) {
        const T* p = x + r * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const double d = static_cast<double>(p[ch]) - shift[ch];
          u[ch] += d;
          v[ch] += d * d;
        }
      },
      sum, sq);
  std::vector<C> mu(static_cast<size_t>(c)), alpha(mu.size()), beta(mu.size());
  for (int64_t ch = 0; ch < c; ++ch) {
    const bn::Stats st = bn::stats_from_sums(sum[ch], sq[ch], m, shift[ch], eps);
    bn::store_stats(st, ch, m, momentum, save_mean, save_invstd, running_mean, running_var);
    mu[ch] = static_cast<C>(st.mean);
    alpha[ch] = static_cast<C>(st.invstd * static_cast<double>(w[ch]));
    beta[ch] = b[ch];
  }
  affine_rows(rows, c, x, y, mu, alpha, beta, residual, relu);
}

template <class T, class C = compute_t<T>>
void forward_eval_rows(int64_t rows, int64_t c, const T* x, const C* w, const C* b, const C* rm,
                       const C* rv, double eps, T* y, const T* residual, bool relu) {
  std::vector<C> mu(rm, rm + c), alpha(static_cast<size_t>(c)), beta(b, b + c);
  for (int64_t ch = 0; ch < c; ++ch)
    alpha[ch] =
        static_cast<C>(static_cast<double>(w[ch]) / std::sqrt(static_cast<double>(rv[ch]) + eps));
  affine_rows(rows, c, x, y, mu, alpha, beta, residual, relu);
}

template <class T, class C = compute_t<T>>
void backward_train_rows(int64_t rows, int64_t c, const T* x, const T* dy, const C* w,
                         const C* save_mean, const C* save_invstd, T* dx, C* dw, C* db) {
  const double m = static_cast<double>(rows);
  std::vector<double> mean(save_mean, save_mean + c), sum_dy, sum_dy_xc;
  rows_sums(
      rows, c,
      [&](int64_t r, double* u, double* v) {
        const T* p = x + r * c;
        const T* g = dy + r * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const double gk = static_cast<double>(g[ch]);
          u[ch] += gk;
          v[ch] += gk * (static_cast<double>(p[ch]) - mean[ch]);
        }
      },
      sum_dy, sum_dy_xc);
  std::vector<C> k1(static_cast<size_t>(c)), k2(k1.size()), k3(k1.size()), mu(k1.size());
  for (int64_t ch = 0; ch < c; ++ch) {
    const bn::GradCoef gc = bn::grad_coefficients(sum_dy[ch], sum_dy_xc[ch],
                                                  static_cast<double>(w[ch]), save_invstd[ch], m);
    db[ch] = static_cast<C>(gc.dbias);
    dw[ch] = static_cast<C>(gc.dweight);
    k1[ch] = static_cast<C>(gc.k1);
    k2[ch] = static_cast<C>(gc.k2);
    k3[ch] = static_cast<C>(gc.k3);
    mu[ch] = static_cast<C>(mean[ch]);
  }
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(c, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const T* p = x + r * c;
                   const T* g = dy + r * c;
                   T* q = dx + r * c;
                   for (int64_t ch = 0; ch < c; ++ch)
                     q[ch] = T(k1[ch] * C(g[ch]) + (C(p[ch]) - mu[ch]) * k2[ch] + k3[ch]);
                 }
               });
}

}  // namespace

void batch_norm_forward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                              const void* weight, const void* bias, void* y, void* save_mean,
                              void* save_invstd, void* running_mean, void* running_var,
                              double momentum, double eps, const void* residual, bool relu,
                              bool channels_last) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "batch_norm", [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    if (channels_last) {
      forward_train_rows(n * s, c, static_cast<const T*>(x), static_cast<const C*>(weight),
                         static_cast<const C*>(bias), static_cast<T*>(y),
                         static_cast<C*>(save_mean), static_cast<C*>(save_invstd),
                         static_cast<C*>(running_mean), static_cast<C*>(running_var), momentum,
                         eps, static_cast<const T*>(residual), relu);
      return;
    }
    forward_train_impl(n, c, s, static_cast<const T*>(x), static_cast<const C*>(weight),
                       static_cast<const C*>(bias), static_cast<T*>(y), static_cast<C*>(save_mean),
                       static_cast<C*>(save_invstd), static_cast<C*>(running_mean),
                       static_cast<C*>(running_var), momentum, eps,
                       static_cast<const T*>(residual), relu);
  });
}

void batch_norm_forward_eval(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                             const void* weight, const void* bias, const void* running_mean,
                             const void* running_var, double eps, void* y, const void* residual,
                             bool relu, bool channels_last) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "batch_norm", [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    if (channels_last) {
      forward_eval_rows(n * s, c, static_cast<const T*>(x), static_cast<const C*>(weight),
                        static_cast<const C*>(bias), static_cast<const C*>(running_mean),
                        static_cast<const C*>(running_var), eps, static_cast<T*>(y),
                        static_cast<const T*>(residual), relu);
      return;
    }
    forward_eval_impl(n, c, s, static_cast<const T*>(x), static_cast<const C*>(weight),
                      static_cast<const C*>(bias), static_cast<const C*>(running_mean),
                      static_cast<const C*>(running_var), eps, static_cast<T*>(y),
                      static_cast<const T*>(residual), relu);
  });
}

void batch_norm_backward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                               const void* dy, const void* weight, const void* save_mean,
                               const void* save_invstd, double /*eps*/, void* dx, void* dweight,
                               void* dbias, bool channels_last) {
  detail::count_kernel_call(kThisCopy);
  CUDL_DISPATCH_FLOATING_BF16(dtype, "batch_norm backward", [&] {
    using T = scalar_t;
    using C = compute_t<T>;
    if (channels_last) {
      backward_train_rows(n * s, c, static_cast<const T*>(x), static_cast<const T*>(dy),
                          static_cast<const C*>(weight), static_cast<const C*>(save_mean),
                          static_cast<const C*>(save_invstd), static_cast<T*>(dx),
                          static_cast<C*>(dweight), static_cast<C*>(dbias));
      return;
    }
    backward_train_impl(n, c, s, static_cast<const T*>(x), static_cast<const T*>(dy),
                        static_cast<const C*>(weight), static_cast<const C*>(save_mean),
                        static_cast<const C*>(save_invstd), static_cast<T*>(dx),
                        static_cast<C*>(dweight), static_cast<C*>(dbias));
  });
}

CUDL_CPU_KERNELS_END

#if !defined(CUDL_CPU_AVX2_COPY)
namespace cudl::cpu {

void batch_norm_forward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                              const void* weight, const void* bias, void* y, void* save_mean,
                              void* save_invstd, void* running_mean, void* running_var,
                              double momentum, double eps, const void* residual, bool relu,
                              bool channels_last) {
  CUDL_CPU_KERNEL_CALL(batch_norm_forward_train, dtype, n, c, s, x, weight, bias, y, save_mean,
                       save_invstd, running_mean, running_var, momentum, eps, residual, relu,
                       channels_last);
}

void batch_norm_forward_eval(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                             const void* weight, const void* bias, const void* running_mean,
                             const void* running_var, double eps, void* y, const void* residual,
                             bool relu, bool channels_last) {
  CUDL_CPU_KERNEL_CALL(batch_norm_forward_eval, dtype, n, c, s, x, weight, bias, running_mean,
                       running_var, eps, y, residual, relu, channels_last);
}

void batch_norm_backward_train(DType dtype, int64_t n, int64_t c, int64_t s, const void* x,
                               const void* dy, const void* weight, const void* save_mean,
                               const void* save_invstd, double eps, void* dx, void* dweight,
                               void* dbias, bool channels_last) {
  CUDL_CPU_KERNEL_CALL(batch_norm_backward_train, dtype, n, c, s, x, dy, weight, save_mean,
                       save_invstd, eps, dx, dweight, dbias, channels_last);
}

void increment_counter(int64_t* counter) {
  ++*counter;
}

}  // namespace cudl::cpu
#endif
