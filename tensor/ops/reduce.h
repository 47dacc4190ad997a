// Reductions with autograd.
//
//   sum(x, dims, keepdim)   d/dx = g broadcast back over the reduced dims
//   mean(x, dims, keepdim)  d/dx = g / (number of reduced elements)
//   max(x, dims, keepdim)   values only (like torch.amax); d/dx = g split evenly between the
//                           elements equal to the maximum (one element unless there are ties)
// Without dims they reduce over every element to a 0-dim tensor. Empty dims = all dims.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace cudl {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);

// Sums a broadcast gradient back to `shape` (leading dims and dims that were 1).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace cudl
