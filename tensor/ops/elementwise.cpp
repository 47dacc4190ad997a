#include "tensor/ops/elementwise.h"

#include "tensor/autograd.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace {

// out (already allocated with the broadcast shape) = op(a, b).
void binary_into(BinaryOp op, double s, Tensor& out, const Tensor& a, const Tensor& b) {
  const Shape& shape = out.shape();
  const int64_t n = out.numel();
  if (n == 0) return;
  // One flat pass when the three share one dense layout (row-major, channels-last, ...).
  if (a.shape() == shape && b.shape() == shape && a.strides() == out.strides() &&
      b.strides() == out.strides() && out.is_dense()) {
    CUDL_ON_DEVICE(out.device(), binary, op, s, out.dtype(), n, a.data_ptr(), b.data_ptr(),
                   out.data_ptr(), nullptr);
    return;
  }
  auto bstrides = [&](const Tensor& t) {
    Shape st(shape.size(), 0);
    size_t lead = shape.size() - t.shape().size();
    for (size_t i = 0; i < t.shape().size(); ++i)
      st[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
    return st;
  };
  Shape sa = bstrides(a), sb = bstrides(b);
  auto idx = make_strided_index<3>(shape, {&out.strides(), &sa, &sb});
  CUDL_ON_DEVICE(out.device(), binary, op, s, out.dtype(), n, a.data_ptr(), b.data_ptr(),
                 out.data_ptr(), &idx);
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "add";
    case BinaryOp::kSub: return "sub";
    case BinaryOp::kMul: return "mul";
    case BinaryOp::kDiv: return "div";
    default: return "elementwise op";
  }
}

}  // namespace

Tensor unary_op(UnaryOp op, const Tensor& x, double s) {
  CUDL_CHECK(x.defined(), "elementwise op on an undefined tensor");
  CUDL_CHECK(isFloating(x.dtype()), "elementwise op on a ", toString(x.dtype()),
             " tensor (float32, float64 or bfloat16 expected)");
  // The result keeps x's layout when x is dense (as PyTorch's preserve_format).
  Tensor out = empty_like(x, MemoryFormat::kPreserve);
  if (x.numel() == 0) return out;
  if (x.is_dense()) {
    CUDL_ON_DEVICE(x.device(), unary, op, s, x.dtype(), x.numel(), x.data_ptr(), out.data_ptr(), nullptr);
  } else {
    auto idx = make_strided_index<2>(x.shape(), {&out.strides(), &x.strides()});
    CUDL_ON_DEVICE(x.device(), unary, op, s, x.dtype(), x.numel(), x.data_ptr(), out.data_ptr(), &idx);
  }
  return out;
}

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b, double s) {
  check_same_device_dtype(binary_name(op), a, b);
  CUDL_CHECK(isFloating(a.dtype()), binary_name(op), " on ", toString(a.dtype()),
             " tensors (float32, float64 or bfloat16 expected)");
  // Operands of one shape and one dense layout give a result in that layout; anything else
  // (broadcasting, mixed layouts) a row-major one.
  Tensor out = a.shape() == b.shape() && a.strides() == b.strides() && a.is_dense()
                   ? empty_like(a, MemoryFormat::kPreserve)
                   : empty(broadcast_shapes(a.shape(), b.shape()),
                           TensorOptions(a.dtype()).device(a.device()));
  binary_into(op, s, out, a, b);
  return out;
}

Tensor& add_(Tensor& self, const Tensor& other) {
  check_same_device_dtype("add_", self, other);
  CUDL_CHECK(broadcast_shapes(self.shape(), other.shape()) == self.shape(), "add_: ",
             shape_str(other.shape()), " does not broadcast to ", shape_str(self.shape()));
  binary_into(BinaryOp::kAdd, 0.0, self, self, other);
  return self;
}

Tensor& mul_(Tensor& self, const Tensor& other) {
  check_same_device_dtype("mul_", self, other);
  CUDL_CHECK(broadcast_shapes(self.shape(), other.shape()) == self.shape(), "mul_: ",
             shape_str(other.shape()), " does not broadcast to ", shape_str(self.shape()));
  binary_into(BinaryOp::kMul, 0.0, self, self, other);
  return self;
}

Tensor& mul_(Tensor& self, double s) {
  if (self.numel() == 0) return self;
  if (self.is_dense()) {
    CUDL_ON_DEVICE(self.device(), unary, UnaryOp::kMulScalar, s, self.dtype(), self.numel(),
                   self.data_ptr(), self.data_ptr(), nullptr);
  } else {
    auto idx = make_strided_index<2>(self.shape(), {&self.strides(), &self.strides()});
    CUDL_ON_DEVICE(self.device(), unary, UnaryOp::kMulScalar, s, self.dtype(), self.numel(),
                   self.data_ptr(), self.data_ptr(), &idx);
  }
  return self;
}

// ---- differentiable binary ops ----

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::kAdd, a, b);
  if (needs_grad({a, b})) {
    set_grad_fn(out, "AddBackward", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::kSub, a, b);
  if (needs_grad({a, b})) {
    set_grad_fn(out, "SubBackward", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::kMul, a, b);
  if (needs_grad({a, b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    set_grad_fn(out, "MulBackward", {a, b},
                [ad = a.detach(), bd = b.detach(), ga, gb](const Tensor& g) {
                  return std::vector<Tensor>{ga ? sum_to(g * bd, ad.shape()) : Tensor(),
                                             gb ? sum_to(g * ad, bd.shape()) : Tensor()};
                });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_op(BinaryOp::kDiv, a, b);
  if (needs_grad({a, b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    set_grad_fn(out, "DivBackward", {a, b},
                [ad = a.detach(), bd = b.detach(), ga, gb](const Tensor& g) {
                  Tensor gdb = g / bd;
                  return std::vector<Tensor>{
                      ga ? sum_to(gdb, ad.shape()) : Tensor(),
                      gb ? sum_to(neg(gdb * ad / bd), bd.shape()) : Tensor()};
                });
  }
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kMaximum, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kEq, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kGt, a, b); }

// ---- differentiable unary ops ----

Tensor add(const Tensor& a, double s) {
  Tensor out = unary_op(UnaryOp::kAddScalar, a, s);
  if (needs_grad({a})) set_grad_fn(out, "AddScalarBackward", {a}, [](const Tensor& g) {
      return std::vector<Tensor>{g};
    });
  return out;
}

Tensor mul(const Tensor& a, double s) {
  Tensor out = unary_op(UnaryOp::kMulScalar, a, s);
  if (needs_grad({a})) set_grad_fn(out, "MulScalarBackward", {a}, [s](const Tensor& g) {
      return std::vector<Tensor>{g * s};
    });
  return out;
}

Tensor rsub(double s, const Tensor& a) {
  Tensor out = unary_op(UnaryOp::kRsubScalar, a, s);
  if (needs_grad({a})) set_grad_fn(out, "RsubBackward", {a}, [](const Tensor& g) {
      return std::vector<Tensor>{neg(g)};
    });
  return out;
}

Tensor rdiv(double s, const Tensor& a) {
  Tensor out = unary_op(UnaryOp::kRdivScalar, a, s);
  if (needs_grad({a})) {
    set_grad_fn(out, "RdivBackward", {a}, [s, ad = a.detach()](const Tensor& g) {
      return std::vector<Tensor>{neg(g * s) / (ad * ad)};
    });
  }
  return out;
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kNeg, x);
  if (needs_grad({x})) set_grad_fn(out, "NegBackward", {x}, [](const Tensor& g) {
      return std::vector<Tensor>{neg(g)};
    });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kExp, x);
  if (needs_grad({x})) set_grad_fn(out, "ExpBackward", {x}, [y = out.detach()](const Tensor& g) {
      return std::vector<Tensor>{g * y};
    });
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kLog, x);
  if (needs_grad({x})) set_grad_fn(out, "LogBackward", {x}, [xd = x.detach()](const Tensor& g) {
      return std::vector<Tensor>{g / xd};
    });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kSigmoid, x);
  if (needs_grad({x})) set_grad_fn(out, "SigmoidBackward", {x}, [y = out.detach()](const Tensor& g) {
      return std::vector<Tensor>{binary_op(BinaryOp::kSigmoidBackward, g, y)};
    });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kRelu, x);
  // relu(x) > 0 exactly where x > 0, so the output is enough to mask the gradient.
  if (needs_grad({x})) set_grad_fn(out, "ReluBackward", {x}, [y = out.detach()](const Tensor& g) {
      return std::vector<Tensor>{binary_op(BinaryOp::kReluBackward, g, y)};
    });
  return out;
}

Tensor pow(const Tensor& x, double p) {
  Tensor out = unary_op(UnaryOp::kPowScalar, x, p);
  if (needs_grad({x})) set_grad_fn(out, "PowBackward", {x}, [p, xd = x.detach()](const Tensor& g) {
      return std::vector<Tensor>{binary_op(BinaryOp::kPowBackward, g, xd, p)};
    });
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kSqrt, x);
  if (needs_grad({x})) set_grad_fn(out, "SqrtBackward", {x}, [y = out.detach()](const Tensor& g) {
      return std::vector<Tensor>{g / (y * 2.0)};
    });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_op(UnaryOp::kAbs, x);
  if (needs_grad({x})) set_grad_fn(out, "AbsBackward", {x}, [xd = x.detach(), y = out.detach()](const Tensor& g) {
      // sign(x) = x / |x|, 0 at 0 (as PyTorch).
      Tensor nz = gt(y, zeros({}, TensorOptions(y.dtype()).device(y.device())));
      return std::vector<Tensor>{g * (xd * nz) / (y + (1.0 - nz))};
    });
  return out;
}

}  // namespace cudl
