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

// How cuDNN picks its algorithms (conv.h: set_conv_benchmark, set_conv_allow_tf32,
// set_conv_deterministic); the CPU launchers ignore it.
struct ConvAlgoOptions {
  bool benchmark = false;      // time the candidates (cudnnFind*Ex) instead of heuristics
  bool allow_tf32 = false;     // float32 may run on TF32 tensor cores
  bool deterministic = false;  // only algorithms that give the same bits every run
};

#define CUDL_CONV_KERNELS(STREAM_ARG)                                                              \
  void conv2d_forward(STREAM_ARG DType dtype, const ConvGeometry& g, const void* x, const void* w, \
                      const void* bias, void* y, const ConvAlgoOptions& algo);                     \
  void conv2d_backward(STREAM_ARG DType dtype, const ConvGeometry& g, const void* x,               \
                       const void* w, const void* dy, void* dx, void* dw, void* db,                \
                       const ConvAlgoOptions& algo);

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
