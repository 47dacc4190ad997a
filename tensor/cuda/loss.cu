// CUDA loss kernels over the formulas of ops/loss_math.h (the same functions the CPU loops call).
//
// BCE-with-logits: one grid-stride pass writes the per-element loss and/or gradient and, for
// the mean and sum reductions, reduces the loss inside each block (double accumulation, warp
// shuffles then shared memory) to one partial per block; a one-block kernel adds the partials
// in block order. The grid size depends only on n, so the result is deterministic.
// Cross-entropy: one warp per row (max, sum of exponentials and the gradient row), the per-row
// losses and weights reduced the same way.
#include <algorithm>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/scratch.h"
#include "tensor/ops/loss_kernels.h"
#include "tensor/ops/loss_math.h"
#include "tensor/tensor.h"

namespace cudl::cuda {

namespace {
constexpr int kMaxPartials = 1024;  // blocks that contribute partial sums (and threads of the final pass)

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block, valid in thread 0. blockDim.x must be a multiple of 32, <= 1024.
__device__ double block_sum(double v) {
  __shared__ double warp_acc[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // warp_acc may still be read by a previous call
  if (lane == 0) warp_acc[warp] = v;
  __syncthreads();
  v = 0.0;
  if (warp == 0) {
    if (lane < static_cast<int>(blockDim.x / 32)) v = warp_acc[lane];
    v = warp_sum(v);
  }
  return v;
}

template <class T>
__global__ void bce_kernel(int64_t n, int64_t c, const T* __restrict__ x, const T* __restrict__ y,
                           const T* __restrict__ pw, T* __restrict__ loss, T* __restrict__ grad,
                           T grad_scale, double* __restrict__ partial) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const math::LossAndGrad<T> r =
        pw ? math::bce_with_logits(x[i], y[i], pw[i % c]) : math::bce_with_logits(x[i], y[i]);
    if (loss) loss[i] = r.loss;
    if (grad) grad[i] = r.grad * grad_scale;
    acc += static_cast<double>(r.loss);
  }
  if (partial) {
    acc = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
  }
}

// out[k] = scale * sum of parts[k * count .. (k + 1) * count), for k < outputs; one block.
template <class T>
__global__ void finish_sums(const double* __restrict__ parts, int count, int outputs, double scale,
                            T* __restrict__ out) {
  for (int k = 0; k < outputs; ++k) {
    double v = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) v += parts[k * count + i];
    v = block_sum(v);
    if (threadIdx.x == 0) out[k] = static_cast<T>(v * scale);
  }
}

// One warp per row. partial: 2 * gridDim.x doubles {row losses..., row weights...} or null.
template <class T>
__global__ void cross_entropy_kernel(int64_t rows, int64_t c, const T* __restrict__ logits,
                                     const int64_t* __restrict__ target, const T* __restrict__ weight,
                                     T* __restrict__ loss, T* __restrict__ grad,
                                     double* __restrict__ partial) {
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_block = blockDim.x / 32;
  double acc_loss = 0.0, acc_w = 0.0;
  for (int64_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows;
       r += int64_t(gridDim.x) * warps_per_block) {
    const T* xr = logits + r * c;
    const int64_t t = target[r];
    T* gr = grad ? grad + r * c : nullptr;
    if (t < 0 || t >= c) {
      const T nan = T(NAN);
      if (lane == 0 && loss) loss[r] = nan;
      if (gr) for (int64_t j = lane; j < c; j += 32) gr[j] = nan;
      if (lane == 0) acc_loss = acc_w = NAN;
      continue;
    }
    T m = -INFINITY;
    for (int64_t j = lane; j < c; j += 32) m = xr[j] > m ? xr[j] : m;
    for (int o = 16; o > 0; o >>= 1) {
      const T other = __shfl_xor_sync(0xffffffffu, m, o);
      m = other > m ? other : m;
    }
    T s = T(0);
    for (int64_t j = lane; j < c; j += 32) s += math::exp(xr[j] - m);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const T w = weight ? weight[t] : T(1);
    if (gr) {
      const T inv_s = T(1) / s;
      for (int64_t j = lane; j < c; j += 32) gr[j] = math::cross_entropy_grad(xr[j], j == t, m, inv_s, w);
    }
    if (lane == 0) {
      const T l = math::cross_entropy_loss(xr[t], m, s, w);
      if (loss) loss[r] = l;
      acc_loss += static_cast<double>(l);
      acc_w += static_cast<double>(w);
    }
  }
  if (partial) {
    acc_loss = block_sum(acc_loss);
    acc_w = block_sum(acc_w);
    if (threadIdx.x == 0) {
      partial[blockIdx.x] = acc_loss;
      partial[gridDim.x + blockIdx.x] = acc_w;
    }
  }
}
}  // namespace

void bce_with_logits(cudaStream_t stream, DType dtype, int64_t n, int64_t c, const void* x,
                     const void* y, const void* pos_weight, void* loss, void* grad,
                     double grad_scale, void* sum, double sum_scale) {
  const unsigned grid = n == 0 ? 1 : std::min<unsigned>(grid_for(n), kMaxPartials);
  Tensor partial = sum ? device_scratch(grid, kFloat64) : Tensor();
  double* part = sum ? partial.data<double>() : nullptr;
  CUDL_DISPATCH_FLOATING(dtype, "bce_with_logits", [&] {
    bce_kernel<<<grid, kBlock, 0, stream>>>(
        n, c, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(y),
        static_cast<const scalar_t*>(pos_weight), static_cast<scalar_t*>(loss),
        static_cast<scalar_t*>(grad), static_cast<scalar_t>(grad_scale), part);
    CUDL_KERNEL_CHECK();
    if (sum) {
      finish_sums<<<1, kMaxPartials, 0, stream>>>(part, static_cast<int>(grid), 1, sum_scale,
                                                  static_cast<scalar_t*>(sum));
      CUDL_KERNEL_CHECK();
    }
  });
}

void cross_entropy(cudaStream_t stream, DType dtype, int64_t rows, int64_t c, const void* logits,
                   const int64_t* target, const void* weight, void* loss, void* grad, void* sums) {
  const int64_t warps = kBlock / 32;
  const unsigned grid =
      rows == 0 ? 1 : static_cast<unsigned>(std::min<int64_t>((rows + warps - 1) / warps, kMaxPartials));
  Tensor partial = sums ? device_scratch(2 * int64_t(grid), kFloat64) : Tensor();
  double* part = sums ? partial.data<double>() : nullptr;
  CUDL_DISPATCH_FLOATING(dtype, "cross_entropy", [&] {
    cross_entropy_kernel<<<grid, kBlock, 0, stream>>>(
        rows, c, static_cast<const scalar_t*>(logits), target,
        static_cast<const scalar_t*>(weight), static_cast<scalar_t*>(loss),
        static_cast<scalar_t*>(grad), part);
    CUDL_KERNEL_CHECK();
    if (sums) {
      finish_sums<<<1, kMaxPartials, 0, stream>>>(part, static_cast<int>(grid), 2, 1.0,
                                                  static_cast<scalar_t*>(sums));
      CUDL_KERNEL_CHECK();
    }
  });
}

}  // namespace cudl::cuda
