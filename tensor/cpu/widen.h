// bfloat16 on the CPU through the float kernels: operands widen to float (exactly), the float
// kernel runs (accumulating in float, as bf16 hardware does), and results round once to
// bfloat16. Used by the CPU matrix product and max pooling, and by the convolution where oneDNN
// has no bfloat16 kernel for the CPU or the shape (onednn_bf16_native in tensor/ops/conv.h);
// the extra passes cost memory traffic, not precision. The float buffers are tensors, so they come from (and go back
// to) the CPU allocator's cached blocks rather than fresh pages every call.
#pragma once

#include <cstdint>

#include "tensor/bfloat16.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl::cpu {

// A float32 buffer of n elements; undefined when n == 0 or `want` is null (an output the
// caller did not ask for, or an input it did not give).
inline Tensor float_buffer(const void* want, int64_t n) {
  return want && n > 0 ? empty({n}, TensorOptions(kFloat32)) : Tensor();
}

inline Tensor widen(const void* src, int64_t n) {
  Tensor out = float_buffer(src, n);
  if (!out.defined()) return out;
  const auto* s = static_cast<const bfloat16*>(src);
  float* d = out.data<float>();
  parallel_for(0, n, 65536, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = s[i];
  });
  return out;
}

inline void narrow(const Tensor& src, void* dst) {
  if (!dst || !src.defined()) return;
  auto* d = static_cast<bfloat16*>(dst);
  const float* s = src.data<float>();
  parallel_for(0, src.numel(), 65536, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] = bfloat16(s[i]);
  });
}

inline float* data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

}  // namespace cudl::cpu
