// float32 3x3, stride-1 convolutions by Winograd's minimal filtering, F(4x4, 3x3) (Lavin and
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each 4x4 block of outputs
// ("tile") comes from a 6x6 block of input as
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
// (. an elementwise product over the 36 positions), so the sum over input channels becomes 36
// independent GEMMs, (O x C) x (C x tiles), with 36 multiplications per tile where the direct
// convolution does 144: 4x fewer, for the transforms of the input, the weights and the output
// (additions, memory-bound).
//
// The gradient of the input is the same computation on dy with the weights turned by 180
// degrees and their two channel axes swapped, padded by 2 - p (a stride-1 3x3 convolution's
// transpose). The weights' gradient follows from the same identity differentiated:
//   dg = G^T [ sum over tiles of (B^T d B) (.) (A dY A^T) ] G,
// 36 GEMMs (O x tiles) x (tiles x C) that sum over the tiles.
//
// Rounding: the transforms add and subtract values of mixed signs with coefficients up to 8
// (A) and 5 (B), so each output's float32 rounding error is some 10-40x the direct sum's, about
// 1e-5 of the values instead of 1e-7 (tests/layers/test_cpu_paths.cpp bounds it): beyond the
// bounds of cudl's parity tests against PyTorch, whose CPU convolutions (oneDNN) are direct on
// AVX2 machines. So the library's kAuto stays direct, and this path is CpuConvPath::kWinograd,
// which fridge_train and fridge_eval choose by default on the CPU (as CUDA's default allows TF32,
// whose inputs round to 11 bits; --no-winograd gives the direct kernels). A NaN or infinity in a 6x6 window reaches
// all 16 outputs of its tile, where a direct convolution's reaches only the outputs that see it.
#pragma once

#include "tensor/ops/conv_geometry.h"

namespace cudl::cpu::winograd {

// Whether F(4x4, 3x3) computes this convolution: a 3x3 kernel, stride 1, no dilation, one
// group, row-major (NCHW) memory, padding of at most 2 on each side, and an input of at least
// 3x3. On smaller maps a 4x4 tile is mostly padding and the transforms' rounding is large
// against the small weight gradients, whose signs AdamW's first steps turn into full-size
// updates (test_cpu_paths.cpp, WinogradLeavesMapsBelow3x3ToTheDirectKernels); they are also
// where Winograd saves least.
bool applies(const ConvGeometry& g);

// y (N, O, OH, OW) = conv(x, w) + bias (bias may be null). Requires applies(g).
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y);

// dx (N, C, H, W) = the gradient of the input, from dy (N, O, OH, OW). Requires applies(g).
void conv2d_backward_data(const ConvGeometry& g, const float* w, const float* dy, float* dx);

// dw (O, C, 3, 3) = the gradient of the weights, from x and dy. Requires applies(g).
void conv2d_backward_weights(const ConvGeometry& g, const float* x, const float* dy, float* dw);

}  // namespace cudl::cpu::winograd
