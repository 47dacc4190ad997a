// Matrix products with autograd (cuBLAS on CUDA, OpenBLAS on the CPU).
//
//   matmul(a, b): (m,k)@(k,n) -> (m,n); (B,m,k)@(B,k,n) -> (B,m,n); (B,m,k)@(k,n) -> (B,m,n)
//   d/da = g @ b^T,  d/db = a^T @ g  (summed over the batch when b is shared)
// Transposed views are passed to the BLAS as transposes, without copies.
#pragma once

#include "tensor/tensor.h"

namespace cudl {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace cudl
