#include "tensor/ops/matmul.h"

#include "tensor/autograd.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace {

// How a (rows, cols) matrix view is handed to a row-major GEMM.
struct MatrixArg {
  Tensor t;  // the tensor whose memory is read (may be a contiguous copy)
  bool trans = false;
  int64_t ld = 0;
};

// Accepts row-major (unit column stride) and column-major (a transposed view) layouts;
// anything else is copied.
MatrixArg matrix_arg(const Tensor& t, int64_t row_stride, int64_t col_stride, int64_t rows,
                     int64_t cols) {
  // The stride of a dimension of size 1 is never used (and may be anything, even 0 after an
  // expand): give it the value that makes the other dimension's layout acceptable.
  if (rows == 1) row_stride = col_stride == 1 ? std::max<int64_t>(cols, 1) : 1;
  if (cols == 1) col_stride = row_stride == 1 ? std::max<int64_t>(rows, 1) : 1;
  if (col_stride == 1 && row_stride >= std::max<int64_t>(cols, 1)) return {t, false, row_stride};
  if (row_stride == 1 && col_stride >= std::max<int64_t>(rows, 1)) return {t, true, col_stride};
  return {};
}

// C = A @ B for A (batch, m, k) viewed with batch stride (0 = shared), no autograd.
Tensor gemm_raw(const Tensor& a_in, const Tensor& b_in, bool a_batched, bool b_batched, int64_t batch) {
  Tensor a = a_in, b = b_in;
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  // Any batch stride works for strided-batched GEMM; only the matrix layout matters.
  auto arg = [](Tensor& t) {
    int64_t rows = t.size(-2), cols = t.size(-1);
    MatrixArg r = matrix_arg(t, t.stride(-2), t.stride(-1), rows, cols);
    if (!r.t.defined()) {
      t = t.contiguous();
      r = matrix_arg(t, t.stride(-2), t.stride(-1), rows, cols);
    }
    r.t = t;
    return r;
  };
  MatrixArg A = arg(a), B = arg(b);
  Shape out_shape = a_batched || b_batched ? Shape{batch, m, n} : Shape{m, n};
  Tensor c = empty(out_shape, TensorOptions(a.dtype()).device(a.device()));
  const int64_t sa = a_batched ? A.t.stride(0) : 0;
  const int64_t sb = b_batched ? B.t.stride(0) : 0;
  if (k == 0) {
    c.fill_(0.0);
    return c;
  }
  CUDL_ON_DEVICE(a.device(), gemm, a.dtype(), A.trans, B.trans, m, n, k, A.t.data_ptr(), A.ld, sa,
                 B.t.data_ptr(), B.ld, sb, c.data_ptr(), n, m * n, batch);
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device_dtype("matmul", a, b);
  CUDL_CHECK(isFloating(a.dtype()), "matmul: ", toString(a.dtype()), " not supported");
  CUDL_CHECK((a.dim() == 2 || a.dim() == 3) && (b.dim() == 2 || b.dim() == 3),
             "matmul: expected 2-D or 3-D operands, got ", shape_str(a.shape()), " and ",
             shape_str(b.shape()));
  CUDL_CHECK(!(a.dim() == 2 && b.dim() == 3), "matmul: (m,k)@(B,k,n) is not supported; got ",
             shape_str(a.shape()), " @ ", shape_str(b.shape()));
  CUDL_CHECK(a.size(-1) == b.size(-2), "matmul: inner dimensions differ: ", shape_str(a.shape()),
             " @ ", shape_str(b.shape()));
  const bool batched = a.dim() == 3;
  const int64_t batch = batched ? a.size(0) : 1;
  if (b.dim() == 3) {
    CUDL_CHECK(b.size(0) == batch, "matmul: batch sizes differ: ", shape_str(a.shape()), " @ ",
               shape_str(b.shape()));
  }
  Tensor out;
  if (batched && b.dim() == 2 && a.is_contiguous()) {
    // (B,m,k)@(k,n) is one (B*m,k)@(k,n) product.
    out = gemm_raw(a.detach().reshape({batch * a.size(1), a.size(2)}), b, false, false, 1)
              .reshape({batch, a.size(1), b.size(1)});
  } else {
    out = gemm_raw(a, b, batched, b.dim() == 3, batch);
  }
  if (needs_grad({a, b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    set_grad_fn(out, "MatmulBackward", {a, b},
                [ad = a.detach(), bd = b.detach(), ga, gb](const Tensor& g) {
                  Tensor da, db;
                  const int nd = static_cast<int>(ad.dim());
                  if (ga) da = matmul(g, bd.transpose(-1, -2));
                  if (gb) {
                    if (ad.dim() == 3 && bd.dim() == 2) {
                      // Shared b: sum over the batch = one (k, B*m) @ (B*m, n) product.
                      Tensor a2 = ad.reshape({-1, ad.size(-1)});
                      Tensor g2 = g.reshape({-1, g.size(-1)});
                      db = matmul(a2.transpose(0, 1), g2);
                    } else {
                      db = matmul(ad.transpose(nd - 1, nd - 2), g);
                    }
                  }
                  return std::vector<Tensor>{da, db};
                });
  }
  return out;
}

}  // namespace cudl
