// Launchers of conv2d (see conv.h), one per backend with the same arguments; the CUDA ones
// take the stream first. Pointers are to contiguous NCHW / OIHW data of `dtype`; shapes were
// checked by the caller. bias/db may be null (no bias); dx/dw may be null when not wanted.
// Each launcher allocates the scratch memory it needs as a temporary tensor (CUDA: from the
// caching allocator), released when it returns.
#pragma once

#include "tensor/dtype.h"
#include "tensor/ops/conv_geometry.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cudl {

#define CUDL_CONV_KERNELS(STREAM_ARG)                                                              \
  void conv2d_forward(STREAM_ARG DType dtype, const ConvGeometry& g, const void* x, const void* w, \
                      const void* bias, void* y, bool benchmark, bool allow_tf32);                 \
  void conv2d_backward(STREAM_ARG DType dtype, const ConvGeometry& g, const void* x,               \
                       const void* w, const void* dy, void* dx, void* dw, void* db,                \
                       bool benchmark, bool allow_tf32);

namespace cpu {
CUDL_CONV_KERNELS()
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_CONV_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
}  // namespace cuda
#endif

#undef CUDL_CONV_KERNELS

}  // namespace cudl
