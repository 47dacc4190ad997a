// CUDA copies, casts, fills and random fills (the random values match the CPU's: philox.h).
// bfloat16 takes part in all of them: casts to it round to nearest even once from float (from
// double and the integers through float, as static_cast<bfloat16> does on the CPU), and random
// values are drawn in double and rounded the same way as on the CPU, so both backends agree.
#include "tensor/cuda/check.h"
#include "tensor/ops/kernels.h"

namespace cudl::cuda {

namespace {
template <class W>
__global__ void copy_kernel(int64_t n, const W* src, W* dst, StridedIndex<2> ix) {
  int64_t off[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    ix.offsets(i, off);
    dst[off[0]] = src[off[1]];
  }
}

template <class From, class To>
__global__ void cast_kernel(int64_t n, const From* src, To* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = static_cast<To>(src[i]);
}

template <class T>
__global__ void fill_kernel(int64_t n, T* dst, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = v;
}

template <class T>
__global__ void random_kernel(int64_t n, T* dst, uint64_t seed, uint64_t offset,
                              const uint64_t* offset_base, philox::Dist dist, double a, double b) {
  if (offset_base) offset += *offset_base;
  const int64_t blocks = (n + 3) / 4;
  for (int64_t blk = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; blk < blocks;
       blk += int64_t(gridDim.x) * blockDim.x) {
    double v[4];
    philox::sample4(dist, a, b, philox::block(seed, offset + static_cast<uint64_t>(blk)), v);
    for (int l = 0; l < 4 && blk * 4 + l < n; ++l) dst[blk * 4 + l] = static_cast<T>(v[l]);
  }
}
}  // namespace

void copy_strided(cudaStream_t stream, size_t elem_size, int64_t n, const void* src, void* dst,
                  const StridedIndex<2>& idx) {
  if (n == 0) return;
  if (idx.ndim == 1 && idx.strides[0][0] == 1 && idx.strides[1][0] == 1) {
    CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * elem_size,
                                    cudaMemcpyDeviceToDevice, stream));
    return;
  }
  switch (elem_size) {
    case 1:
      copy_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<const uint8_t*>(src),
                                                      static_cast<uint8_t*>(dst), idx);
      break;
    case 2:
      copy_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<const uint16_t*>(src),
                                                      static_cast<uint16_t*>(dst), idx);
      break;
    case 4:
      copy_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<const uint32_t*>(src),
                                                      static_cast<uint32_t*>(dst), idx);
      break;
    case 8:
      copy_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<const uint64_t*>(src),
                                                      static_cast<uint64_t*>(dst), idx);
      break;
    default: CUDL_THROW("copy_strided: unsupported element size ", elem_size);
  }
  CUDL_KERNEL_CHECK();
}

void cast(cudaStream_t stream, DType from, DType to, int64_t n, const void* src, void* dst) {
  if (n == 0) return;
  CUDL_DISPATCH_ALL(from, "cast", [&] {
    using from_t = scalar_t;
    CUDL_DISPATCH_ALL(to, "cast", [&] {
      cast_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<const from_t*>(src),
                                                      static_cast<scalar_t*>(dst));
      CUDL_KERNEL_CHECK();
    });
  });
}

void fill(cudaStream_t stream, DType dtype, int64_t n, void* dst, double value) {
  if (n == 0) return;
  CUDL_DISPATCH_ALL(dtype, "fill", [&] {
    fill_kernel<<<grid_for(n), kBlock, 0, stream>>>(n, static_cast<scalar_t*>(dst),
                                                    static_cast<scalar_t>(value));
    CUDL_KERNEL_CHECK();
  });
}

void fill_random(cudaStream_t stream, DType dtype, int64_t n, void* dst, uint64_t seed,
                 uint64_t offset, const uint64_t* offset_base, philox::Dist dist, double a, double b) {
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "fill_random", [&] {
    random_kernel<<<grid_for((n + 3) / 4), kBlock, 0, stream>>>(n, static_cast<scalar_t*>(dst), seed,
                                                                offset, offset_base, dist, a, b);
    CUDL_KERNEL_CHECK();
  });
}

void memcpy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  const Device on = dst_device.is_cuda() ? dst_device : src_device;
  // Between two GPUs the copy runs on the destination's stream: the source's pending work
  // (which may still be writing the data) must be done first.
  if (src_device.is_cuda() && dst_device.is_cuda() && src_device.index != dst_device.index)
    synchronize(src_device.index);
  DeviceGuard guard(on.index);
  cudaStream_t s = stream(on.index);
  cudaMemcpyKind kind = cudaMemcpyDefault;  // unified addressing works out the direction
  CUDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  CUDL_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace cudl::cuda
