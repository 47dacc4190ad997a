// CUDA batch norm. float32 / float64: cuDNN's spatial batch normalisation (legacy API, present
// in cuDNN 9). The input (n, c, s) is described as NCHW with H = s, W = 1, so BatchNorm1d and
// BatchNorm2d share one path. cuDNN updates the running averages itself with factor = momentum
// and the unbiased batch variance, which is PyTorch's rule. The descriptors are two host-side
// objects set per call (microseconds); there is no algorithm to choose. The epilogue of
// batch_norm_act (+ residual, ReLU) is one extra in-place pass of cudl's after cuDNN: cuDNN's
// fused variant (cudnnBatchNormalizationForwardTrainingEx with CUDNN_BATCHNORM_OPS_BN_ADD_
// ACTIVATION) is meant for NHWC layouts, and its support for cudl's NCHW float32 is not
// something we could confirm, so it is not used.
//
// bfloat16 (x, y, dy, dx; the parameters and statistics are float32): cudl's own kernels with
// the CPU's formulas (tensor/cpu/batch_norm.cpp): statistics summed in double (shifted by the
// channel's first value) by many blocks per channel, the elementwise passes in float, rounded
// once on store, so they match the CPU twin formula for formula. cuDNN's legacy batch norm is not
// used for bfloat16: its documentation names no bfloat16 configuration we could confirm;
// PyTorch keeps bfloat16 off it (ATen's Normalization.cpp, in _select_batch_norm_backend,
// excludes kBFloat16 from cuDNN); TensorFlow's bfloat16 batch norm through cuDNN needs Ampere
// or later and falls back to float32 otherwise (tensorflow/tensorflow#58512).
#include <algorithm>

#include "tensor/cuda/channel_kernels.cuh"
#include "tensor/cuda/context.h"
#include "tensor/cuda/cudnn_descriptors.h"
#include "tensor/cuda/scratch.h"
#include "tensor/ops/batch_norm_kernels.h"
#include "tensor/tensor.h"

namespace cudl::cuda {

namespace {

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;
// Channels-last training (forward and backward): cuDNN's persistent kernels, the NHWC fast path,
// as PyTorch picks for channels-last (ATen's cudnn/BatchNorm.cpp). Eval keeps kMode.
cudnnBatchNormMode_t train_mode(bool channels_last) {
  return channels_last ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT : kMode;
}

struct BnDescriptors {
  TensorDescriptor x, param;
  BnDescriptors(DType dtype, int64_t n, int64_t c, int64_t s, bool channels_last) {
    set_4d(x, dtype, n, c, s, 1, channels_last);
    set_nchw(param, compute_dtype(dtype), 1, c, 1, 1);  // cuDNN: float params for half inputs
  }
};

// The current device's cuDNN handle bound to `stream`; the caller holds cuda::cudnn_mutex().
cudnnHandle_t handle_on(cudaStream_t stream) {
  int device = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&device));
  return cudnn_handle_on(device, stream);
}

__global__ void increment_kernel(int64_t* counter) {
  *counter += 1;
}

// ---- bfloat16 (the CPU's formulas; see forward_train_impl etc. in tensor/cpu/batch_norm.cpp) ----
//
// Each channel's M = n * s elements are cut into `chunks` ranges of flat positions (position
// f = i * s + k is element (i * c + ch) * s + k); a grid of (chunks, channels) blocks sums each
// range in double, one thread per channel adds its chunks' sums in chunk order (deterministic)
// and turns them into per-channel coefficients, and a pass over the planes applies them. So a
// large GPU is busy even with 64 channels of 112x112 images (one block per channel would use
// 64 of its SMs).

constexpr int64_t kTargetBlocks = 1024;  // blocks of a statistics pass: a few per SM
constexpr int64_t kMinPerBlock = 4096;   // elements below which another block does not pay

int64_t chunks_for(int64_t c, int64_t m) {
  const int64_t by_size = (m + kMinPerBlock - 1) / kMinPerBlock;
  const int64_t by_grid = std::max<int64_t>(1, kTargetBlocks / std::max<int64_t>(c, 1));
  return std::max<int64_t>(1, std::min(by_size, by_grid));
}

dim3 stats_grid(int64_t chunks, int64_t c) {
  return dim3(static_cast<unsigned>(std::min<int64_t>(chunks, 65535)),
              static_cast<unsigned>(std::min<int64_t>(c, 65535)));
}

// Blocks over the n * c planes of s elements: y walks the planes, x the elements of a plane.
dim3 plane_grid(int64_t planes, int64_t s) {
  const int64_t per_plane = std::min<int64_t>((s + kBlock - 1) / kBlock, 1024);
  return dim3(static_cast<unsigned>(std::max<int64_t>(per_plane, 1)),
              static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(planes, 1), 65535)));
}

// [begin, end) of chunk `chunk` of m flat positions cut into `chunks` ranges.
__device__ __forceinline__ void chunk_bounds(int64_t m, int64_t chunks, int64_t chunk,
                                             int64_t* begin, int64_t* end) {
  const int64_t per = (m + chunks - 1) / chunks;
  *begin = min(m, chunk * per);
  *end = min(m, *begin + per);
}

// The sums of the two passes, term by term. Each has a per-channel value (channel_value) and
// adds one element's terms to u and v.
// Forward: u = x - shift, v = (x - shift)^2, shift = the channel's first value.
struct MomentTerms {
  const bfloat16* x;
  __device__ double channel_value(int64_t ch, int64_t s) const {
    return static_cast<float>(x[ch * s]);
  }
  __device__ void add(int64_t at, double shift, double& u, double& v) const {
    const double d = static_cast<double>(static_cast<float>(x[at])) - shift;
    u += d;
    v += d * d;
  }
};
// Backward: u = dy, v = dy * (x - mean).
struct GradTerms {
  const bfloat16* x;
  const bfloat16* dy;
  const float* save_mean;
  __device__ double channel_value(int64_t ch, int64_t) const { return save_mean[ch]; }
  __device__ void add(int64_t at, double mean, double& u, double& v) const {
    const double g = static_cast<float>(dy[at]);
    u += g;
    v += g * (static_cast<double>(static_cast<float>(x[at])) - mean);
  }
};

// Per chunk of each channel: the sums of u and v in double; partial arrays (c, chunks).
template <class Terms>
__global__ void __launch_bounds__(kChannelBlock)
    chunk_sums_kernel(int64_t n, int64_t c, int64_t s, int64_t chunks, Terms terms, double* part_u,
                      double* part_v) {
  __shared__ double scratch[64];
  const int64_t m = n * s;
  for (int64_t ch = blockIdx.y; ch < c; ch += gridDim.y) {
    const double value = terms.channel_value(ch, s);
    for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
      int64_t begin, end;
      chunk_bounds(m, chunks, chunk, &begin, &end);
      double u = 0.0, v = 0.0;
      ChannelWalk e(begin + threadIdx.x, blockDim.x, s);
      for (int64_t f = begin + threadIdx.x; f < end; f += blockDim.x, e.next(s))
        terms.add(e.index(c, ch, s), value, u, v);
      block_sum2(u, v, scratch);  // every thread of the block gets here
      if (threadIdx.x == 0) {
        part_u[ch * chunks + chunk] = u;
        part_v[ch * chunks + chunk] = v;
      }
    }
  }
}

// Channels-last memory: `rows` = n * s rows of c channels; element (r, ch) at r * c + ch. The
// same partial arrays (c, chunks) as chunk_sums_kernel, each chunk a range of rows: thread ch of
// a block walks its chunk's rows for channel ch (neighbouring threads read neighbouring
// channels, so the loads coalesce), in row order (deterministic).
constexpr int64_t kRowsPerChunk = 256;

int64_t row_chunks_for(int64_t rows) {
  return std::clamp<int64_t>((rows + kRowsPerChunk - 1) / kRowsPerChunk, 1, 1024);
}

dim3 rows_grid(int64_t chunks, int64_t c, int threads) {
  return dim3(static_cast<unsigned>(chunks),
              static_cast<unsigned>(std::min<int64_t>((c + threads - 1) / threads, 65535)));
}

template <class Terms>
__global__ void rows_sums_kernel(int64_t rows, int64_t c, int64_t chunks, Terms terms,
                                 double* part_u, double* part_v) {
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    int64_t begin, end;
    chunk_bounds(rows, chunks, chunk, &begin, &end);
    for (int64_t ch = blockIdx.y * int64_t(blockDim.x) + threadIdx.x; ch < c;
         ch += int64_t(gridDim.y) * blockDim.x) {
      const double value = terms.channel_value(ch, 1);  // row 0's value: x[ch]
      double u = 0.0, v = 0.0;
      for (int64_t r = begin; r < end; ++r) terms.add(r * c + ch, value, u, v);
      part_u[ch * chunks + chunk] = u;
      part_v[ch * chunks + chunk] = v;
    }
  }
}

// Channel ch's total of a partial array, adding its chunks in order (deterministic).
__device__ double sum_chunks(const double* part, int64_t ch, int64_t chunks) {
  double t = 0.0;
  for (int64_t k = 0; k < chunks; ++k) t += part[ch * chunks + k];
  return t;
}

// One thread per channel: the statistics, the running averages and coef = (mean, invstd * w, b)
// as three rows of c floats.
__global__ void bf16_finish_train_kernel(int64_t n, int64_t c, int64_t s, int64_t chunks,
                                         const bfloat16* x, const double* part_sum,
                                         const double* part_sq, const float* w, const float* b,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var, double momentum, double eps,
                                         float* coef) {
  const double m = static_cast<double>(n * s);
  for (int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ch < c;
       ch += int64_t(gridDim.x) * blockDim.x) {
    const bn::Stats st =
        bn::stats_from_sums(sum_chunks(part_sum, ch, chunks), sum_chunks(part_sq, ch, chunks), m,
                            static_cast<float>(x[ch * s]), eps);
    bn::store_stats(st, ch, m, momentum, save_mean, save_invstd, running_mean, running_var);
    coef[ch] = static_cast<float>(st.mean);
    coef[c + ch] = static_cast<float>(st.invstd * static_cast<double>(w[ch]));
    coef[2 * c + ch] = b[ch];
  }
}

// Eval mode: coef = (running mean, w / sqrt(running var + eps), b).
__global__ void bf16_finish_eval_kernel(int64_t c, const float* w, const float* b, const float* rm,
                                        const float* rv, double eps, float* coef) {
  for (int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ch < c;
       ch += int64_t(gridDim.x) * blockDim.x) {
    coef[ch] = rm[ch];
    coef[c + ch] =
        static_cast<float>(static_cast<double>(w[ch]) / sqrt(static_cast<double>(rv[ch]) + eps));
    coef[2 * c + ch] = b[ch];
  }
}

// y = (x - mu) * alpha + beta in float (the subtraction first: no cancellation), rounded once.
// With the epilogue (bn::epilogue): + residual, then ReLU, when asked.
__global__ void bf16_affine_kernel(int64_t planes, int64_t c, int64_t s, const bfloat16* x,
                                   const float* coef, bfloat16* y, const bfloat16* residual,
                                   bool relu) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int64_t ch = p % c;
    const float mu = coef[ch], alpha = coef[c + ch], beta = coef[2 * c + ch];
    const bfloat16* xp = x + p * s;
    bfloat16* yp = y + p * s;
    const bfloat16* rp = residual ? residual + p * s : nullptr;
    for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < s;
         k += int64_t(gridDim.x) * blockDim.x)
      yp[k] = bn::epilogue<bfloat16>((static_cast<float>(xp[k]) - mu) * alpha + beta, rp, k, relu);
  }
}

// bf16_affine_kernel for channels-last memory: element e is in channel e % c.
__global__ void bf16_affine_rows_kernel(int64_t total, int64_t c, const bfloat16* x,
                                        const float* coef, bfloat16* y, const bfloat16* residual,
                                        bool relu) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = e % c;
    y[e] = bn::epilogue<bfloat16>(
        (static_cast<float>(x[e]) - coef[ch]) * coef[c + ch] + coef[2 * c + ch], residual, e, relu);
  }
}

// float32 / float64 after cuDNN: y = y + residual, then ReLU, in place, in one pass.
template <class T>
__global__ void epilogue_kernel(int64_t total, T* y, const T* residual, bool relu) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x)
    y[e] = bn::epilogue<T>(y[e], residual, e, relu);
}

void run_epilogue(cudaStream_t stream, DType dtype, int64_t total, void* y, const void* residual,
                  bool relu) {
  if (!residual && !relu) return;
  if (total == 0) return;
  CUDL_DISPATCH_FLOATING(dtype, "batch_norm epilogue", [&] {
    epilogue_kernel<<<grid_for(total), kBlock, 0, stream>>>(
        total, static_cast<scalar_t*>(y), static_cast<const scalar_t*>(residual), relu);
    CUDL_KERNEL_CHECK();
  });
}

// One thread per channel: dweight, dbias and coef = (k1, k2, k3, mean) with
// dx = k1 * dy + (x - mean) * k2 + k3 = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
__global__ void bf16_finish_grad_kernel(int64_t n, int64_t c, int64_t s, int64_t chunks,
                                        const double* part_dy, const double* part_dy_xc,
                                        const float* w, const float* save_mean,
                                        const float* save_invstd, float* dw, float* db,
                                        float* coef) {
  const double m = static_cast<double>(n * s);
  for (int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ch < c;
       ch += int64_t(gridDim.x) * blockDim.x) {
    const bn::GradCoef gc =
        bn::grad_coefficients(sum_chunks(part_dy, ch, chunks), sum_chunks(part_dy_xc, ch, chunks),
                              static_cast<double>(w[ch]), save_invstd[ch], m);
    db[ch] = static_cast<float>(gc.dbias);
    dw[ch] = static_cast<float>(gc.dweight);
    coef[ch] = static_cast<float>(gc.k1);
    coef[c + ch] = static_cast<float>(gc.k2);
    coef[2 * c + ch] = static_cast<float>(gc.k3);
    coef[3 * c + ch] = save_mean[ch];
  }
}

__global__ void bf16_grad_input_kernel(int64_t planes, int64_t c, int64_t s, const bfloat16* x,
                                       const bfloat16* dy, const float* coef, bfloat16* dx) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int64_t ch = p % c;
    const float a = coef[ch], k2 = coef[c + ch], k3 = coef[2 * c + ch], mu = coef[3 * c + ch];
    const int64_t base = p * s;
    for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < s;
         k += int64_t(gridDim.x) * blockDim.x) {
      const int64_t at = base + k;
      dx[at] =
          bfloat16(a * static_cast<float>(dy[at]) + (static_cast<float>(x[at]) - mu) * k2 + k3);
    }
  }
}

// bf16_grad_input_kernel for channels-last memory: element e is in channel e % c.
__global__ void bf16_grad_input_rows_kernel(int64_t total, int64_t c, const bfloat16* x,
                                            const bfloat16* dy, const float* coef, bfloat16* dx) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = e % c;
    dx[e] =
        bfloat16(coef[ch] * static_cast<float>(dy[e]) +
                 (static_cast<float>(x[e]) - coef[3 * c + ch]) * coef[c + ch] + coef[2 * c + ch]);
  }
}

// The per-channel sums of `terms` into part (2 * c * chunks doubles: u then v), in either
// layout; returns the number of chunks.
template <class Terms>
int64_t channel_sums(cudaStream_t stream, int64_t n, int64_t c, int64_t s, bool channels_last,
                     Terms terms, Tensor& part) {
  const int64_t rows = n * s;
  const int64_t chunks = channels_last ? row_chunks_for(rows) : chunks_for(c, rows);
  part = device_scratch(2 * c * chunks, kFloat64);
  double* ps = part.data<double>();
  if (channels_last) {
    const int threads = static_cast<int>(std::min<int64_t>(kBlock, ((c + 31) / 32) * 32));
    rows_sums_kernel<<<rows_grid(chunks, c, threads), threads, 0, stream>>>(rows, c, chunks, terms,
                                                                            ps, ps + c * chunks);
  } else {
    chunk_sums_kernel<<<stats_grid(chunks, c), kChannelBlock, 0, stream>>>(n, c, s, chunks, terms,
                                                                           ps, ps + c * chunks);
  }
  CUDL_KERNEL_CHECK();
  return chunks;
}

// y = epilogue(affine(x)) with coef = (mu, alpha, beta), in either layout.
void bf16_affine(cudaStream_t stream, int64_t n, int64_t c, int64_t s, bool channels_last,
                 const bfloat16* x, const float* coef, void* y, const void* residual, bool relu) {
  auto* yb = static_cast<bfloat16*>(y);
  const auto* rb = static_cast<const bfloat16*>(residual);
  if (channels_last) {
    bf16_affine_rows_kernel<<<grid_for(n * c * s), kBlock, 0, stream>>>(n * c * s, c, x, coef, yb,
                                                                        rb, relu);
  } else {
    bf16_affine_kernel<<<plane_grid(n * c, s), kBlock, 0, stream>>>(n * c, c, s, x, coef, yb, rb,
                                                                    relu);
  }
  CUDL_KERNEL_CHECK();
}

}  // namespace

void batch_norm_forward_train(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                              const void* x, const void* weight, const void* bias, void* y,
                              void* save_mean, void* save_invstd, void* running_mean,
                              void* running_var, double momentum, double eps, const void* residual,
                              bool relu, bool channels_last) {
  if (dtype == kBFloat16) {
    if (c == 0 || n * s == 0) return;  // the op layer refuses training with M <= 1
    const auto* xb = static_cast<const bfloat16*>(x);
    Tensor part, coef = device_scratch(3 * c, kFloat32);
    const int64_t chunks = channel_sums(stream, n, c, s, channels_last, MomentTerms{xb}, part);
    const double* ps = part.data<double>();
    // The finish kernel reads channel ch's first value at x[ch * s]; channels-last at x[ch].
    bf16_finish_train_kernel<<<grid_for(c), kBlock, 0, stream>>>(
        channels_last ? n * s : n, c, channels_last ? 1 : s, chunks, xb, ps, ps + c * chunks,
        static_cast<const float*>(weight), static_cast<const float*>(bias),
        static_cast<float*>(save_mean), static_cast<float*>(save_invstd),
        static_cast<float*>(running_mean), static_cast<float*>(running_var), momentum, eps,
        coef.data<float>());
    CUDL_KERNEL_CHECK();
    bf16_affine(stream, n, c, s, channels_last, xb, coef.data<float>(), y, residual, relu);
    return;
  }
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s, channels_last);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      h, train_mode(channels_last), k.one(), k.zero(), d.x, x, d.x, y, d.param, weight, bias,
      momentum, running_mean, running_var, eps, save_mean, save_invstd));
  run_epilogue(stream, dtype, n * c * s, y, residual, relu);
}

void batch_norm_forward_eval(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                             const void* x, const void* weight, const void* bias,
                             const void* running_mean, const void* running_var, double eps, void* y,
                             const void* residual, bool relu, bool channels_last) {
  if (c == 0 || n * s == 0) return;  // no elements (cuDNN refuses a descriptor with a 0 size)
  if (dtype == kBFloat16) {
    Tensor coef = device_scratch(3 * c, kFloat32);
    bf16_finish_eval_kernel<<<grid_for(c), kBlock, 0, stream>>>(
        c, static_cast<const float*>(weight), static_cast<const float*>(bias),
        static_cast<const float*>(running_mean), static_cast<const float*>(running_var), eps,
        coef.data<float>());
    CUDL_KERNEL_CHECK();
    bf16_affine(stream, n, c, s, channels_last, static_cast<const bfloat16*>(x), coef.data<float>(),
                y, residual, relu);
    return;
  }
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s, channels_last);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(h, kMode, k.one(), k.zero(), d.x, x, d.x,
                                                           y, d.param, weight, bias, running_mean,
                                                           running_var, eps));
  run_epilogue(stream, dtype, n * c * s, y, residual, relu);
}

void batch_norm_backward_train(cudaStream_t stream, DType dtype, int64_t n, int64_t c, int64_t s,
                               const void* x, const void* dy, const void* weight,
                               const void* save_mean, const void* save_invstd, double eps, void* dx,
                               void* dweight, void* dbias, bool channels_last) {
  if (dtype == kBFloat16) {
    if (c == 0 || n * s == 0) return;  // the op layer refuses training with M <= 1
    const auto* xb = static_cast<const bfloat16*>(x);
    const auto* dyb = static_cast<const bfloat16*>(dy);
    Tensor part, coef = device_scratch(4 * c, kFloat32);
    const int64_t chunks =
        channel_sums(stream, n, c, s, channels_last,
                     GradTerms{xb, dyb, static_cast<const float*>(save_mean)}, part);
    const double* ps = part.data<double>();
    bf16_finish_grad_kernel<<<grid_for(c), kBlock, 0, stream>>>(
        n * s, c, 1, chunks, ps, ps + c * chunks, static_cast<const float*>(weight),
        static_cast<const float*>(save_mean), static_cast<const float*>(save_invstd),
        static_cast<float*>(dweight), static_cast<float*>(dbias), coef.data<float>());
    CUDL_KERNEL_CHECK();
    auto* dxb = static_cast<bfloat16*>(dx);
    if (channels_last) {
      bf16_grad_input_rows_kernel<<<grid_for(n * c * s), kBlock, 0, stream>>>(
          n * c * s, c, xb, dyb, coef.data<float>(), dxb);
    } else {
      bf16_grad_input_kernel<<<plane_grid(n * c, s), kBlock, 0, stream>>>(n * c, c, s, xb, dyb,
                                                                          coef.data<float>(), dxb);
    }
    CUDL_KERNEL_CHECK();
    return;
  }
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  cudnnHandle_t h = handle_on(stream);
  BnDescriptors d(dtype, n, c, s, channels_last);
  const CudnnScalars k(dtype);
  CUDL_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      h, train_mode(channels_last), k.one(), k.zero(), k.one(), k.zero(), d.x, x, d.x, dy, d.x, dx,
      d.param, weight, dweight, dbias, eps, save_mean, save_invstd));
}

void increment_counter(cudaStream_t stream, int64_t* counter) {
  increment_kernel<<<1, 1, 0, stream>>>(counter);
  CUDL_KERNEL_CHECK();
}

}  // namespace cudl::cuda
