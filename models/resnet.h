// ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck) with torchvision's module names, and the
// notebook's model: the ResNet body (no avgpool/fc) followed by fastai v1's head.
//
//   resnet(arch, C): conv1 bn1 relu maxpool layer1..layer4 avgpool flatten fc
//     names as torchvision: conv1.weight, layer1.0.conv1.weight, layer2.0.downsample.0.weight,
//     fc.weight (flatten has no parameters, so the state dict is torchvision's exactly)
//   notebook_model(arch, C): Sequential{ "body": conv1 ... layer4,
//                                        "head": 0 AdaptiveConcatPool2d, 1 Flatten,
//                                                2 BatchNorm1d(2*nf), 3 Dropout(0.25),
//                                                4 Linear(2*nf, 512), 5 ReLU,
//                                                6 BatchNorm1d(512), 7 Dropout(0.5),
//                                                8 Linear(512, C) }
//     so parameters are body.conv1.weight, ..., head.2.weight, head.4.weight, head.8.bias
//     (nf = 512 for resnet18/34, 2048 for resnet50).
// Initialisation: body convs Kaiming-normal (fan_out, relu) and BN 1/0 as torchvision; head
// Linear weights Kaiming-normal (fan_in, gain sqrt(2)), biases 0, BN 1/0 as fastai.
// Shapes: input (N, 3, H, W) float32; body output (N, nf, H/32, W/32); logits (N, C).
#pragma once

#include <memory>
#include <string>

#include "layers/layers.h"

namespace cudl::models {

enum class Arch { kResNet18, kResNet34, kResNet50 };

// "resnet18" | "resnet34" | "resnet50"; throws listing the valid names otherwise.
Arch parse_arch(const std::string& name);
std::string arch_name(Arch arch);
// Channels of the body's output: 512 (18, 34) or 2048 (50).
int64_t body_channels(Arch arch);

class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, Generator* gen);
  Tensor forward(const Tensor& x) override;  // relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x)

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Sequential> downsample;  // 1x1 conv (stride) + BN; null when shapes match
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, Generator* gen);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2, conv3;  // 1x1, 3x3 (stride), 1x1 (x4 channels)
  std::shared_ptr<BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<Sequential> downsample;
};

// conv1 bn1 relu maxpool layer1..layer4 (torchvision names), the feature extractor.
std::shared_ptr<Sequential> resnet_body(Arch arch, Generator* gen = nullptr);
// The ImageNet-style classifier: body + avgpool + flatten + fc.
std::shared_ptr<Sequential> resnet(Arch arch, int64_t num_classes = 1000, Generator* gen = nullptr);
// Dropout probabilities of the head's two Dropout layers.
struct HeadDropout {
  double p1 = 0.25, p2 = 0.5;
};
// fastai v1's create_head(nf, C) with lin_ftrs [512], ps [0.25, 0.5], no final BN.
std::shared_ptr<Sequential> fastai_head(int64_t in_features, int64_t num_classes,
                                        Generator* gen = nullptr, HeadDropout ps = {});
// body + head, as cnn_learner(data, models.resnetXX) builds it.
std::shared_ptr<Sequential> notebook_model(Arch arch, int64_t num_classes, Generator* gen = nullptr,
                                           HeadDropout ps = {});

}  // namespace cudl::models
