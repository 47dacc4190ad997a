// The elementwise ops as functors, used by both backends. visit_unary/visit_binary turn the
// op enum into the functor once, outside the loop, so each loop is compiled per functor.
#pragma once

#include "tensor/error.h"
#include "tensor/ops/math.h"

namespace cudl {

enum class UnaryOp {
  kNeg, kExp, kLog, kSigmoid, kRelu, kSqrt, kAbs,
  kAddScalar,   // x + s
  kMulScalar,   // x * s
  kPowScalar,   // x ^ s
  kRsubScalar,  // s - x
  kRdivScalar,  // s / x
};

enum class BinaryOp {
  kAdd, kSub, kMul, kDiv,
  kMaximum, kMinimum,
  kEq, kGt,            // 1 where true, 0 elsewhere (same dtype as the inputs)
  kSigmoidBackward,    // (g, y) -> g * y * (1 - y), y = sigmoid(x)
  kReluBackward,       // (g, x) -> x <= 0 ? 0 : g (NaN x passes g, as PyTorch)
  kPowBackward,        // (g, x) -> g * s * x^(s-1)
};

namespace fn {
#define CUDL_UNARY(Name, expr)                                 \
  struct Name {                                                \
    double s;                                                  \
    template <class T>                                         \
    CUDL_HOST_DEVICE_INLINE T operator()(T x) const { return expr; } \
  };
CUDL_UNARY(Neg, -x)
CUDL_UNARY(Exp, math::exp(x))
CUDL_UNARY(Log, math::log(x))
CUDL_UNARY(Sigmoid, math::sigmoid(x))
CUDL_UNARY(Relu, x <= T(0) ? T(0) : x)  // NaN stays NaN, as PyTorch's
CUDL_UNARY(Sqrt, math::sqrt(x))
CUDL_UNARY(Abs, math::abs(x))
CUDL_UNARY(AddScalar, x + T(s))
CUDL_UNARY(MulScalar, x * T(s))
CUDL_UNARY(PowScalar, s == 2.0 ? x * x : math::pow(x, T(s)))
CUDL_UNARY(RsubScalar, T(s) - x)
CUDL_UNARY(RdivScalar, T(s) / x)
#undef CUDL_UNARY

#define CUDL_BINARY(Name, expr)                                        \
  struct Name {                                                        \
    double s;                                                          \
    template <class T>                                                 \
    CUDL_HOST_DEVICE_INLINE T operator()(T a, T b) const { return expr; } \
  };
CUDL_BINARY(Add, a + b)
CUDL_BINARY(Sub, a - b)
CUDL_BINARY(Mul, a * b)
CUDL_BINARY(Div, a / b)
CUDL_BINARY(Maximum, a > b ? a : b)
CUDL_BINARY(Minimum, a < b ? a : b)
CUDL_BINARY(Eq, a == b ? T(1) : T(0))
CUDL_BINARY(Gt, a > b ? T(1) : T(0))
CUDL_BINARY(SigmoidBackward, a * b * (T(1) - b))
CUDL_BINARY(ReluBackward, b <= T(0) ? T(0) : a)
CUDL_BINARY(PowBackward, s == 2.0 ? a * T(2) * b : a * T(s) * math::pow(b, T(s - 1.0)))
#undef CUDL_BINARY
}  // namespace fn

template <class Visitor>
void visit_unary(UnaryOp op, double s, Visitor&& v) {
  switch (op) {
    case UnaryOp::kNeg: return v(fn::Neg{s});
    case UnaryOp::kExp: return v(fn::Exp{s});
    case UnaryOp::kLog: return v(fn::Log{s});
    case UnaryOp::kSigmoid: return v(fn::Sigmoid{s});
    case UnaryOp::kRelu: return v(fn::Relu{s});
    case UnaryOp::kSqrt: return v(fn::Sqrt{s});
    case UnaryOp::kAbs: return v(fn::Abs{s});
    case UnaryOp::kAddScalar: return v(fn::AddScalar{s});
    case UnaryOp::kMulScalar: return v(fn::MulScalar{s});
    case UnaryOp::kPowScalar: return v(fn::PowScalar{s});
    case UnaryOp::kRsubScalar: return v(fn::RsubScalar{s});
    case UnaryOp::kRdivScalar: return v(fn::RdivScalar{s});
  }
  CUDL_THROW("unknown unary op ", static_cast<int>(op));
}

template <class Visitor>
void visit_binary(BinaryOp op, double s, Visitor&& v) {
  switch (op) {
    case BinaryOp::kAdd: return v(fn::Add{s});
    case BinaryOp::kSub: return v(fn::Sub{s});
    case BinaryOp::kMul: return v(fn::Mul{s});
    case BinaryOp::kDiv: return v(fn::Div{s});
    case BinaryOp::kMaximum: return v(fn::Maximum{s});
    case BinaryOp::kMinimum: return v(fn::Minimum{s});
    case BinaryOp::kEq: return v(fn::Eq{s});
    case BinaryOp::kGt: return v(fn::Gt{s});
    case BinaryOp::kSigmoidBackward: return v(fn::SigmoidBackward{s});
    case BinaryOp::kReluBackward: return v(fn::ReluBackward{s});
    case BinaryOp::kPowBackward: return v(fn::PowBackward{s});
  }
  CUDL_THROW("unknown binary op ", static_cast<int>(op));
}

}  // namespace cudl
