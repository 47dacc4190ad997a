// Per-element formulas of the losses, shared by the CPU loops and the CUDA kernels (the CPU
// tests therefore cover the arithmetic the GPU runs). See tensor/ops/loss.h for the ops.
#pragma once

#include "tensor/ops/math.h"

namespace cudl::math {

// Binary cross-entropy on a logit x with target y and positive-class weight pw:
//
//   loss = -(pw * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))
//        = (1 - y) * x + w * softplus(-x),        w = 1 + (pw - 1) * y
//   d loss / dx = w * sigmoid(x) - pw * y
//
// softplus(-x) = max(-x, 0) + log1p(e^-|x|) never overflows, so any finite logit gives a
// finite loss and gradient (at x = -1000, y = 1 the loss is exactly 1000). With pw = 1 the
// loss reduces to the textbook max(x, 0) - x*y + log1p(e^-|x|) and the gradient to
// sigmoid(x) - y; that branch is kept separate so the common case costs no extra work.
//
// Both are evaluated as a sum of two non-negative terms, split on the sign of x:
//   pw = 1:  x >= 0: x * (1 - y) + L           x < 0: (-x) * y + L         L = log1p(e^-|x|)
//   any pw:  x >= 0: (1 - y) * x + w * L       x < 0: pw * y * (-x) + w * L (1 - y - w = -pw*y)
// The textbook forms cancel for a large |x| with a soft target (x = 1000, y = 0.99996: a loss
// of 0.04 from 1000 - 999.96), where one rounding more or less (a fused multiply-add on the
// GPU, none on the CPU) moves the result by 1e-4 relative; these forms lose nothing.
template <class T>
struct LossAndGrad {
  T loss;
  T grad;
};

template <class T>
CUDL_HOST_DEVICE_INLINE LossAndGrad<T> bce_with_logits(T x, T y) {
  const T log_term = log1p(exp(-abs(x)));  // log(1 + e^-|x|), in (0, log 2]
  const T linear = x > T(0) ? x * (T(1) - y) : -x * y;
  return {linear + log_term, sigmoid(x) - y};
}

template <class T>
CUDL_HOST_DEVICE_INLINE LossAndGrad<T> bce_with_logits(T x, T y, T pw) {
  const T w = T(1) + (pw - T(1)) * y;
  const T log_term = log1p(exp(-abs(x)));
  const T linear = x >= T(0) ? (T(1) - y) * x : pw * y * -x;
  return {linear + w * log_term, w * sigmoid(x) - pw * y};
}

// Softmax cross-entropy of one row x with target class t and weight w, from the row's
// maximum m and s = sum_j e^(x_j - m) (subtracting m keeps every exponent <= 0):
//   loss = w * (m + log s - x_t)
//   d loss / d x_j = w * (e^(x_j - m) / s - [j == t])
template <class T>
CUDL_HOST_DEVICE_INLINE T cross_entropy_loss(T x_t, T m, T s, T w) {
  return w * (m + log(s) - x_t);
}

template <class T>
CUDL_HOST_DEVICE_INLINE T cross_entropy_grad(T x_j, bool is_target, T m, T inv_s, T w) {
  return w * (exp(x_j - m) * inv_s - (is_target ? T(1) : T(0)));
}

}  // namespace cudl::math
