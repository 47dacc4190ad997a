// Joining tensors, with autograd.
//
//   cat({x0, x1, ...}, dim): sizes add up along dim, other dims must match;
//                            d/dxi = the slice of g that xi filled
//   stack({x0, x1, ...}, dim) = cat of the unsqueezed inputs
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cudl {

Tensor cat(const std::vector<Tensor>& tensors, int dim);
Tensor stack(const std::vector<Tensor>& tensors, int dim);

}  // namespace cudl
