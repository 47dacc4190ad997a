// 2-D convolution (cross-correlation, as in PyTorch) with autograd.
//
//   x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or undefined -> y (N, O, OH, OW)
//   y[n, o, i, j] = bias[o] + sum_{c in group(o), a, b}
//                     weight[o, c, a, b] * x[n, c, i*sH - pH + a*dH, j*sW - pW + b*dW]
//   (x is zero outside the image; OH, OW from window_out_size in conv_geometry.h)
//   dx = transposed convolution of dy with weight; dweight[o, c, a, b] = sum_{n, i, j}
//   dy[n, o, i, j] * x[n, c, ...]; dbias[o] = sum_{n, i, j} dy[n, o, i, j].
//
// Memory format: a channels-last input (N, C, H, W) gives a channels-last output, as in PyTorch.
// On CUDA, cuDNN runs it as NHWC with the weight as (O, kH, kW, C/groups) in memory (converted
// per call: parameters stay OIHW, as the weights file and the optimiser keep them; float64
// converts x to NCHW and the result back). The CPU copies x (and dy) to NCHW with one parallel
// transpose, runs the row-major kernels below on them and the OIHW weight, and transposes y (dx)
// back (bfloat16 on oneDNN's bfloat16 kernels, see onednn_bf16_native, reorders from and to
// NHWC directly instead): oneDNN 2.6's
// own NHWC kernels took 1.13x (forward) and 1.43x (backward) the time of its blocked ones over
// ResNet-18's layers on the 2-core AVX2 test machine, so the copies cost less
// (bench/results/cpu-2026-11-30-channels-last/conv_onednn_nhwc_experiment.txt).
//
// CUDA: cuDNN forward, backward-data and backward-filter. Descriptors and the algorithm of
// each direction are chosen once per shape and cached; the workspace comes from the caching
// allocator. With conv_benchmark(true) the algorithms are timed by cudnnFind*Ex (as
// torch.backends.cudnn.benchmark); otherwise cuDNN's heuristics pick them. float32 runs in
// full fp32 precision unless conv_allow_tf32(true), matching cudl's cuBLAS policy.
//
// CPU, float32: oneDNN (when built in; the library PyTorch runs its CPU convolutions on) for
// kernels larger than 1x1. Its JIT kernels run ResNet-18's 3x3 convolutions forward at ~37
// GFLOP/s per core on the 2-core test machine, where im2col + OpenBLAS reaches 31-34 with 128+
// channels and ~20 with 64 (OpenBLAS's GEMM is weak with 64 rows); see bench/conv.sh.
// CPU, bfloat16: oneDNN's bfloat16 kernels where the CPU has bfloat16 instructions (1x1
// included), else widened to float32 (onednn_bf16_native below).
// CPU, otherwise (float64, float32 1x1 kernels, or without oneDNN): im2col + the BLAS GEMM. A few
// samples at a time are unfolded into one column buffer (C*kH*kW, samples*OH*OW) so the GEMM
// is wide enough even for small late-stage feature maps, and large maps are unfolded a band of
// output rows at a time, so the columns stay in the cache; the buffers are temporaries of the
// op (no memory kept between calls). The backward pass unfolds x again rather than keeping the
// columns, so the graph holds only x and the weight. Threads: with at least as many sample
// groups as threads (training batches), each thread convolves whole samples with
// single-threaded GEMMs; otherwise the samples run one after the other with every thread in
// each GEMM. All paths give the same result up to float rounding.
#pragma once

#include <string>

#include "tensor/ops/conv_geometry.h"
#include "tensor/tensor.h"

namespace cudl {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Size2 stride = 1, Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

// Checks the arguments of conv2d and returns the geometry. Throws one message naming the
// mismatched tensor, what was expected and what was found.
ConvGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             Size2 stride, Size2 padding, Size2 dilation, int64_t groups);

// cuDNN algorithm selection: benchmark each new shape (true) or use heuristics (false, the
// default). Changing it affects shapes seen afterwards.
void set_conv_benchmark(bool on);
bool conv_benchmark();
// Allow TensorFloat-32 in cuDNN float32 convolutions (faster, ~1e-3 relative error). Off by
// default.
void set_conv_allow_tf32(bool on);
bool conv_allow_tf32();
// Only cuDNN algorithms that give the same bits on every run (as
// torch.backends.cudnn.deterministic): some backward algorithms add partial sums with atomics,
// in an order that changes from run to run. Off by default. Where cuDNN offers no deterministic
// algorithm for a shape, the fastest other one runs and a warning says so. Affects shapes seen
// afterwards.
void set_conv_deterministic(bool on);
bool conv_deterministic();

// The CPU convolution's implementation (see above). kAuto: oneDNN's JIT kernels for float32
// kernels larger than 1x1, when cudl is built with oneDNN (bfloat16: onednn_bf16_native
// below); im2col otherwise, with the thread strategy picked from the batch and the thread
// count. kWinograd: kAuto, except that float32
// 3x3 stride-1 convolutions (forward and both gradients) take Winograd's F(4x4, 3x3)
// (tensor/cpu/conv_winograd.h): faster, with float32 rounding errors some 10-40x the direct
// kernels' (about 1e-5 of the values instead of 1e-7). kAuto keeps PyTorch's rounding (its CPU
// convolutions are direct) and is what the parity tests check; fridge_train and fridge_eval
// choose kWinograd unless --no-winograd (train::TrainOptions::winograd,
// train::EvalOptions::winograd). The others force one path, for tests and benchmarks: kOneDnn
// (any oneDNN implementation, float32; im2col where it has none or for float64),
// kIm2colSampleParallel, kIm2colBlasThreads.
enum class CpuConvPath { kAuto, kOneDnn, kIm2colSampleParallel, kIm2colBlasThreads, kWinograd };
void set_cpu_conv_path(CpuConvPath path);
CpuConvPath cpu_conv_path();
// oneDNN's version ("2.6.3") when cudl was built with it, "" otherwise.
std::string onednn_version();
// Whether the CPU's bfloat16 convolutions (mixed precision) run on oneDNN's bfloat16 kernels:
// cudl built with oneDNN, on a CPU with bfloat16 instructions (AVX512-BF16 or AMX) that
// ONEDNN_MAX_CPU_ISA does not exclude. They do so in every path but the forced im2col ones, in
// both memory formats, wherever oneDNN has a JIT kernel for the shape and direction (every
// convolution of ResNet-18); the rest, and every bfloat16 convolution on other CPUs, widen the
// operands to float32 and take the float32 path (kWinograd's Winograd included), rounding each
// result once.
bool onednn_bf16_native();

}  // namespace cudl
