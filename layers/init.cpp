#include "layers/init.h"

#include <cmath>

#include "tensor/autograd.h"

namespace cudl::init {

Fans calculate_fans(const Tensor& t) {
  CUDL_CHECK(t.defined() && t.dim() >= 2,
             "init: fan in/out need a tensor with at least 2 dims, got ",
             t.defined() ? shape_str(t.shape()) : std::string("an undefined tensor"));
  int64_t field = 1;
  for (int64_t d = 2; d < t.dim(); ++d) field *= t.size(static_cast<int>(d));
  return {t.size(1) * field, t.size(0) * field};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv2d" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  CUDL_THROW("init: unknown nonlinearity '", nonlinearity,
             "' (linear, conv2d, sigmoid, relu, leaky_relu or tanh)");
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  const Fans f = calculate_fans(t);
  const int64_t fan = mode == FanMode::kFanIn ? f.fan_in : f.fan_out;
  CUDL_CHECK(fan > 0, "init: zero fan for a tensor of shape ", shape_str(t.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}

// Parameters are leaves that require grad: fill them under NoGradGuard (the in-place rule).
template <class F>
Tensor& fill_no_grad(Tensor& t, F&& f) {
  NoGradGuard ng;
  f();
  return t;
}
}  // namespace

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                         Generator* gen) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  return init::uniform_(t, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                        Generator* gen) {
  return init::normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity), gen);
}

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) {
  return fill_no_grad(t, [&] { cudl::uniform_(t, low, high, gen); });
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  return fill_no_grad(t, [&] { cudl::normal_(t, mean, std, gen); });
}

Tensor& constant_(Tensor& t, double value) {
  return fill_no_grad(t, [&] { t.fill_(value); });
}

}  // namespace cudl::init
