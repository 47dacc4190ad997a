// Dropout with autograd.
//
//   training: y = x * mask / (1 - p), mask[i] ~ Bernoulli(1 - p) drawn from Philox (random.h);
//             dx = dy * mask / (1 - p)
//   not training, or p == 0: y = x (the same tensor, no copy, as PyTorch)
//   p == 1: y = 0 (every element dropped)
// The mask comes from `gen` (the default generator when null), so one seed gives the same
// mask on the CPU and on CUDA. It is kept (scaled, in x's dtype) for the backward pass.
#pragma once

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cudl {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace cudl
