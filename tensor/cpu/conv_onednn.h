// float32 conv2d on oneDNN (Debian's libdnnl, the library PyTorch runs its CPU convolutions
// on), used by tensor/cpu/conv.cpp when CpuConvPath (tensor/ops/conv.h) allows it. oneDNN's
// JIT kernels work on channel-blocked layouts: the NCHW input, the OIHW weights and the output
// are reordered to and from what the primitive asks for, in buffers taken from cudl's
// allocator (so memory_stats counts them). Primitives are created once per shape and thread
// count and cached.
//
// Each function returns false, having done nothing, when oneDNN is not built in or has no
// implementation the caller accepts for the shape (with `jit_only`, only oneDNN's JIT kernels:
// its reference and GEMM fallbacks are slower than cudl's im2col); the caller then takes its
// im2col path.
#pragma once

#include <string>

#include "tensor/ops/conv_geometry.h"

namespace cudl::cpu::onednn {

// oneDNN's version ("2.6.3"), or "" when cudl was built without it.
std::string version();

// y (N, O, OH, OW) = conv(x, w) + bias (bias may be null).
bool conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y, bool jit_only);

// The gradients of the input (dx, when not null) and of the weights (dw, when not null), from
// dy (N, O, OH, OW). Returns which of the two it computed; the caller computes the others.
struct BackwardDone {
  bool dx = false, dw = false;
};
BackwardDone conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy,
                             float* dx, float* dw, bool jit_only);

}  // namespace cudl::cpu::onednn
