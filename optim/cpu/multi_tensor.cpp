// CPU multi-tensor optimiser updates: one parallel region over all chunks of all parameters.
// Each thread takes a contiguous range of chunks, so it walks the slots forward; the inner
// loop over a chunk is a plain contiguous loop the compiler vectorises.
#include <algorithm>

#include "optim/kernels.h"
#include "optim/optim_math.h"
#include "tensor/parallel.h"

namespace cudl::cpu {

namespace {

template <class Slot, class Body>
void for_each_chunk(const Slot* slots, int64_t num_slots, int64_t total_chunks, const Body& body) {
  if (num_slots == 0) return;
  parallel_for(0, total_chunks, 1, [&](int64_t c0, int64_t c1) {
    int64_t s = optim::slot_of_chunk(slots, num_slots, c0);
    for (int64_t b = c0; b < c1; ++b) {
      while (s + 1 < num_slots && slots[s + 1].first_chunk <= b) ++s;
      const Slot& slot = slots[s];
      const int64_t lo = (b - slot.first_chunk) * optim::kChunk;
      const int64_t hi = std::min(slot.numel, lo + optim::kChunk);
      body(slot, lo, hi);
    }
  });
}

template <class T>
void adam_impl(const optim::AdamSlot<T>* slots, int64_t num_slots, int64_t total_chunks) {
  for_each_chunk(slots, num_slots, total_chunks, [](const optim::AdamSlot<T>& s, int64_t lo, int64_t hi) {
    T* __restrict__ p = s.param;
    const T* __restrict__ g = s.grad;
    T* __restrict__ m = s.exp_avg;
    T* __restrict__ v = s.exp_avg_sq;
    const optim::AdamHyper<T> h = s.h;
    for (int64_t i = lo; i < hi; ++i) {
      T pi = p[i], mi = m[i], vi = v[i];
      optim::adam_update(pi, g[i], mi, vi, h);
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
    }
  });
}

template <class T>
void sgd_impl(const optim::SgdSlot<T>* slots, int64_t num_slots, int64_t total_chunks) {
  for_each_chunk(slots, num_slots, total_chunks, [](const optim::SgdSlot<T>& s, int64_t lo, int64_t hi) {
    T* __restrict__ p = s.param;
    const T* __restrict__ g = s.grad;
    T* __restrict__ buf = s.momentum_buffer;
    const optim::SgdHyper<T> h = s.h;
    T unused = T(0);
    for (int64_t i = lo; i < hi; ++i) {
      T pi = p[i];
      optim::sgd_update(pi, g[i], buf ? buf + i : &unused, h);
      p[i] = pi;
    }
  });
}

}  // namespace

void adam_multi_tensor(DType dtype, const void* slots, int64_t num_slots, int64_t total_chunks) {
  CUDL_DISPATCH_FLOATING(dtype, "adam step", [&] {
    adam_impl(static_cast<const optim::AdamSlot<scalar_t>*>(slots), num_slots, total_chunks);
  });
}

void sgd_multi_tensor(DType dtype, const void* slots, int64_t num_slots, int64_t total_chunks) {
  CUDL_DISPATCH_FLOATING(dtype, "sgd step", [&] {
    sgd_impl(static_cast<const optim::SgdSlot<scalar_t>*>(slots), num_slots, total_chunks);
  });
}

}  // namespace cudl::cpu
