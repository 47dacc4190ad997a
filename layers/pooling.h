// Pooling layers over tensor/ops/pool.h.
//   MaxPool2d(kernel, stride = kernel, padding = 0, dilation = 1): (N, C, H, W) -> (N, C, OH, OW)
//   AdaptiveAvgPool2d(1), AdaptiveMaxPool2d(1): (N, C, H, W) -> (N, C, 1, 1); only output size 1
//     (global pooling) is implemented, which is all ResNet and the fastai head use.
//   AdaptiveConcatPool2d(1) (fastai): cat([max-pool, avg-pool], dim 1): (N, C, H, W) ->
//     (N, 2C, 1, 1), the max-pooled channels FIRST. Its children are named "ap" and "mp" in
//     that order, as fastai registers them (no parameters, so the state dict is unaffected).
#pragma once

#include <memory>
#include <optional>

#include "layers/module.h"
#include "tensor/ops/conv_geometry.h"

namespace cudl {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                     Size2 padding = 0, Size2 dilation = 1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  Size2 kernel_, stride_, padding_, dilation_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size = 1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override { return "output_size=1"; }
};

class AdaptiveMaxPool2d : public Module {
 public:
  explicit AdaptiveMaxPool2d(int64_t output_size = 1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override { return "output_size=1"; }
};

class AdaptiveConcatPool2d : public Module {
 public:
  explicit AdaptiveConcatPool2d(int64_t output_size = 1);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<AdaptiveAvgPool2d> ap;
  std::shared_ptr<AdaptiveMaxPool2d> mp;
};

}  // namespace cudl
