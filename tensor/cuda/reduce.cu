// CUDA reductions over the middle dim of a contiguous (outer, r, inner) array.
// inner == 1: blocks walk the rows, each a tree reduction in shared memory and warp shuffles.
// inner > 1: one thread per output column, reading coalesced along inner.
// Few outputs over long reductions would leave the GPU mostly idle, one block or one thread
// walking millions of elements, so each reduction is then split into segments: a first pass
// writes one partial per segment to scratch laid out (outer, splits, inner), and the same
// launcher reduces that over its middle dim. The splits depend on the shape alone, so the
// order of the additions, and the result, are the same on every GPU and in every run.
// Sums accumulate in double, as the CPU's do, and are stored as the CPU stores them (float32
// rounds once; bfloat16 goes through float); max compares in the element's compute type (float
// for bfloat16). NaN propagates through max, as in PyTorch.
#include <algorithm>
#include <cfloat>

#include "tensor/cuda/check.h"
#include "tensor/cuda/scratch.h"
#include "tensor/ops/kernels.h"

namespace cudl::cuda {

namespace {
template <class A>
struct SumOp {
  using Acc = A;
  __device__ A init() const { return A(0); }
  __device__ A operator()(A a, A b) const { return a + b; }
};
template <class A>
struct MaxOp {
  using Acc = A;
  __device__ A init() const { return -INFINITY; }
  __device__ A operator()(A a, A b) const { return (b > a || b != b) ? b : a; }
};

// Segment `seg` of `splits` equal segments of [0, r): [*begin, *end), possibly empty at the end.
__device__ __forceinline__ void segment(int64_t r, int64_t splits, int64_t seg, int64_t* begin,
                                        int64_t* end) {
  const int64_t len = (r + splits - 1) / splits;
  *begin = seg * len;
  *end = *begin + len < r ? *begin + len : r;
}

// Block b reduces segment b % splits of row b / splits into out[b].
template <class In, class Out, class Op>
__global__ void reduce_rows(Op op, const In* in, Out* out, int64_t outer, int64_t r,
                            int64_t splits) {
  using A = typename Op::Acc;
  __shared__ A warp_acc[32];
  for (int64_t b = blockIdx.x; b < outer * splits; b += gridDim.x) {
    int64_t begin, end;
    segment(r, splits, b % splits, &begin, &end);
    const In* p = in + (b / splits) * r;
    A acc = op.init();
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x)
      acc = op(acc, static_cast<A>(p[j]));
    for (int o = 16; o > 0; o >>= 1) acc = op(acc, __shfl_down_sync(0xffffffffu, acc, o));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_acc[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < (blockDim.x + 31) / 32 ? warp_acc[lane] : op.init();
      for (int o = 16; o > 0; o >>= 1) acc = op(acc, __shfl_down_sync(0xffffffffu, acc, o));
      if (lane == 0) out[b] = static_cast<Out>(acc);
    }
    __syncthreads();
  }
}

// Thread t = (oi * splits + seg) * inner + ii reduces segment seg of column (oi, ii) into out[t].
template <class In, class Out, class Op>
__global__ void reduce_cols(Op op, const In* in, Out* out, int64_t outer, int64_t r,
                            int64_t inner, int64_t splits) {
  using A = typename Op::Acc;
  const int64_t total = outer * splits * inner;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ii = t % inner, column = t / inner;
    int64_t begin, end;
    segment(r, splits, column % splits, &begin, &end);
    const In* p = in + (column / splits) * r * inner + ii;
    A acc = op.init();
    for (int64_t j = begin; j < end; ++j) acc = op(acc, static_cast<A>(p[j * inner]));
    out[t] = static_cast<Out>(acc);
  }
}

// Rows: a block should walk at least kRowSegment elements (16 per thread), and the grid need
// not exceed kRowBlocks blocks. Columns: a thread should walk at least kColSegment elements,
// and the grid need not exceed kColThreads threads (a few waves on the largest GPUs).
constexpr int64_t kRowSegment = 16 * kBlock;
constexpr int64_t kRowBlocks = 1024;
constexpr int64_t kColSegment = 32;
constexpr int64_t kColThreads = 1 << 17;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Segments per reduction for `outputs` results of r elements each (1: no split).
int64_t splits_for(int64_t outputs, int64_t r, bool rows) {
  const int64_t by_length = ceil_div(r, rows ? kRowSegment : kColSegment);
  const int64_t by_width = ceil_div(rows ? kRowBlocks : kColThreads, outputs);
  return std::max<int64_t>(1, std::min(by_length, by_width));
}

// One pass with a given number of splits.
template <class In, class Out, class Op>
void pass(cudaStream_t stream, Op op, const In* in, Out* out, int64_t outer, int64_t r,
          int64_t inner, int64_t splits) {
  if (inner == 1) {
    const int64_t blocks = outer * splits;
    const unsigned grid = static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
    reduce_rows<<<grid, kBlock, 0, stream>>>(op, in, out, outer, r, splits);
  } else {
    reduce_cols<<<grid_for(outer * splits * inner), kBlock, 0, stream>>>(op, in, out, outer, r,
                                                                         inner, splits);
  }
  CUDL_KERNEL_CHECK();
}

// (outer, r, inner) -> (outer, inner), split when splits_for says so.
template <class In, class Out, class Op>
void launch(cudaStream_t stream, Op op, const In* in, Out* out, int64_t outer, int64_t r,
            int64_t inner) {
  using A = typename Op::Acc;
  const bool rows = inner == 1;
  const int64_t splits = splits_for(outer * inner, r, rows);
  if (splits > 1) {
    // Partials (outer, splits, inner) in the accumulator's type, then reduced over splits.
    Tensor part = device_scratch(outer * splits * inner, DTypeOf<A>::value);
    A* p = part.data<A>();
    pass(stream, op, in, p, outer, r, inner, splits);
    launch(stream, op, static_cast<const A*>(p), out, outer, splits, inner);
    return;
  }
  pass(stream, op, in, out, outer, r, inner, 1);
}

}  // namespace

void reduce(cudaStream_t stream, ReduceOp op, DType dtype, const void* in, void* out,
            int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "reduce", [&] {
    auto i = static_cast<const scalar_t*>(in);
    auto o = static_cast<scalar_t*>(out);
    if (op == ReduceOp::kSum) {
      launch(stream, SumOp<double>{}, i, o, outer, r, inner);
    } else {
      launch(stream, MaxOp<compute_t<scalar_t>>{}, i, o, outer, r, inner);
    }
  });
}

}  // namespace cudl::cuda
