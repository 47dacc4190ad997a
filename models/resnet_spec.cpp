#include "models/resnet_spec.h"

namespace cudl {

namespace {

struct ResNetConfig {
  bool bottleneck;
  std::vector<int> blocks;  // per stage
};

ResNetConfig config(const std::string& arch) {
  if (arch == "resnet18") return {false, {2, 2, 2, 2}};
  if (arch == "resnet34") return {false, {3, 4, 6, 3}};
  if (arch == "resnet50") return {true, {3, 4, 6, 3}};
  std::string known;
  for (const auto& a : resnet_architectures()) known += (known.empty() ? "" : ", ") + a;
  CUDL_THROW("unknown architecture '", arch, "' (known: ", known,
             ", and the notebook models fastai_ + one of these)");
}

void add_bn(std::vector<TensorSpec>& out, const std::string& prefix, int64_t c) {
  for (const char* f : {"weight", "bias", "running_mean", "running_var"})
    out.push_back({prefix + "." + f, {c}, kFloat32});
  out.push_back({prefix + ".num_batches_tracked", {}, kInt64});
}

// The ResNet without avgpool and fc; returns the number of output channels.
int64_t add_body(std::vector<TensorSpec>& out, const std::string& prefix, const std::string& arch) {
  ResNetConfig cfg = config(arch);
  const int64_t expansion = cfg.bottleneck ? 4 : 1;
  out.push_back({prefix + "conv1.weight", {64, 3, 7, 7}, kFloat32});
  add_bn(out, prefix + "bn1", 64);
  int64_t inplanes = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t{64} << stage;
    const int stride = stage == 0 ? 1 : 2;
    for (int b = 0; b < cfg.blocks[stage]; ++b) {
      std::string p = prefix + "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      if (cfg.bottleneck) {
        out.push_back({p + "conv1.weight", {planes, inplanes, 1, 1}, kFloat32});
        add_bn(out, p + "bn1", planes);
        out.push_back({p + "conv2.weight", {planes, planes, 3, 3}, kFloat32});
        add_bn(out, p + "bn2", planes);
        out.push_back({p + "conv3.weight", {planes * expansion, planes, 1, 1}, kFloat32});
        add_bn(out, p + "bn3", planes * expansion);
      } else {
        out.push_back({p + "conv1.weight", {planes, inplanes, 3, 3}, kFloat32});
        add_bn(out, p + "bn1", planes);
        out.push_back({p + "conv2.weight", {planes, planes, 3, 3}, kFloat32});
        add_bn(out, p + "bn2", planes);
      }
      if (b == 0 && (stride != 1 || inplanes != planes * expansion)) {
        out.push_back({p + "downsample.0.weight", {planes * expansion, inplanes, 1, 1}, kFloat32});
        add_bn(out, p + "downsample.1", planes * expansion);
      }
      inplanes = planes * expansion;
    }
  }
  return inplanes;
}

void check_classes(int64_t num_classes) {
  CUDL_CHECK(num_classes >= 1, "the number of classes must be at least 1, got ", num_classes);
}

}  // namespace

const std::vector<std::string>& resnet_architectures() {
  static const std::vector<std::string> names{"resnet18", "resnet34", "resnet50"};
  return names;
}

std::vector<TensorSpec> torchvision_resnet_spec(const std::string& arch, int64_t num_classes) {
  check_classes(num_classes);
  std::vector<TensorSpec> out;
  int64_t features = add_body(out, "", arch);
  out.push_back({"fc.weight", {num_classes, features}, kFloat32});
  out.push_back({"fc.bias", {num_classes}, kFloat32});
  return out;
}

std::vector<TensorSpec> fastai_resnet_spec(const std::string& arch, int64_t num_classes) {
  check_classes(num_classes);
  std::vector<TensorSpec> out;
  const int64_t pooled = 2 * add_body(out, "body.", arch);  // concat of max- and avg-pool
  add_bn(out, "head.2", pooled);
  out.push_back({"head.4.weight", {512, pooled}, kFloat32});
  out.push_back({"head.4.bias", {512}, kFloat32});
  add_bn(out, "head.6", 512);
  out.push_back({"head.8.weight", {num_classes, 512}, kFloat32});
  out.push_back({"head.8.bias", {num_classes}, kFloat32});
  return out;
}

std::vector<TensorSpec> architecture_spec(const std::string& name, int64_t num_classes) {
  const std::string fastai = "fastai_";
  if (name.compare(0, fastai.size(), fastai) == 0)
    return fastai_resnet_spec(name.substr(fastai.size()), num_classes);
  return torchvision_resnet_spec(name, num_classes);
}

}  // namespace cudl
