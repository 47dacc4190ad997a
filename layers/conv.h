// Conv2d: a 2-D convolution layer over conv2d() (tensor/ops/conv.h: cuDNN on CUDA, im2col +
// BLAS on the CPU).
//
//   input (N, in_channels, H, W) -> output (N, out_channels, OH, OW)
//   weight (out_channels, in_channels / groups, kH, kW), bias (out_channels,) unless bias(false)
// Initialised like PyTorch's nn.Conv2d: weight kaiming_uniform_(a = sqrt(5)), i.e.
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same range.
#pragma once

#include "layers/module.h"
#include "tensor/ops/conv.h"
#include "tensor/random.h"

namespace cudl {

struct Conv2dOptions {
  Size2 stride_ = 1, padding_ = 0, dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
  Generator* generator_ = nullptr;  // for the initialisation; the default generator when null

  Conv2dOptions& stride(Size2 v) {
    stride_ = v;
    return *this;
  }
  Conv2dOptions& padding(Size2 v) {
    padding_ = v;
    return *this;
  }
  Conv2dOptions& dilation(Size2 v) {
    dilation_ = v;
    return *this;
  }
  Conv2dOptions& groups(int64_t v) {
    groups_ = v;
    return *this;
  }
  Conv2dOptions& bias(bool v) {
    bias_ = v;
    return *this;
  }
  Conv2dOptions& generator(Generator* g) {
    generator_ = g;
    return *this;
  }
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
         const Conv2dOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters(Generator* gen = nullptr);

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  Size2 kernel_size() const { return kernel_; }
  const Conv2dOptions& options() const { return options_; }

  Tensor weight;  // (out_channels, in_channels / groups, kH, kW)
  Tensor bias;    // (out_channels,), undefined without bias

 private:
  int64_t in_channels_, out_channels_;
  Size2 kernel_;
  Conv2dOptions options_;
};

}  // namespace cudl
