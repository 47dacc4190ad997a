// CPU matrix products through OpenBLAS (cblas, row-major).
#include <cblas.h>

#include "tensor/ops/kernels.h"

namespace cudl::cpu {

void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
          int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < batch; ++i) {
    if (dtype == kFloat32) {
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, static_cast<const float*>(a) + i * stride_a,
                  lda, static_cast<const float*>(b) + i * stride_b, ldb, 0.0f,
                  static_cast<float*>(c) + i * stride_c, ldc);
    } else if (dtype == kFloat64) {
      cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, static_cast<const double*>(a) + i * stride_a,
                  lda, static_cast<const double*>(b) + i * stride_b, ldb, 0.0,
                  static_cast<double*>(c) + i * stride_c, ldc);
    } else {
      CUDL_THROW("matmul: dtype ", toString(dtype), " not supported (float32 or float64)");
    }
  }
}

}  // namespace cudl::cpu
