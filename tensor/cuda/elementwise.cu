// CUDA elementwise kernels over the functors of ops/elementwise_functors.h (the same functors
// the CPU loops use). Grid-stride loops; a strided variant for broadcasting and views.
// Operands load as compute_t<T> (float for bfloat16) and the result rounds once on store, as
// in tensor/cpu/elementwise.cpp.
#include "tensor/cuda/check.h"
#include "tensor/ops/kernels.h"

namespace cudl::cuda {

namespace {
template <class T, class F>
__global__ void unary_kernel(F f, int64_t n, const T* in, T* out) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = T(f(C(in[i])));
}

template <class T, class F>
__global__ void unary_strided_kernel(F f, int64_t n, const T* in, T* out, StridedIndex<2> ix) {
  using C = compute_t<T>;
  int64_t off[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    ix.offsets(i, off);
    out[off[0]] = T(f(C(in[off[1]])));
  }
}

template <class T, class F>
__global__ void binary_kernel(F f, int64_t n, const T* a, const T* b, T* out) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = T(f(C(a[i]), C(b[i])));
}

template <class T, class F>
__global__ void binary_strided_kernel(F f, int64_t n, const T* a, const T* b, T* out,
                                      StridedIndex<3> ix) {
  using C = compute_t<T>;
  int64_t off[3];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    ix.offsets(i, off);
    out[off[0]] = T(f(C(a[off[1]]), C(b[off[2]])));
  }
}
}  // namespace

void unary(cudaStream_t stream, UnaryOp op, double s, DType dtype, int64_t n, const void* in,
           void* out, const StridedIndex<2>* idx) {
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "unary op", [&] {
    visit_unary(op, s, [&](auto f) {
      auto i = static_cast<const scalar_t*>(in);
      auto o = static_cast<scalar_t*>(out);
      if (idx) {
        unary_strided_kernel<<<grid_for(n), kBlock, 0, stream>>>(f, n, i, o, *idx);
      } else {
        unary_kernel<<<grid_for(n), kBlock, 0, stream>>>(f, n, i, o);
      }
      CUDL_KERNEL_CHECK();
    });
  });
}

void binary(cudaStream_t stream, BinaryOp op, double s, DType dtype, int64_t n, const void* a,
            const void* b, void* out, const StridedIndex<3>* idx) {
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "binary op", [&] {
    visit_binary(op, s, [&](auto f) {
      auto pa = static_cast<const scalar_t*>(a);
      auto pb = static_cast<const scalar_t*>(b);
      auto o = static_cast<scalar_t*>(out);
      if (idx) {
        binary_strided_kernel<<<grid_for(n), kBlock, 0, stream>>>(f, n, pa, pb, o, *idx);
      } else {
        binary_kernel<<<grid_for(n), kBlock, 0, stream>>>(f, n, pa, pb, o);
      }
      CUDL_KERNEL_CHECK();
    });
  });
}

}  // namespace cudl::cuda
