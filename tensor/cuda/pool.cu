// CUDA pooling: one thread per output (forward) or per input element (backward), over the
// shared per-element formulas of pool_kernels.h; grid-stride loops over memory order, so
// neighbouring threads touch neighbouring elements in either layout. bfloat16 compares as float
// (the maxima are exact) and max_grad_at sums gradients in float, rounding once.
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/tensor.h"

namespace cudl::cuda {

namespace {

template <class T>
__global__ void max_pool_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t* argmax) {
  const int64_t out_plane = g.oh * g.ow, total = g.planes * out_plane;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total;
       o += int64_t(gridDim.x) * blockDim.x) {
    int64_t p, r;  // o walks y's memory: plane p, in-plane index r
    pool::locate(o, out_plane, g.channels, &p, &r);
    pool::max_window(g, x + pool::plane_base(p, g.h * g.w, g.channels), r / g.ow, r % g.ow, y + o,
                     argmax + o);
  }
}

template <class T>
__global__ void max_pool_backward_kernel(PoolGeometry g, const T* dy, const int64_t* argmax,
                                         T* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow, total = g.planes * in_plane;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    int64_t p, r;  // e walks dx's memory: plane p, in-plane index r
    pool::locate(e, in_plane, g.channels, &p, &r);
    const int64_t out_base = pool::plane_base(p, out_plane, g.channels);
    dx[e] = pool::max_grad_at(g, dy + out_base, argmax + out_base, r / g.w, r % g.w);
  }
}

template <class T>
__global__ void global_max_forward_kernel(int64_t planes, int64_t hw, const T* x, T* y,
                                          int64_t* argmax, int64_t channels) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < planes;
       p += int64_t(gridDim.x) * blockDim.x)
    pool::max_plane(x + pool::plane_base(p, hw, channels), hw, pool::plane_step(channels), y + p,
                    argmax + p);
}

template <class T>
__global__ void global_max_backward_kernel(int64_t planes, int64_t hw, const T* dy,
                                           const int64_t* argmax, T* dx, int64_t channels) {
  const int64_t total = planes * hw;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    int64_t p, k;
    pool::locate(e, hw, channels, &p, &k);
    dx[e] = k == argmax[p] ? dy[p] : T(0);
  }
}

}  // namespace

void max_pool2d_forward(cudaStream_t stream, DType dtype, const PoolGeometry& g, const void* x,
                        void* y, int64_t* argmax) {
  const int64_t n = g.planes * g.oh * g.ow;
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "max_pool2d", [&] {
    max_pool_forward_kernel<<<grid_for(n), kBlock, 0, stream>>>(g, static_cast<const scalar_t*>(x),
                                                                static_cast<scalar_t*>(y), argmax);
    CUDL_KERNEL_CHECK();
  });
}

void max_pool2d_backward(cudaStream_t stream, DType dtype, const PoolGeometry& g, const void* dy,
                         const int64_t* argmax, void* dx) {
  const int64_t n = g.planes * g.h * g.w;
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "max_pool2d backward", [&] {
    max_pool_backward_kernel<<<grid_for(n), kBlock, 0, stream>>>(
        g, static_cast<const scalar_t*>(dy), argmax, static_cast<scalar_t*>(dx));
    CUDL_KERNEL_CHECK();
  });
}

void global_max_pool_forward(cudaStream_t stream, DType dtype, int64_t planes, int64_t hw,
                             const void* x, void* y, int64_t* argmax, int64_t channels) {
  if (planes == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "global_max_pool2d", [&] {
    global_max_forward_kernel<<<grid_for(planes), kBlock, 0, stream>>>(
        planes, hw, static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), argmax, channels);
    CUDL_KERNEL_CHECK();
  });
}

void global_max_pool_backward(cudaStream_t stream, DType dtype, int64_t planes, int64_t hw,
                              const void* dy, const int64_t* argmax, void* dx, int64_t channels) {
  const int64_t n = planes * hw;
  if (n == 0) return;
  CUDL_DISPATCH_FLOATING_BF16(dtype, "global_max_pool2d backward", [&] {
    global_max_backward_kernel<<<grid_for(n), kBlock, 0, stream>>>(
        planes, hw, static_cast<const scalar_t*>(dy), argmax, static_cast<scalar_t*>(dx), channels);
    CUDL_KERNEL_CHECK();
  });
}

}  // namespace cudl::cuda
