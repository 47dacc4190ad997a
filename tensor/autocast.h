// Mixed precision in the manner of torch.autocast. Inside an AutocastGuard(kBFloat16) the
// matrix-product ops (conv2d and linear) cast their float32 operands (input, weight, bias) to
// bfloat16 through the differentiable Tensor::to, so they run on bf16 tensor cores (fp32
// accumulation) and return bfloat16; the ops after them (batch norm, ReLU, pooling, adds,
// dropout) run in the dtype they are given and so stay bfloat16, storing half the bytes.
// compute_loss casts bfloat16 logits back to float32. Parameters, their gradients and the
// optimiser state stay float32 ("master weights"): the cast's backward turns each weight's
// bfloat16 gradient into float32. bfloat16 has float32's exponent range, so no loss scaling.
// The state is per thread, like PyTorch's; backward passes need no guard.
#pragma once

#include "tensor/tensor.h"

namespace cudl {

class AutocastGuard {
 public:
  // enabled == false leaves the current state as it is (so one call site serves both modes).
  explicit AutocastGuard(bool enabled = true, DType dtype = kBFloat16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

bool autocast_enabled();
DType autocast_dtype();  // meaningful when enabled

// t cast to the autocast dtype when autocast is on and t is a defined float32 tensor; t itself
// otherwise (undefined tensors, float64 and integer tensors pass through).
Tensor autocast_operand(const Tensor& t);

}  // namespace cudl
