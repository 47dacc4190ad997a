// CUDA conv2d through cuDNN (legacy convolution API, still offered by cuDNN 9).
//
// One plan per (device, dtype, geometry, math mode, benchmark and determinism flags): the
// tensor, filter and convolution descriptors, and for each direction (forward, backward-data,
// backward-filter) the algorithm and its workspace size, chosen the first time that direction
// runs for the shape. Heuristics (cudnnGet*_v7) by default; with benchmark on, cudnnFind*Ex
// times the candidates on the real buffers. The first candidate in cuDNN's order (fastest
// first) that succeeded, fits the workspace cap, keeps the math mode and, when asked, is
// deterministic is taken, provided cuDNN confirms its workspace under the math it will run
// with; otherwise the next one is tried. Workspaces are kUInt8 tensors from the caching allocator,
// released when the call returns (safe: all work is ordered on cudl's one stream per device).
//
// bfloat16: x, w, y (and their gradients) are CUDNN_DATA_BFLOAT16 with float accumulation (the
// convolution descriptor's compute type is CUDNN_DATA_FLOAT: cuDNN's PSEUDO_BFLOAT16_CONFIG)
// and tensor-op math allowed; alpha/beta are float. The bias is cudl's own: y starts as the
// broadcast bias and the convolution adds into it (beta = 1), so the sum is formed in float and
// rounded once where cuDNN blends in its epilogue; the bias gradient is a per-channel sum of dy
// in double, rounded once. The plan cache key holds the dtype, so bf16 and float32 plans of one
// shape are separate.
//
// Channels-last (g.channels_last): x, y are NHWC tensor descriptors and the filter an NHWC
// filter descriptor (KRSC memory), the layout of cuDNN's tensor-core kernels; the key holds the
// layout too.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "tensor/cuda/channel_kernels.cuh"
#include "tensor/cuda/context.h"
#include "tensor/cuda/cudnn_descriptors.h"
#include "tensor/cuda/scratch.h"
#include "tensor/ops/conv_kernels.h"
#include "tensor/tensor.h"

namespace cudl::cuda {

namespace {

// Largest workspace an algorithm may ask for. cuDNN's fastest choices for ResNet shapes need
// far less; the cap keeps one odd algorithm from taking gigabytes.
constexpr size_t kMaxWorkspace = size_t(512) << 20;

template <class Algo>
struct Choice {
  bool chosen = false;
  Algo algo{};
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

struct ConvPlan {
  TensorDescriptor x, y, bias;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // what the descriptor was created with
  Choice<cudnnConvolutionFwdAlgo_t> fwd;
  Choice<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  Choice<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;
};

using PlanKey = std::tuple<int, int, bool, bool, bool, std::vector<int64_t>>;

PlanKey make_key(int device, DType dtype, const ConvGeometry& g, const ConvAlgoOptions& o) {
  // The TF32 switch only matters to float32 plans.
  return PlanKey{device, static_cast<int>(dtype), o.allow_tf32 && dtype == kFloat32, o.benchmark,
                 o.deterministic, std::vector<int64_t>{g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                                      g.dh, g.dw, g.groups, g.channels_last ? 1 : 0}};
}

// Deliberately never destroyed: descriptors may be needed by static tensors freed at exit.
std::map<PlanKey, std::unique_ptr<ConvPlan>>& plans() {
  static auto* p = new std::map<PlanKey, std::unique_ptr<ConvPlan>>();
  return *p;
}

ConvPlan& get_plan(int device, DType dtype, const ConvGeometry& g, const ConvAlgoOptions& o) {
  auto& cache = plans();
  PlanKey key = make_key(device, dtype, g, o);
  const bool tf32 = o.allow_tf32;
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto p = std::make_unique<ConvPlan>();
  const cudnnDataType_t dt = cudnn_dtype(dtype);
  // Accumulation type: float for bfloat16 data (PSEUDO_BFLOAT16_CONFIG), the data type otherwise.
  const cudnnDataType_t compute = cudnn_dtype(compute_dtype(dtype));
  set_4d(p->x, dtype, g.n, g.c, g.h, g.w, g.channels_last);
  set_4d(p->y, dtype, g.n, g.o, g.oh, g.ow, g.channels_last);
  set_nchw(p->bias, dtype, 1, g.o, 1, 1);
  CUDL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt,
                                              g.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                              cudnn_int(g.o, "O"),
                                              cudnn_int(g.c / g.groups, "C/groups"),
                                              cudnn_int(g.kh, "kH"), cudnn_int(g.kw, "kW")));
  CUDL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      p->conv, cudnn_int(g.ph, "pad"), cudnn_int(g.pw, "pad"), cudnn_int(g.sh, "stride"),
      cudnn_int(g.sw, "stride"), cudnn_int(g.dh, "dilation"), cudnn_int(g.dw, "dilation"),
      CUDNN_CROSS_CORRELATION, compute));
  CUDL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, cudnn_int(g.groups, "groups")));
  // FMA math keeps float32 exact fp32 (no TF32 tensor cores); DEFAULT lets cuDNN use TF32.
  // bfloat16 allows tensor-op math (bf16 products, float accumulation): what makes it fast.
  if (dtype == kFloat32 && !tf32) {
    p->math = CUDNN_FMA_MATH;
  } else if (dtype == kBFloat16) {
    p->math = CUDNN_TENSOR_OP_MATH;
  } else {
    p->math = CUDNN_DEFAULT_MATH;
  }
  CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->math));
  int n = 0, c = 0, h = 0, w = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
  CUDL_CHECK(n == g.n && c == g.o && h == g.oh && w == g.ow, "cuDNN computes a conv2d output of (",
             n, ", ", c, ", ", h, ", ", w, "), cudl expected (", g.n, ", ", g.o, ", ", g.oh, ", ",
             g.ow, ")");
  return *cache.emplace(std::move(key), std::move(p)).first->second;
}

// Accepts a candidate that ran, fits the workspace cap and respects the math mode (no tensor-op
// math when TF32 is off; never one that converts the data to float16, whose range is below
// float32's and bfloat16's).
template <class Perf>
bool acceptable(const Perf& p, const ConvPlan& plan, size_t limit) {
  if (p.status != CUDNN_STATUS_SUCCESS || p.memory > limit) return false;
  if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  if (plan.math == CUDNN_FMA_MATH)
    return p.mathType == CUDNN_FMA_MATH || p.mathType == CUDNN_DEFAULT_MATH;
  return true;
}

// The first usable candidate (see the top of this file). `workspace_of(algo, math, &bytes)` asks
// cuDNN for the workspace under the math the algorithm will run with: the candidates of a
// float32 plan without TF32 include DEFAULT_MATH ones, which run with FMA math, and one that has
// no such kernel fails there instead of in the convolution. With `deterministic` and no
// deterministic candidate, the first usable one runs, with a warning.
template <class Algo, class Perf, class WorkspaceOf>
Choice<Algo> pick(const std::vector<Perf>& perf, int returned, const ConvPlan& plan, size_t limit,
                  bool deterministic, const char* direction, WorkspaceOf workspace_of) {
  for (const bool only_deterministic : {deterministic, false}) {
    for (int i = 0; i < returned; ++i) {
      if (!acceptable(perf[i], plan, limit)) continue;
      if (only_deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
      Choice<Algo> c;
      c.algo = perf[i].algo;
      c.math = plan.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : perf[i].mathType;
      size_t ws = 0;
      if (workspace_of(c.algo, c.math, &ws) != CUDNN_STATUS_SUCCESS || ws > kMaxWorkspace) continue;
      c.chosen = true;
      c.workspace = std::max(perf[i].memory, ws);
      if (deterministic && !only_deterministic) {
        log_warning(std::string("conv2d: cuDNN offers no deterministic ") + direction +
                    " algorithm for this shape; running a non-deterministic one");
      }
      return c;
    }
    if (!deterministic) break;
  }
  CUDL_THROW_DEVICE(false, "cuDNN offers no usable ", direction, " algorithm for this conv2d (",
                    returned, " candidates, workspace limit ", limit, " bytes)");
}

// The largest workspace among the heuristic candidates under the cap: what a benchmark needs
// to give every reasonable candidate a chance.
template <class Perf>
size_t benchmark_workspace(const std::vector<Perf>& perf, int returned) {
  size_t ws = 0;
  for (int i = 0; i < returned; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace)
      ws = std::max(ws, perf[i].memory);
  return ws;
}

// cuDNN's workspace: scratch bytes on the current device (the plan's).
Tensor workspace(size_t bytes) { return device_scratch(static_cast<int64_t>(bytes), kUInt8); }

void* ws_ptr(const Tensor& ws, size_t bytes) {
  return bytes ? ws.data_ptr() : nullptr;
}

int current_device() {
  int d = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void choose_forward(cudnnHandle_t h, ConvPlan& p, const ConvAlgoOptions& o, const void* x,
                    const void* w, void* y) {
  auto workspace_of = [&](cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t math, size_t* bytes) {
    CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));
    return cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, algo, bytes);
  };
  // The candidates under the plan's own math type (not whatever an earlier direction's choice
  // left on the descriptor): it allows every algorithm that precision may use.
  CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.math));
  int max_count = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(max_count);
  int returned = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, max_count,
                                                          &returned, perf.data()));
  size_t limit = kMaxWorkspace;
  if (o.benchmark) {
    limit = benchmark_workspace(perf, returned);
    Tensor ws = workspace(limit);
    CUDL_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p.x, x, p.w, w, p.conv, p.y, y,
                                                            max_count, &returned, perf.data(),
                                                            ws_ptr(ws, limit), limit));
  }
  p.fwd = pick<cudnnConvolutionFwdAlgo_t>(perf, returned, p, limit, o.deterministic, "forward",
                                          workspace_of);
}

void choose_backward_data(cudnnHandle_t h, ConvPlan& p, const ConvAlgoOptions& o, const void* w,
                          const void* dy, void* dx) {
  auto workspace_of = [&](cudnnConvolutionBwdDataAlgo_t algo, cudnnMathType_t math, size_t* bytes) {
    CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, algo, bytes);
  };
  // The candidates under the plan's own math type (not whatever an earlier direction's choice
  // left on the descriptor): it allows every algorithm that precision may use.
  CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.math));
  int max_count = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(max_count);
  int returned = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, max_count,
                                                               &returned, perf.data()));
  size_t limit = kMaxWorkspace;
  if (o.benchmark) {
    limit = benchmark_workspace(perf, returned);
    Tensor ws = workspace(limit);
    CUDL_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        h, p.w, w, p.y, dy, p.conv, p.x, dx, max_count, &returned, perf.data(), ws_ptr(ws, limit),
        limit));
  }
  p.bwd_data = pick<cudnnConvolutionBwdDataAlgo_t>(perf, returned, p, limit, o.deterministic,
                                                   "backward-data", workspace_of);
}

void choose_backward_filter(cudnnHandle_t h, ConvPlan& p, const ConvAlgoOptions& o,
                            const void* x, const void* dy, void* dw) {
  auto workspace_of = [&](cudnnConvolutionBwdFilterAlgo_t algo, cudnnMathType_t math,
                          size_t* bytes) {
    CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, math));
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, algo, bytes);
  };
  // The candidates under the plan's own math type (not whatever an earlier direction's choice
  // left on the descriptor): it allows every algorithm that precision may use.
  CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.math));
  int max_count = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(max_count);
  int returned = 0;
  CUDL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, p.x, p.y, p.conv, p.w, max_count, &returned, perf.data()));
  size_t limit = kMaxWorkspace;
  if (o.benchmark) {
    limit = benchmark_workspace(perf, returned);
    Tensor ws = workspace(limit);
    CUDL_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, p.x, x, p.y, dy, p.conv, p.w, dw, max_count, &returned, perf.data(), ws_ptr(ws, limit),
        limit));
  }
  p.bwd_filter = pick<cudnnConvolutionBwdFilterAlgo_t>(perf, returned, p, limit, o.deterministic,
                                                       "backward-filter", workspace_of);
}

// y[i, o, :] = bias[o] for bfloat16, before a convolution that adds into y (beta = 1). Element
// e of y is in channel (e / inner) % o: inner = oh * ow row-major, 1 channels-last.
__global__ void bf16_broadcast_bias_kernel(int64_t total, int64_t o, int64_t inner,
                                           const bfloat16* bias, bfloat16* y) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x)
    y[e] = bias[(e / inner) % o];
}

// db[o] = sum over samples and positions of dy[i, o, :] for bfloat16: summed in double, rounded
// once (through float, exactly as the CPU's float result is rounded).
__global__ void __launch_bounds__(kChannelBlock)
    bf16_bias_grad_kernel(int64_t n, int64_t o, int64_t s, const bfloat16* dy, bfloat16* db) {
  __shared__ double scratch[64];
  for (int64_t ch = blockIdx.x; ch < o; ch += gridDim.x) {
    double acc = 0.0, unused = 0.0;
    for (ChannelWalk e(threadIdx.x, blockDim.x, s); e.i < n; e.next(s))
      acc += static_cast<float>(dy[e.index(o, ch, s)]);
    block_sum2(acc, unused, scratch);  // ends with a barrier: scratch is free for the next channel
    if (threadIdx.x == 0) db[ch] = bfloat16(static_cast<float>(acc));
  }
}

// Choosing an algorithm runs and times kernels and waits for them: not possible while the stream
// is captured into a CUDA graph.
void check_not_capturing(cudaStream_t stream, const char* direction) {
  CUDL_CHECK(!stream_is_capturing(stream), "conv2d ", direction, ": no cuDNN algorithm "
             "was chosen for this shape before the CUDA graph capture; run the step once eagerly");
}

}  // namespace

void conv2d_forward(cudaStream_t stream, DType dtype, const ConvGeometry& g, const void* x,
                    const void* w, const void* bias, void* y, const ConvAlgoOptions& algo) {
  const int device = current_device();
  // cuDNN's lock also guards the plan cache.
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = cudnn_handle_on(device, stream);
  ConvPlan& p = get_plan(device, dtype, g, algo);
  if (!p.fwd.chosen) {
    check_not_capturing(stream, "forward");
    choose_forward(h, p, algo, x, w, y);
  }
  CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.fwd.math));
  const CudnnScalars s(dtype);
  // bfloat16 with a bias: y starts as the bias and the convolution adds into it (after the
  // algorithm was chosen: a benchmark writes y).
  const bool bias_first = bias && dtype == kBFloat16;
  if (bias_first) {
    const int64_t total = g.n * g.o * g.oh * g.ow;
    bf16_broadcast_bias_kernel<<<grid_for(total), kBlock, 0, stream>>>(
        total, g.o, g.channels_last ? 1 : g.oh * g.ow, static_cast<const bfloat16*>(bias),
        static_cast<bfloat16*>(y));
    CUDL_KERNEL_CHECK();
  }
  Tensor ws = workspace(p.fwd.workspace);
  CUDL_CUDNN_CHECK(cudnnConvolutionForward(h, s.one(), p.x, x, p.w, w, p.conv, p.fwd.algo,
                                           ws_ptr(ws, p.fwd.workspace), p.fwd.workspace,
                                           bias_first ? s.one() : s.zero(), p.y, y));
  if (bias && !bias_first)
    CUDL_CUDNN_CHECK(cudnnAddTensor(h, s.one(), p.bias, bias, s.one(), p.y, y));
}

void conv2d_backward(cudaStream_t stream, DType dtype, const ConvGeometry& g, const void* x,
                     const void* w, const void* dy, void* dx, void* dw, void* db,
                     const ConvAlgoOptions& algo) {
  const int device = current_device();
  // cuDNN's lock also guards the plan cache.
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = cudnn_handle_on(device, stream);
  ConvPlan& p = get_plan(device, dtype, g, algo);
  const CudnnScalars s(dtype);
  if (dx) {
    if (!p.bwd_data.chosen) {
      check_not_capturing(stream, "backward-data");
      choose_backward_data(h, p, algo, w, dy, dx);
    }
    CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_data.math));
    Tensor ws = workspace(p.bwd_data.workspace);
    CUDL_CUDNN_CHECK(cudnnConvolutionBackwardData(h, s.one(), p.w, w, p.y, dy, p.conv,
                                                  p.bwd_data.algo, ws_ptr(ws, p.bwd_data.workspace),
                                                  p.bwd_data.workspace, s.zero(), p.x, dx));
  }
  if (dw) {
    if (!p.bwd_filter.chosen) {
      check_not_capturing(stream, "backward-filter");
      choose_backward_filter(h, p, algo, x, dy, dw);
    }
    CUDL_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_filter.math));
    Tensor ws = workspace(p.bwd_filter.workspace);
    CUDL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        h, s.one(), p.x, x, p.y, dy, p.conv, p.bwd_filter.algo, ws_ptr(ws, p.bwd_filter.workspace),
        p.bwd_filter.workspace, s.zero(), p.w, dw));
  }
  if (db && dtype == kBFloat16) {
    const int64_t plane = g.oh * g.ow;
    if (g.n * plane == 0) {
      CUDL_CUDA_CHECK(cudaMemsetAsync(db, 0, static_cast<size_t>(g.o) * sizeof(bfloat16), stream));
    } else {
      // Channels-last dy is the (n * oh * ow, o, 1) array of the same memory.
      bf16_bias_grad_kernel<<<channel_grid(g.o), kChannelBlock, 0, stream>>>(
          g.channels_last ? g.n * plane : g.n, g.o, g.channels_last ? 1 : plane,
          static_cast<const bfloat16*>(dy), static_cast<bfloat16*>(db));
      CUDL_KERNEL_CHECK();
    }
  } else if (db) {
    CUDL_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, s.one(), p.y, dy, s.zero(), p.bias, db));
  }
}

}  // namespace cudl::cuda
