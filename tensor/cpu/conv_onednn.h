// conv2d on oneDNN (Debian's libdnnl, the library PyTorch runs its CPU convolutions on), used
// by tensor/cpu/conv.cpp when CpuConvPath (tensor/ops/conv.h) allows it: float32, and
// bfloat16 (bfloat16 operands and results, float accumulation, one rounding per result, as the
// widening path of widen.h computes them) where oneDNN has JIT kernels that use the CPU's own
// bfloat16 instructions (native_bf16()). oneDNN's
// JIT kernels work on channel-blocked layouts: the input (NCHW, or NHWC when the geometry is
// channels-last), the OIHW weights and the output (the input's layout) are reordered to and
// from what the primitive asks for, in buffers taken from cudl's allocator (so memory_stats
// counts them). Primitives are created once per element type, shape, layout, bias and thread
// count and cached.
//
// Each function returns false, having done nothing, when oneDNN is not built in or has no
// implementation the caller accepts for the shape (with `jit_only`, only oneDNN's JIT kernels:
// its reference and GEMM fallbacks are slower than cudl's im2col; tensor/cpu/conv.cpp always
// asks so for bfloat16); the caller then takes its im2col path (float32) or widens to float32
// (bfloat16).
#pragma once

#include <string>

#include "tensor/dtype.h"
#include "tensor/ops/conv_geometry.h"

namespace cudl::cpu::onednn {

// oneDNN's version ("2.6.3"), or "" when cudl was built without it.
std::string version();

// Whether oneDNN's kernels may use bfloat16 instructions on this CPU (AVX512-BF16 or AMX,
// within ONEDNN_MAX_CPU_ISA). Without them oneDNN's bfloat16 convolutions emulate the
// instructions or run its reference code, both slower than widening to float: the bfloat16
// calls below then decline.
bool native_bf16();

// y (N, O, OH, OW) = conv(x, w) + bias (bias may be null); every operand of type `dtype`
// (kFloat32 or kBFloat16).
bool conv2d_forward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y, bool jit_only);

// The gradients of the input (dx, when not null) and of the weights (dw, when not null), from
// dy (N, O, OH, OW). Returns which of the two it computed; the caller computes the others.
struct BackwardDone {
  bool dx = false, dw = false;
};
BackwardDone conv2d_backward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                             const void* dy, void* dx, void* dw, bool jit_only);

}  // namespace cudl::cpu::onednn
