// Elementwise ops with NumPy broadcasting and autograd.
//
//   add(a, b) = a + b        d/da = g, d/db = g            (summed over broadcast dims)
//   sub(a, b) = a - b        d/da = g, d/db = -g
//   mul(a, b) = a * b        d/da = g*b, d/db = g*a
//   div(a, b) = a / b        d/da = g/b, d/db = -g*a/b^2
//   neg(x) = -x              d/dx = -g
//   exp(x) = e^x             d/dx = g*exp(x)
//   log(x) = ln x            d/dx = g/x
//   sigmoid(x) = 1/(1+e^-x)  d/dx = g*y*(1-y)            (stable for any x)
//   relu(x) = max(x, 0)      d/dx = g where x > 0, else 0 (0 at x == 0, as PyTorch; NaN
//                            stays NaN and passes g, as PyTorch's)
//   pow(x, p) = x^p          d/dx = g*p*x^(p-1)          (scalar exponent)
//   sqrt(x), abs(x)
// Inputs must share dtype and device; the output is a new contiguous tensor.
// The formulas themselves live in elementwise_functors.h, shared by the CPU and CUDA loops.
#pragma once

#include "tensor/ops/elementwise_functors.h"
#include "tensor/tensor.h"

namespace cudl {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor pow(const Tensor& x, double p);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);  // d/dx = g*sign(x)
Tensor maximum(const Tensor& a, const Tensor& b);  // not differentiable
Tensor eq(const Tensor& a, const Tensor& b);       // 1/0 in the inputs' dtype; not differentiable
Tensor gt(const Tensor& a, const Tensor& b);       // 1/0; not differentiable

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// In-place, not recorded by autograd (optimisers, gradient accumulation). `other` broadcasts
// to self's shape.
Tensor& add_(Tensor& self, const Tensor& other);
Tensor& mul_(Tensor& self, double s);
Tensor& mul_(Tensor& self, const Tensor& other);

// Low-level: out = op(x) / op(a, b) without autograd, for ops' own backward formulas.
Tensor unary_op(UnaryOp op, const Tensor& x, double s = 0.0);
Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b, double s = 0.0);

}  // namespace cudl
