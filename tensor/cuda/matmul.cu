// Matrix products through cuBLAS. cuBLAS is column-major, so the row-major product
// C = op(A) @ op(B) is computed as C^T = op(B)^T @ op(A)^T, which needs no copies.
// bfloat16: cublasGemmStridedBatchedEx with bf16 A, B and C, float accumulation
// (CUBLAS_COMPUTE_32F) and float alpha/beta; reductions across split-K slices are kept in float
// too (the handle's math mode has CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION, set when it
// is created), so every result is rounded to bfloat16 once, as on the CPU (float GEMM, then one
// rounding).
#include <cstdint>

#include "tensor/cuda/check.h"
#include "tensor/ops/kernels.h"

namespace cudl::cuda {

void gemm(cudaStream_t stream, DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb,
          int64_t stride_b, void* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  // cuBLAS's classic entry points take 32-bit sizes.
  for (int64_t v : {m, n, k, lda, ldb, ldc, batch})
    CUDL_CHECK(v <= INT32_MAX, "matmul: size ", v, " exceeds cuBLAS's 32-bit limit");
  int device = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&device));
  cublasHandle_t h = cublas_handle_on(device, stream);
  const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (dtype == kFloat32) {
    const float alpha = 1.0f, beta = 0.0f;
    CUDL_CUBLAS_CHECK(cublasSgemmStridedBatched(
        h, tb, ta, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
        static_cast<const float*>(b), static_cast<int>(ldb), stride_b, static_cast<const float*>(a),
        static_cast<int>(lda), stride_a, &beta, static_cast<float*>(c), static_cast<int>(ldc),
        stride_c, static_cast<int>(batch)));
  } else if (dtype == kFloat64) {
    const double alpha = 1.0, beta = 0.0;
    CUDL_CUBLAS_CHECK(cublasDgemmStridedBatched(
        h, tb, ta, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
        static_cast<const double*>(b), static_cast<int>(ldb), stride_b,
        static_cast<const double*>(a), static_cast<int>(lda), stride_a, &beta,
        static_cast<double*>(c), static_cast<int>(ldc), stride_c, static_cast<int>(batch)));
  } else if (dtype == kBFloat16) {
    const float alpha = 1.0f, beta = 0.0f;
    CUDL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, tb, ta, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b,
        CUDA_R_16BF, static_cast<int>(ldb), stride_b, a, CUDA_R_16BF, static_cast<int>(lda),
        stride_a, &beta, c, CUDA_R_16BF, static_cast<int>(ldc), stride_c, static_cast<int>(batch),
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    CUDL_THROW("matmul: dtype ", toString(dtype), " not supported (float32, float64 or bfloat16)");
  }
}

}  // namespace cudl::cuda
