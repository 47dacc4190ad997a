// Low-level launchers of the core ops, one set per backend with the same arguments (the CUDA
// ones take the stream first). They take raw pointers and sizes; shapes were checked by the
// caller. CUDL_ON_DEVICE picks the backend of a Device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/ops/elementwise_functors.h"
#include "tensor/ops/philox.h"
#include "tensor/ops/strided.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>

#include "tensor/cuda/context.h"
#endif

namespace cudl {

enum class ReduceOp { kSum, kMax };

namespace detail {
[[noreturn]] void throw_no_cuda(const char* what);
}

// (variadic: the CUDA stream argument, "cudaStream_t stream,", holds a comma)
#define CUDL_ELEMENTWISE_KERNELS(...)                                                            \
  /* out = op(in); idx == nullptr when both are contiguous. Index operands: 0 out, 1 in. */     \
  void unary(__VA_ARGS__ UnaryOp op, double s, DType dtype, int64_t n, const void* in,           \
             void* out, const StridedIndex<2>* idx);                                             \
  /* out = op(a, b); idx == nullptr when all three are contiguous of the same shape. */          \
  void binary(__VA_ARGS__ BinaryOp op, double s, DType dtype, int64_t n, const void* a,          \
              const void* b, void* out, const StridedIndex<3>* idx);

#define CUDL_CORE_KERNELS(STREAM_ARG)                                                            \
  CUDL_ELEMENTWISE_KERNELS(STREAM_ARG)                                                           \
  /* dst[idx 0] = src[idx 1], element size in bytes (1, 2, 4 or 8). */                          \
  void copy_strided(STREAM_ARG size_t elem_size, int64_t n, const void* src, void* dst,          \
                    const StridedIndex<2>& idx);                                                 \
  void cast(STREAM_ARG DType from, DType to, int64_t n, const void* src, void* dst);             \
  void fill(STREAM_ARG DType dtype, int64_t n, void* dst, double value);                         \
  /* Element i = value of counter block offset + i / 4, lane i % 4 (see philox.h); plus the    \
     value at offset_base (device memory, CUDA only) when not null: a graph's replay offset. */ \
  void fill_random(STREAM_ARG DType dtype, int64_t n, void* dst, uint64_t seed, uint64_t offset, \
                   const uint64_t* offset_base, philox::Dist dist, double a, double b);         \
  /* Contiguous (outer, r, inner) -> (outer, inner). */                                          \
  void reduce(STREAM_ARG ReduceOp op, DType dtype, const void* in, void* out, int64_t outer,     \
              int64_t r, int64_t inner);                                                         \
  /* Row-major C[b] = op(A[b]) @ op(B[b]) for b < batch, with element strides between batches. */ \
  void gemm(STREAM_ARG DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,  \
            const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb,             \
            int64_t stride_b, void* c, int64_t ldc, int64_t stride_c, int64_t batch);

namespace cpu {
CUDL_CORE_KERNELS()
// The compiled copies of unary and binary that the launchers above call (tensor/cpu/isa.h).
namespace baseline {
CUDL_ELEMENTWISE_KERNELS()
}
namespace avx2 {
CUDL_ELEMENTWISE_KERNELS()
}
}  // namespace cpu

#ifdef CUDL_WITH_CUDA
namespace cuda {
#define CUDL_STREAM_ARG cudaStream_t stream,
CUDL_CORE_KERNELS(CUDL_STREAM_ARG)
#undef CUDL_STREAM_ARG
// Synchronous copy of nbytes between any two devices (host memory may be pageable or pinned).
void memcpy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
}  // namespace cuda
#endif

}  // namespace cudl

// Calls cpu::fn(args...) or, on a CUDA device, cuda::fn(stream, args...) with the device current.
#ifdef CUDL_WITH_CUDA
#define CUDL_ON_DEVICE(dev, fn, ...)                                      \
  do {                                                                    \
    if ((dev).is_cuda()) {                                                \
      ::cudl::cuda::DeviceGuard cudl_guard_((dev).index);                 \
      ::cudl::cuda::fn(::cudl::cuda::stream((dev).index), __VA_ARGS__);   \
    } else {                                                              \
      ::cudl::cpu::fn(__VA_ARGS__);                                       \
    }                                                                     \
  } while (0)
#else
#define CUDL_ON_DEVICE(dev, fn, ...)                                      \
  do {                                                                    \
    if ((dev).is_cuda()) ::cudl::detail::throw_no_cuda(#fn);              \
    ::cudl::cpu::fn(__VA_ARGS__);                                         \
  } while (0)
#endif
