#include "layers/linear.h"

#include <cmath>

#include "layers/init.h"
#include "layers/repr.h"
#include "tensor/ops/linear.h"

namespace cudl {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias_on, Generator* gen)
    : Module("Linear"), in_(in_features), out_(out_features) {
  CUDL_CHECK(in_features > 0 && out_features > 0,
             "Linear: in_features and out_features must be positive, got ", in_features, " and ",
             out_features);
  weight = register_parameter("weight", empty({out_features, in_features}));
  if (bias_on) bias = register_parameter("bias", empty({out_features}));
  reset_parameters(gen);
}

void Linear::reset_parameters(Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::kFanIn, "leaky_relu", gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    init::uniform_(bias, -bound, bound, gen);
  }
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + repr::py_bool(bias.defined());
}

Tensor Linear::forward(const Tensor& x) {
  const std::string expected = "(*, " + std::to_string(in_) + ")";
  CUDL_MODULE_CHECK(x.defined(), "expected input ", expected, ", got an undefined tensor");
  CUDL_MODULE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "expected input ", expected, ", got ",
                    shape_str(x.shape()));
  check_placement(x, expected);
  return run_op([&] { return linear(x, weight, bias); });
}

}  // namespace cudl
