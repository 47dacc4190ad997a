// Device helpers of the per-channel kernels over contiguous (n, c, s) arrays (NCHW with
// s = H * W, as batch norm and the convolution bias see them): one block per channel walks the
// n * s elements of its channel and reduces per-thread partial sums to one value per channel.
// Only for .cu files.
#pragma once

#include <cstdint>

namespace cudl::cuda {

// Threads per block of the per-channel kernels: a multiple of 32 (block_sum2 needs whole warps).
constexpr int kChannelBlock = 256;

// Blocks for c channels: one per channel, up to a cap (the kernels loop over the rest).
inline unsigned channel_grid(int64_t c) {
  return static_cast<unsigned>(c < 65535 ? (c > 0 ? c : 1) : 65535);
}

// The elements of channel ch visited by one thread: flat positions first, first + step, ...
// below n * s of the channel, where flat position i * s + k is element (i * c + ch) * s + k of
// the array. Kept as (sample i, offset k) and stepped without a division per element. s >= 1.
struct ChannelWalk {
  int64_t i, k;    // the current element: sample and offset in its plane
  int64_t di, dk;  // the step as whole planes plus a remainder (< s)
  __device__ ChannelWalk(int64_t first, int64_t step, int64_t s)
      : i(first / s), k(first % s), di(step / s), dk(step % s) {}
  __device__ void next(int64_t s) {
    i += di;
    k += dk;  // k, dk < s, so one carry at most
    if (k >= s) {
      k -= s;
      ++i;
    }
  }
  __device__ int64_t index(int64_t c, int64_t ch, int64_t s) const { return (i * c + ch) * s + k; }
};

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sums u and v over the threads of the block (blockDim.x a multiple of 32, every thread calling);
// the totals are valid in thread 0. scratch: 64 doubles of shared memory, free again on return.
// The order of the additions is fixed, so results are deterministic.
__device__ __forceinline__ void block_sum2(double& u, double& v, double* scratch) {
  u = warp_sum(u);
  v = warp_sum(v);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (lane == 0) {
    scratch[warp] = u;
    scratch[32 + warp] = v;
  }
  __syncthreads();
  if (warp == 0) {
    u = warp_sum(lane < warps ? scratch[lane] : 0.0);
    v = warp_sum(lane < warps ? scratch[32 + lane] : 0.0);
  }
  __syncthreads();
}

}  // namespace cudl::cuda
