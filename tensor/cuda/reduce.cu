// CUDA reductions over the middle dim of a contiguous (outer, r, inner) array.
// inner == 1: one block per row, tree reduction in shared memory + warp shuffles.
// inner > 1: one thread per output column, reading coalesced along inner.
// The accumulator has type A = compute_t<T> (float for float32 and bfloat16, double for
// float64): bfloat16 elements load as float, and the result rounds once when it is stored.
#include <cfloat>

#include "tensor/cuda/check.h"
#include "tensor/ops/kernels.h"

namespace cudl::cuda {

namespace {
template <class A>
struct SumOp {
  __device__ A init() const { return A(0); }
  __device__ A operator()(A a, A b) const { return a + b; }
};
template <class A>
struct MaxOp {
  __device__ A init() const { return -INFINITY; }
  __device__ A operator()(A a, A b) const { return (b > a || b != b) ? b : a; }
};

template <class T, class Op>
__global__ void reduce_rows(Op op, const T* in, T* out, int64_t outer, int64_t r) {
  using A = compute_t<T>;
  __shared__ A warp_acc[32];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* p = in + row * r;
    A acc = op.init();
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) acc = op(acc, static_cast<A>(p[j]));
    for (int o = 16; o > 0; o >>= 1) acc = op(acc, __shfl_down_sync(0xffffffffu, acc, o));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_acc[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < (blockDim.x + 31) / 32 ? warp_acc[lane] : op.init();
      for (int o = 16; o > 0; o >>= 1) acc = op(acc, __shfl_down_sync(0xffffffffu, acc, o));
      if (lane == 0) out[row] = static_cast<T>(acc);
    }
    __syncthreads();
  }
}

template <class T, class Op>
__global__ void reduce_cols(Op op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  using A = compute_t<T>;
  const int64_t total = outer * inner;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t oi = o / inner, ii = o % inner;
    const T* p = in + oi * r * inner + ii;
    A acc = op.init();
    for (int64_t j = 0; j < r; ++j) acc = op(acc, static_cast<A>(p[j * inner]));
    out[o] = static_cast<T>(acc);
  }
}

template <class T, class Op>
void launch(cudaStream_t stream, Op op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner) {
  if (inner == 1) {
    const unsigned grid = static_cast<unsigned>(outer < 65535 ? outer : 65535);
    reduce_rows<<<grid, kBlock, 0, stream>>>(op, in, out, outer, r);
  } else {
    reduce_cols<<<grid_for(outer * inner), kBlock, 0, stream>>>(op, in, out, outer, r, inner);
  }
  CUDL_KERNEL_CHECK();
}
}  // namespace

void reduce(cudaStream_t stream, ReduceOp op, DType dtype, const void* in, void* out,
            int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "reduce", [&] {
    using A = compute_t<scalar_t>;
    auto i = static_cast<const scalar_t*>(in);
    auto o = static_cast<scalar_t*>(out);
    if (op == ReduceOp::kSum) {
      launch(stream, SumOp<A>{}, i, o, outer, r, inner);
    } else {
      launch(stream, MaxOp<A>{}, i, o, outer, r, inner);
    }
  });
}

}  // namespace cudl::cuda
