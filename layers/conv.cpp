#include "layers/conv.h"

#include <cmath>

#include "layers/init.h"
#include "layers/repr.h"

namespace cudl {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
               const Conv2dOptions& options)
    : Module("Conv2d"),
      in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_(kernel_size),
      options_(options) {
  const int64_t g = options.groups_;
  CUDL_CHECK(in_channels > 0 && out_channels > 0 && kernel_size.h > 0 && kernel_size.w > 0,
             "Conv2d: channels and kernel size must be positive, got in ", in_channels, ", out ",
             out_channels, ", kernel ", repr::tuple(kernel_size));
  CUDL_CHECK(g >= 1 && in_channels % g == 0 && out_channels % g == 0, "Conv2d: groups=", g,
             " must divide in_channels=", in_channels, " and out_channels=", out_channels);
  weight = register_parameter("weight",
                              empty({out_channels, in_channels / g, kernel_size.h, kernel_size.w}));
  if (options.bias_) bias = register_parameter("bias", empty({out_channels}));
  reset_parameters(options.generator_);
}

void Conv2d::reset_parameters(Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::kFanIn, "leaky_relu", gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::calculate_fans(weight).fan_in));
    init::uniform_(bias, -bound, bound, gen);
  }
}

std::string Conv2d::extra_repr() const {
  std::string s = std::to_string(in_channels_) + ", " + std::to_string(out_channels_) +
                  ", kernel_size=" + repr::tuple(kernel_) +
                  ", stride=" + repr::tuple(options_.stride_);
  if (options_.padding_ != Size2(0)) s += ", padding=" + repr::tuple(options_.padding_);
  if (options_.dilation_ != Size2(1)) s += ", dilation=" + repr::tuple(options_.dilation_);
  if (options_.groups_ != 1) s += ", groups=" + std::to_string(options_.groups_);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

Tensor Conv2d::forward(const Tensor& x) {
  check_input(x, {4}, in_channels_, "(N, " + std::to_string(in_channels_) + ", H, W)");
  return run_op([&] {
    return conv2d(x, weight, bias, options_.stride_, options_.padding_, options_.dilation_,
                  options_.groups_);
  });
}

}  // namespace cudl
