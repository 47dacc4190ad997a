// Per-element optimiser updates and the multi-tensor work table, shared by the CPU loop and the
// CUDA kernel (the CPU tests cover the arithmetic the GPU runs).
//
// Multi-tensor layout: every parameter with a gradient becomes one slot (pointers, size, and
// its hyperparameters already folded into per-tensor scalars on the host, in double, then
// rounded to the parameter dtype, as torch turns Python floats into kernel scalars). Each slot
// is cut into chunks of kChunk elements, numbered consecutively across slots (first_chunk);
// one work item (a CUDA block, or a slice of a CPU thread's range) updates one chunk. So one
// kernel launch, or one parallel region, updates every parameter of every group.
#pragma once

#include <cstdint>

#include "tensor/macros.h"
#include "tensor/ops/math.h"

namespace cudl::optim {

constexpr int64_t kChunk = 8192;  // elements per work item

inline int64_t chunks_of(int64_t numel) { return (numel + kChunk - 1) / kChunk; }

// ---- Adam / AdamW (torch.optim.Adam and AdamW of PyTorch >= 1.6; RECIPE.md) ----
//   p = p * decay                      AdamW: decay = 1 - lr * wd (decoupled), Adam: 1
//   g = g + l2 * p                     Adam: l2 = wd (coupled, an L2 term), AdamW: 0
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) at step t (from 1):
// eps is added after the bias correction, as modern PyTorch does. The order of the float
// operations follows torch's mul_/add_/addcmul_/addcdiv_ sequence.
template <class T>
struct AdamHyper {
  T decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
};

template <class T>
CUDL_HOST_DEVICE_INLINE void adam_update(T& p, T g, T& m, T& v, const AdamHyper<T>& h) {
  p = p * h.decay;
  if (h.l2 != T(0)) g = g + h.l2 * p;
  m = m * h.beta1 + h.one_minus_beta1 * g;
  v = v * h.beta2 + h.one_minus_beta2 * g * g;
  const T denom = math::sqrt(v) / h.bc2_sqrt + h.eps;
  p = p - (h.step_size * m) / denom;  // torch's addcdiv: p + (value * m) / denom
}

template <class T>
struct AdamSlot {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  int64_t numel;
  int64_t first_chunk;
  AdamHyper<T> h;
};

// ---- SGD (torch.optim.SGD) ----
//   g = g + wd * p                                 (coupled weight decay, when wd != 0)
//   buf = g at the first step, else momentum * buf + (1 - dampening) * g   (when momentum != 0)
//   g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
template <class T>
struct SgdHyper {
  T lr, weight_decay, momentum, one_minus_dampening;
  int use_momentum, nesterov, first_step;
};

template <class T>
CUDL_HOST_DEVICE_INLINE void sgd_update(T& p, T g, T* buf, const SgdHyper<T>& h) {
  if (h.weight_decay != T(0)) g = g + h.weight_decay * p;
  if (h.use_momentum) {
    const T b = h.first_step ? g : *buf * h.momentum + h.one_minus_dampening * g;
    *buf = b;
    g = h.nesterov ? g + h.momentum * b : b;
  }
  p = p - h.lr * g;
}

template <class T>
struct SgdSlot {
  T* param;
  const T* grad;
  T* momentum_buffer;  // null without momentum
  int64_t numel;
  int64_t first_chunk;
  SgdHyper<T> h;
};

// The slot holding chunk b: the last slot whose first_chunk <= b (slots are in chunk order).
template <class Slot>
CUDL_HOST_DEVICE_INLINE int64_t slot_of_chunk(const Slot* slots, int64_t count, int64_t b) {
  int64_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (slots[mid].first_chunk <= b) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace cudl::optim
