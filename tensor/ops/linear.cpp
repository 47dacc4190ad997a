#include "tensor/ops/linear.h"

#include "tensor/autocast.h"
#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"

namespace cudl {

Tensor linear(const Tensor& x_arg, const Tensor& w_arg, const Tensor& b_arg) {
  // Under autocast, float32 operands run as bfloat16 (autocast.h).
  const Tensor x = autocast_operand(x_arg), weight = autocast_operand(w_arg),
               bias = autocast_operand(b_arg);
  CUDL_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  CUDL_CHECK(weight.dim() == 2, "linear: expected a 2-D weight (out, in), got ",
             shape_str(weight.shape()));
  CUDL_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: weight ",
             shape_str(weight.shape()), " expects input of shape (..., ", weight.size(1), "), got ",
             shape_str(x.shape()));
  check_same_device_dtype("linear (input and weight)", x, weight);
  CUDL_CHECK(isFloating(x.dtype()), "linear: ", toString(x.dtype()),
             " input (float32, float64 or bfloat16 expected)");
  const int64_t in = weight.size(1), out = weight.size(0);
  if (bias.defined()) {
    check_same_device_dtype("linear (input and bias)", x, bias);
    CUDL_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias of shape (", out,
               ",) expected, got ", shape_str(bias.shape()));
  }
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor x2 = x.detach().reshape({-1, in});  // (rows, in)
  Tensor w = weight.detach(), b = bias.defined() ? bias.detach() : Tensor();
  Tensor y;
  {
    NoGradGuard ng;
    y = matmul(x2, w.t());  // w^T is a transposed view: the GEMM reads it as such
    if (b.defined()) add_(y, b);
    y = y.reshape(out_shape);
  }
  if (needs_grad({x, weight, bias})) {
    const bool gx = x.requires_grad(), gw = weight.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    set_grad_fn(y, "LinearBackward", {x, weight, bias},
                [x2 = gw ? x2 : Tensor(), w = gx ? w : Tensor(), in_shape = x.shape(), out, gx, gw,
                 gb](const Tensor& dy) {
                  NoGradGuard ng;
                  Tensor g2 = dy.reshape({-1, out});  // (rows, out)
                  Tensor dx, dw, db;
                  if (gx) dx = matmul(g2, w).reshape(in_shape);
                  if (gw) dw = matmul(g2.t(), x2);
                  if (gb) db = sum(g2, {0});
                  return std::vector<Tensor>{dx, dw, db};
                });
  }
  return y;
}

}  // namespace cudl
