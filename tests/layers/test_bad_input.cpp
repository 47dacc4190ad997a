// Bad input: every layer refuses a wrong rank, channel count, feature count, dtype (and, in
// the CUDA tests, device) with one message naming the layer by its dotted name inside the
// model and its repr, the expected and the received shape. The messages are compared whole,
// so a vague or misleading error fails the test.
#include <gtest/gtest.h>

#include "layers/layers.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using ::cudl::testing::error_of;

// A ResNet-shaped model: "layer1" > "0" > conv1/bn1/..., plus a fastai-like head.
std::shared_ptr<Sequential> model() {
  auto block = std::make_shared<Sequential>();
  block->push_back("conv1", std::make_shared<Conv2d>(
                                64, 64, 3, Conv2dOptions().stride(1).padding(1).bias(false)));
  block->push_back("bn1", std::make_shared<BatchNorm2d>(64));
  auto layer1 = sequential({block});
  auto head = sequential({std::make_shared<AdaptiveConcatPool2d>(), std::make_shared<Flatten>(),
                          std::make_shared<BatchNorm1d>(128), std::make_shared<Linear>(128, 4)});
  auto m = std::make_shared<Sequential>();
  m->push_back("layer1", layer1);
  m->push_back("head", head);
  return m;
}

TEST(BadInput, WrongChannelCountNamesTheLayer) {
  auto m = model();
  EXPECT_EQ(error_of([&] {
              (*m)(rand({2, 32, 56, 56}));
            }),
            "layer1.0.conv1 (Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
            "bias=False)): expected input (N, 64, H, W), got (2, 32, 56, 56)");
  // The same layer outside a model names itself by its repr only.
  Conv2d conv(3, 8, 3);
  EXPECT_EQ(error_of([&] {
              conv(rand({1, 4, 8, 8}));
            }),
            "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)): expected input (N, 3, H, W), got "
            "(1, 4, 8, 8)");
  BatchNorm2d bn(64);
  EXPECT_EQ(error_of([&] {
              bn(rand({2, 32, 4, 4}));
            }),
            "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True): "
            "expected input (N, 64, H, W), got (2, 32, 4, 4)");
}

TEST(BadInput, WrongRank) {
  auto m = model();
  EXPECT_EQ(error_of([&] {
              (*m)(rand({64, 56, 56}));
            }),
            "layer1.0.conv1 (Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
            "bias=False)): expected input (N, 64, H, W), got (64, 56, 56)");
  BatchNorm1d bn(128);
  EXPECT_EQ(error_of([&] {
              bn(rand({2, 128, 1, 1}));
            }),
            "BatchNorm1d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True): "
            "expected input (N, 128) or (N, 128, L), got (2, 128, 1, 1)");
  EXPECT_EQ(error_of([] {
              MaxPool2d(3, 2, 1)(rand({4, 10, 10}));
            }),
            "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False): "
            "expected input (N, C, H, W), got (4, 10, 10)");
  EXPECT_EQ(error_of([] {
              AdaptiveConcatPool2d()(rand({2, 512}));
            }),
            "AdaptiveConcatPool2d(): expected input (N, C, H, W), got (2, 512)");
}

TEST(BadInput, WrongFeatureCountInTheHead) {
  auto m = model();
  // layer1 passes (2, 64, 8, 8); the head's BatchNorm1d then sees 128 features. Feed the head
  // directly with the wrong width: the Linear layer is named by its path.
  auto head = std::dynamic_pointer_cast<Sequential>((*m)[1]);
  ASSERT_TRUE(head);
  m->eval();
  EXPECT_EQ(error_of([&] {
              (*(*head)[3])(rand({2, 100}));
            }),
            "head.3 (Linear(in_features=128, out_features=4, bias=True)): expected input "
            "(*, 128), got (2, 100)");
  EXPECT_EQ(error_of([&] {
              (*head)(rand({2, 32, 3, 3}));
            }),
            "head.2 (BatchNorm1d(128, eps=1e-05, momentum=0.1, affine=True, "
            "track_running_stats=True)): expected input (N, 128) or (N, 128, L), got (2, 64)");
}

TEST(BadInput, WrongDtype) {
  auto m = model();
  EXPECT_EQ(error_of([&] {
              (*m)(rand({2, 64, 8, 8}, kFloat64));
            }),
            "layer1.0.conv1 (Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
            "bias=False)): expected float32 input (N, 64, H, W), got float64 (2, 64, 8, 8)");
}

TEST(BadInput, ErrorsFoundInsideTheOpStillNameTheLayer) {
  auto m = model();
  // A 7x7 kernel cannot slide over a 2x2 image without padding.
  Conv2d big(3, 4, 7);
  EXPECT_EQ(error_of([&] {
              big(rand({1, 3, 2, 2}));
            }),
            "Conv2d(3, 4, kernel_size=(7, 7), stride=(1, 1)): conv2d: input (1, 3, 2, 2) padded by "
            "(0, 0) is smaller than the dilated kernel (7, 7)");
  // Training BatchNorm needs more than one value per channel.
  EXPECT_EQ(error_of([&] {
              (*m)(rand({1, 64, 1, 1}));
            }),
            "layer1.0.bn1 (BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, "
            "track_running_stats=True)): batch_norm: expected more than 1 value per channel when "
            "training, got input of shape (1, 64, 1, 1)");
}

TEST(BadInput, ConstructorArguments) {
  EXPECT_THROW(Conv2d(3, 8, 0), Error);
  EXPECT_THROW(Conv2d(3, 8, 3, Conv2dOptions().groups(2)), Error);  // 3 % 2 != 0
  EXPECT_THROW(MaxPool2d(3, 2, 2), Error);                          // padding > kernel / 2
  EXPECT_THROW(AdaptiveAvgPool2d(7), Error);                        // only output size 1
  EXPECT_THROW(BatchNorm2d(0), Error);
  EXPECT_THROW(Linear(0, 4), Error);
  EXPECT_THROW(BatchNorm1d(4, BatchNormOptions().momentum(2.0)), Error);
}

}  // namespace
}  // namespace cudl
