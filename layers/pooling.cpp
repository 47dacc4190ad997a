#include "layers/pooling.h"

#include "layers/repr.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/shape.h"

namespace cudl {

namespace {
void check_output_size(const char* type, int64_t output_size) {
  CUDL_CHECK(output_size == 1, type, "(output_size=", output_size,
             "): only output_size=1 (global pooling) is implemented");
}
const char* const kAnyImage = "(N, C, H, W)";
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, Size2 dilation)
    : Module("MaxPool2d"),
      kernel_(kernel_size),
      stride_(stride ? *stride : kernel_size),
      padding_(padding),
      dilation_(dilation) {
  CUDL_CHECK(kernel_.h > 0 && kernel_.w > 0 && stride_.h > 0 && stride_.w > 0,
             "MaxPool2d: kernel size and stride must be positive, got kernel ",
             repr::tuple(kernel_), ", stride ", repr::tuple(stride_));
  CUDL_CHECK(padding_.h * 2 <= kernel_.h && padding_.w * 2 <= kernel_.w && padding_.h >= 0 &&
                 padding_.w >= 0,
             "MaxPool2d: padding ", repr::tuple(padding_), " must be at most half the kernel ",
             repr::tuple(kernel_));
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + repr::int_or_tuple(kernel_) + ", stride=" + repr::int_or_tuple(stride_) +
         ", padding=" + repr::int_or_tuple(padding_) +
         ", dilation=" + repr::int_or_tuple(dilation_) + ", ceil_mode=False";
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_input(x, {4}, -1, kAnyImage);
  return run_op([&] { return max_pool2d(x, kernel_, stride_, padding_, dilation_); });
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t output_size) : Module("AdaptiveAvgPool2d") {
  check_output_size("AdaptiveAvgPool2d", output_size);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_input(x, {4}, -1, kAnyImage);
  return run_op([&] { return global_avg_pool2d(x); });
}

AdaptiveMaxPool2d::AdaptiveMaxPool2d(int64_t output_size) : Module("AdaptiveMaxPool2d") {
  check_output_size("AdaptiveMaxPool2d", output_size);
}

Tensor AdaptiveMaxPool2d::forward(const Tensor& x) {
  check_input(x, {4}, -1, kAnyImage);
  return run_op([&] { return global_max_pool2d(x); });
}

AdaptiveConcatPool2d::AdaptiveConcatPool2d(int64_t output_size) : Module("AdaptiveConcatPool2d") {
  check_output_size("AdaptiveConcatPool2d", output_size);
  ap = register_module("ap", std::make_shared<AdaptiveAvgPool2d>(output_size));
  mp = register_module("mp", std::make_shared<AdaptiveMaxPool2d>(output_size));
}

Tensor AdaptiveConcatPool2d::forward(const Tensor& x) {
  check_input(x, {4}, -1, kAnyImage);
  return cat({(*mp)(x), (*ap)(x)}, 1);
}

}  // namespace cudl
