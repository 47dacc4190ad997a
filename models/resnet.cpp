#include "models/resnet.h"

#include <cmath>

namespace cudl::models {

Arch parse_arch(const std::string& name) {
  if (name == "resnet18") return Arch::kResNet18;
  if (name == "resnet34") return Arch::kResNet34;
  if (name == "resnet50") return Arch::kResNet50;
  CUDL_THROW("unknown architecture '", name, "' (expected resnet18, resnet34 or resnet50)");
}

std::string arch_name(Arch arch) {
  switch (arch) {
    case Arch::kResNet18: return "resnet18";
    case Arch::kResNet34: return "resnet34";
    case Arch::kResNet50: return "resnet50";
  }
  return "unknown";
}

int64_t body_channels(Arch arch) { return arch == Arch::kResNet50 ? 2048 : 512; }

namespace {

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, Generator* gen) {
  auto c = std::make_shared<Conv2d>(
      in, out, k, Conv2dOptions().stride(stride).padding(k / 2).bias(false).generator(gen));
  // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
  init::kaiming_normal_(c->weight, 0.0, init::FanMode::kFanOut, "relu", gen);
  return c;
}

std::shared_ptr<Sequential> make_downsample(int64_t in, int64_t out, int64_t stride, Generator* gen) {
  auto ds = std::make_shared<Sequential>();
  ds->push_back(conv(in, out, 1, stride, gen));
  ds->push_back(std::make_shared<BatchNorm2d>(out));
  return ds;
}

template <class Block>
std::shared_ptr<Sequential> make_stage(int64_t& inplanes, int64_t planes, int blocks, int64_t stride,
                                       Generator* gen) {
  auto stage = std::make_shared<Sequential>();
  for (int i = 0; i < blocks; ++i) {
    stage->push_back(std::make_shared<Block>(inplanes, planes, i == 0 ? stride : 1, gen));
    inplanes = planes * Block::kExpansion;
  }
  return stage;
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, Generator* gen)
    : Module("BasicBlock") {
  conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (stride != 1 || inplanes != planes * kExpansion)
    downsample = register_module("downsample", make_downsample(inplanes, planes * kExpansion, stride, gen));
}

// Batch norm, the residual add and ReLU run fused (batch_norm_act: the same results, fewer
// passes, no intermediate kept), except while forward hooks watch every module
// (models::summary), which then see the separate ops in torchvision's order.
Tensor BasicBlock::forward(const Tensor& x) {
  if (forward_hooks_active()) {
    Tensor out = (*relu)((*bn1)((*conv1)(x)));
    out = (*bn2)((*conv2)(out));
    Tensor identity = downsample ? (*downsample)(x) : x;
    return (*relu)(out + identity);
  }
  Tensor out = bn1->forward_act((*conv1)(x), Tensor(), true);
  out = (*conv2)(out);
  Tensor identity = downsample ? (*downsample)(x) : x;
  return bn2->forward_act(out, identity, true);
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, Generator* gen)
    : Module("Bottleneck") {
  conv1 = register_module("conv1", conv(inplanes, planes, 1, 1, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, gen));
  bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
  relu = register_module("relu", std::make_shared<ReLU>());
  if (stride != 1 || inplanes != planes * kExpansion)
    downsample = register_module("downsample", make_downsample(inplanes, planes * kExpansion, stride, gen));
}

Tensor Bottleneck::forward(const Tensor& x) {  // fused as BasicBlock::forward
  if (forward_hooks_active()) {
    Tensor out = (*relu)((*bn1)((*conv1)(x)));
    out = (*relu)((*bn2)((*conv2)(out)));
    out = (*bn3)((*conv3)(out));
    Tensor identity = downsample ? (*downsample)(x) : x;
    return (*relu)(out + identity);
  }
  Tensor out = bn1->forward_act((*conv1)(x), Tensor(), true);
  out = bn2->forward_act((*conv2)(out), Tensor(), true);
  out = (*conv3)(out);
  Tensor identity = downsample ? (*downsample)(x) : x;
  return bn3->forward_act(out, identity, true);
}

std::shared_ptr<Sequential> resnet_body(Arch arch, Generator* gen) {
  static const int kBlocks[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};
  const int* blocks = kBlocks[static_cast<int>(arch)];
  auto body = std::make_shared<Sequential>();
  body->push_back("conv1", std::make_shared<Conv2d>(
                               3, 64, 7, Conv2dOptions().stride(2).padding(3).bias(false).generator(gen)));
  auto* c1 = static_cast<Conv2d*>((*body)[0].get());
  init::kaiming_normal_(c1->weight, 0.0, init::FanMode::kFanOut, "relu", gen);
  body->push_back("bn1", std::make_shared<BatchNorm2d>(64));
  body->push_back("relu", std::make_shared<ReLU>());
  body->push_back("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t inplanes = 64;
  const int64_t planes[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    const int64_t stride = s == 0 ? 1 : 2;
    auto stage = arch == Arch::kResNet50
                     ? make_stage<Bottleneck>(inplanes, planes[s], blocks[s], stride, gen)
                     : make_stage<BasicBlock>(inplanes, planes[s], blocks[s], stride, gen);
    body->push_back("layer" + std::to_string(s + 1), stage);
  }
  return body;
}

std::shared_ptr<Sequential> resnet(Arch arch, int64_t num_classes, Generator* gen) {
  auto net = resnet_body(arch, gen);
  net->push_back("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  net->push_back("flatten", std::make_shared<Flatten>(1));
  net->push_back("fc", std::make_shared<Linear>(body_channels(arch), num_classes, true, gen));
  return net;
}

std::shared_ptr<Sequential> fastai_head(int64_t in_features, int64_t num_classes, Generator* gen,
                                        HeadDropout ps) {
  CUDL_CHECK(num_classes > 0, "fastai_head: num_classes must be positive, got ", num_classes);
  auto lin = [&](int64_t in, int64_t out) {
    auto l = std::make_shared<Linear>(in, out, true, gen);
    init::kaiming_normal_(l->weight, 0.0, init::FanMode::kFanIn, "relu", gen);  // gain sqrt(2)
    init::zeros_(l->bias);
    return l;
  };
  auto head = std::make_shared<Sequential>();
  head->push_back(std::make_shared<AdaptiveConcatPool2d>(1));
  head->push_back(std::make_shared<Flatten>(1));
  head->push_back(std::make_shared<BatchNorm1d>(in_features));
  head->push_back(std::make_shared<Dropout>(ps.p1, gen));
  head->push_back(lin(in_features, 512));
  head->push_back(std::make_shared<ReLU>());
  head->push_back(std::make_shared<BatchNorm1d>(512));
  head->push_back(std::make_shared<Dropout>(ps.p2, gen));
  head->push_back(lin(512, num_classes));
  return head;
}

std::shared_ptr<Sequential> notebook_model(Arch arch, int64_t num_classes, Generator* gen,
                                           HeadDropout ps) {
  auto model = std::make_shared<Sequential>();
  model->push_back("body", resnet_body(arch, gen));
  model->push_back("head", fastai_head(2 * body_channels(arch), num_classes, gen, ps));
  return model;
}

}  // namespace cudl::models
