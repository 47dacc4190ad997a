#include "tensor/ops/dropout.h"

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"

namespace cudl {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  CUDL_CHECK(x.defined(), "dropout: undefined input");
  CUDL_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability must be in [0, 1], got ", p);
  CUDL_CHECK(isFloating(x.dtype()), "dropout: ", toString(x.dtype()),
             " input (float32, float64 or bfloat16 expected)");
  if (!training || p == 0.0) return x;
  // mask = Bernoulli(1 - p) / (1 - p); with p == 1 every element is dropped (scale 0, not inf).
  Tensor mask = empty(x.shape(), TensorOptions(x.dtype()).device(x.device()));
  bernoulli_(mask, 1.0 - p, gen);
  mul_(mask, p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
  Tensor y = binary_op(BinaryOp::kMul, x, mask);
  if (needs_grad({x})) {
    set_grad_fn(y, "DropoutBackward", {x}, [mask](const Tensor& g) {
      return std::vector<Tensor>{binary_op(BinaryOp::kMul, g, mask)};
    });
  }
  return y;
}

}  // namespace cudl
