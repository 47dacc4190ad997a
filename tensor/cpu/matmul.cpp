// CPU matrix products through OpenBLAS (cblas, row-major); bfloat16 through sgemm (widen.h).
#include <cblas.h>

#include <algorithm>

#include "tensor/cpu/widen.h"
#include "tensor/ops/kernels.h"

namespace cudl::cpu {

namespace {
// Elements spanned by a row-major rows x cols matrix with leading dimension ld.
int64_t extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}
}  // namespace

void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
          int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, void* c,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  if (dtype == kBFloat16) {
    const auto* pa = static_cast<const bfloat16*>(a);
    const auto* pb = static_cast<const bfloat16*>(b);
    auto* pc = static_cast<bfloat16*>(c);
    for (int64_t i = 0; i < batch; ++i) {
      if (m == 0 || n == 0) continue;
      bfloat16* c_i = pc + i * stride_c;
      if (k == 0) {  // an empty sum: zeros
        for (int64_t r = 0; r < m; ++r) std::fill(c_i + r * ldc, c_i + r * ldc + n, bfloat16(0.0f));
        continue;
      }
      const Tensor af = widen(pa + i * stride_a, trans_a ? extent(k, m, lda) : extent(m, k, lda));
      const Tensor bf = widen(pb + i * stride_b, trans_b ? extent(n, k, ldb) : extent(k, n, ldb));
      const Tensor cf = empty({m * n}, TensorOptions(kFloat32));
      const float* c32 = cf.data<float>();
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, af.data<float>(), lda, bf.data<float>(),
                  ldb, 0.0f, cf.data<float>(), n);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) c_i[r * ldc + j] = bfloat16(c32[r * n + j]);
    }
    return;
  }
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
