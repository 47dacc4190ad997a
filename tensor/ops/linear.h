// Fully connected layer with autograd.
//
//   x (..., in), weight (out, in), bias (out,) or undefined -> y (..., out)
//   y = x @ weight^T + bias
//   dx = dy @ weight,  dweight = dy^T @ x (summed over every leading dim),  dbias = sum(dy)
// The weight is handed to the GEMM (cuBLAS / OpenBLAS) as a transposed operand, never copied;
// dweight comes out directly in the (out, in) layout of the weight.
#pragma once

#include "tensor/tensor.h"

namespace cudl {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace cudl
