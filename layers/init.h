// Parameter initialisation (PyTorch's torch.nn.init), in place and outside autograd.
//
// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field, where the receptive
// field is the product of the dims after the first two (1 for a Linear weight).
//   kaiming_uniform_(t, a, mode, nonlinearity): U(-bound, bound), bound = gain * sqrt(3 / fan)
//   kaiming_normal_(t, a, mode, nonlinearity):  N(0, std^2), std = gain / sqrt(fan)
//   gain = sqrt(2) for "relu", sqrt(2 / (1 + a^2)) for "leaky_relu", 1 for "linear"
// PyTorch's default Conv2d/Linear init is kaiming_uniform_(w, a = sqrt(5)) (bound 1/sqrt(fan_in))
// and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; torchvision's ResNet uses
// kaiming_normal_(w, mode fan_out, relu). Random numbers come from `gen` (the default generator
// when null), the same on every device for one seed.
#pragma once

#include <string>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace cudl::init {

enum class FanMode { kFanIn, kFanOut };

struct Fans {
  int64_t fan_in, fan_out;
};
Fans calculate_fans(const Tensor& t);  // needs at least 2 dims
double calculate_gain(const std::string& nonlinearity, double param = 0.0);

Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::kFanIn,
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::kFanIn,
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor& uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);
Tensor& constant_(Tensor& t, double value);
inline Tensor& zeros_(Tensor& t) {
  return constant_(t, 0.0);
}
inline Tensor& ones_(Tensor& t) {
  return constant_(t, 1.0);
}

}  // namespace cudl::init
