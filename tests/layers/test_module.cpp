// The Module system: names, registration order, state dicts, dtype moves, modes, gradients,
// freezing and printing. Expected names and printouts are PyTorch's (written out by hand from
// torch 1.13 for the same modules).
#include <gtest/gtest.h>

#include <cmath>

#include "layers/layers.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

// A torchvision-style BasicBlock and a tiny ResNet, built bottom-up (blocks are made before
// they are placed in the model), so names must be updated when a subtree is registered.
struct Block : Module {
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;
  Block(int64_t in, int64_t out, int64_t stride) : Module("BasicBlock") {
    conv1 = register_module(
        "conv1", std::make_shared<Conv2d>(in, out, 3,
                                          Conv2dOptions().stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(out));
    conv2 = register_module(
        "conv2", std::make_shared<Conv2d>(out, out, 3, Conv2dOptions().padding(1).bias(false)));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out));
    if (stride != 1 || in != out) {
      downsample = register_module(
          "downsample", sequential({std::make_shared<Conv2d>(
                                        in, out, 1, Conv2dOptions().stride(stride).bias(false)),
                                    std::make_shared<BatchNorm2d>(out)}));
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu((*bn1)((*conv1)(x)));
    h = (*bn2)((*conv2)(h));
    return relu(h + (downsample ? (*downsample)(x) : x));
  }
};

struct TinyNet : Module {
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Sequential> layer1;
  std::shared_ptr<Linear> fc;
  TinyNet() : Module("TinyNet") {
    conv1 = register_module(
        "conv1",
        std::make_shared<Conv2d>(3, 4, 3, Conv2dOptions().stride(2).padding(1).bias(false)));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(4));
    auto b0 = std::make_shared<Block>(4, 8, 2);
    auto b1 = std::make_shared<Block>(8, 8, 1);
    layer1 = register_module("layer1", sequential({b0, b1}));
    fc = register_module("fc", std::make_shared<Linear>(8, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*layer1)(relu((*bn1)((*conv1)(x))));
    return (*fc)(global_avg_pool2d(h).flatten(1));
  }
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> n;
  for (auto& p : v) n.push_back(p.first);
  return n;
}

TEST(Module, DottedNamesInRegistrationOrder) {
  auto net = std::make_shared<TinyNet>();
  const std::vector<std::string> expected = {"conv1.weight",
                                             "bn1.weight",
                                             "bn1.bias",
                                             "layer1.0.conv1.weight",
                                             "layer1.0.bn1.weight",
                                             "layer1.0.bn1.bias",
                                             "layer1.0.conv2.weight",
                                             "layer1.0.bn2.weight",
                                             "layer1.0.bn2.bias",
                                             "layer1.0.downsample.0.weight",
                                             "layer1.0.downsample.1.weight",
                                             "layer1.0.downsample.1.bias",
                                             "layer1.1.conv1.weight",
                                             "layer1.1.bn1.weight",
                                             "layer1.1.bn1.bias",
                                             "layer1.1.conv2.weight",
                                             "layer1.1.bn2.weight",
                                             "layer1.1.bn2.bias",
                                             "fc.weight",
                                             "fc.bias"};
  EXPECT_EQ(names_of(net->named_parameters()), expected);
  // parameters() are the layers' own tensors, in the same order.
  auto params = net->parameters();
  ASSERT_EQ(params.size(), expected.size());
  EXPECT_TRUE(params[0].is_same(net->conv1->weight));
  EXPECT_TRUE(params.back().is_same(net->fc->bias));
  EXPECT_TRUE(params[3].requires_grad());
  // Each module knows its place, although blocks were built before the model.
  auto block0 = std::dynamic_pointer_cast<Block>((*net->layer1)[0]);
  ASSERT_TRUE(block0);
  EXPECT_EQ(block0->conv1->name(), "layer1.0.conv1");
  EXPECT_EQ((*block0->downsample)[1]->name(), "layer1.0.downsample.1");
  EXPECT_EQ(net->name(), "");
  // Buffers, and the state dict in PyTorch's order: per module its parameters, then its buffers.
  auto buffers = names_of(net->named_buffers());
  EXPECT_EQ(buffers.front(), "bn1.running_mean");
  EXPECT_EQ(buffers[2], "bn1.num_batches_tracked");
  auto keys = net->state_dict().keys();
  const std::vector<std::string> head = {
      "conv1.weight",         "bn1.weight",      "bn1.bias",
      "bn1.running_mean",     "bn1.running_var", "bn1.num_batches_tracked",
      "layer1.0.conv1.weight"};
  EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + 7), head);
  EXPECT_EQ(keys.size(), expected.size() + 6 * 3);  // 6 BatchNorms with 3 buffers each
  std::vector<std::string> module_names;
  for (auto& [n, m] : net->named_modules()) module_names.push_back(n);
  EXPECT_EQ(module_names[0], "");
  EXPECT_EQ(module_names[3], "layer1");
  EXPECT_EQ(module_names[4], "layer1.0");
}

TEST(Module, ForwardBackwardThroughAModel) {
  auto net = std::make_shared<TinyNet>();
  Tensor x = rand({2, 3, 12, 12});
  Tensor y = (*net)(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  sum(y).backward();
  for (auto& [name, p] : net->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().shape(), p.shape()) << name;
  }
  EXPECT_EQ(net->bn1->num_batches_tracked.item<int64_t>(), 1);
  net->zero_grad();
  for (auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, StateDictRoundTripAndSharing) {
  manual_seed(1);
  auto a = std::make_shared<TinyNet>();
  manual_seed(2);
  auto b = std::make_shared<TinyNet>();
  a->train();
  (*a)(rand({2, 3, 8, 8}));  // running statistics now differ from b's
  EXPECT_FALSE(all_close(a->conv1->weight, b->conv1->weight, 0, 0));
  LoadResult r = b->load_state_dict(a->state_dict());
  EXPECT_TRUE(r.missing_keys.empty() && r.unexpected_keys.empty());
  for (auto& [key, t] : a->state_dict())
    EXPECT_TRUE(all_close(b->state_dict().at(key), t, 0, 0)) << key;
  // Loading copies: b's tensors are still its own.
  EXPECT_FALSE(b->conv1->weight.storage() == a->conv1->weight.storage());
  // state_dict() entries are views of the live data.
  StateDict sd = a->state_dict();
  EXPECT_EQ(sd.at("fc.bias").data_ptr(), a->fc->bias.data_ptr());
  EXPECT_FALSE(sd.at("fc.bias").requires_grad());
}

TEST(Module, LoadStateDictReportsEveryProblemAndChangesNothing) {
  auto net = std::make_shared<TinyNet>();
  StateDict good = net->state_dict();
  StateDict bad;
  for (auto& [key, t] : good) {
    if (key == "fc.bias") continue;  // missing
    if (key == "conv1.weight") {
      bad.insert(key, zeros({4, 3, 5, 5}));  // wrong shape
    } else {
      bad.insert(key, t.clone().fill_(7.0));
    }
  }
  bad.insert("fc.extra", zeros({2}));  // unexpected
  Tensor before = net->bn1->weight.clone();
  try {
    net->load_state_dict(bad);
    FAIL() << "load_state_dict accepted a bad dict";
  } catch (const Error& e) {
    const std::string m = e.message();
    EXPECT_NE(m.find("3 problems"), std::string::npos) << m;
    EXPECT_NE(m.find("missing key 'fc.bias' (expected shape (3,))"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected key 'fc.extra'"), std::string::npos) << m;
    EXPECT_NE(m.find("key 'conv1.weight': expected shape (4, 3, 3, 3), got (4, 3, 5, 5)"),
              std::string::npos)
        << m;
  }
  EXPECT_TRUE(all_close(net->bn1->weight, before, 0, 0)) << "a failed load must change nothing";
  // Non-strict: names may be missing or extra, shapes must still match.
  StateDict partial;
  partial.insert("fc.bias", full({3}, 0.5));
  partial.insert("head.weight", zeros({1}));
  LoadResult r = net->load_state_dict(partial, false);
  EXPECT_EQ(r.unexpected_keys, std::vector<std::string>{"head.weight"});
  EXPECT_EQ(r.missing_keys.size(), good.size() - 1);
  EXPECT_EQ(net->fc->bias.to_vector<float>(), (std::vector<float>{0.5f, 0.5f, 0.5f}));
}

TEST(Module, ToDtypeKeepsParameterIdentity) {
  auto net = std::make_shared<TinyNet>();
  sum((*net)(rand({2, 3, 8, 8}))).backward();
  std::vector<Tensor> params = net->parameters();  // e.g. held by an optimiser
  Tensor w_before = net->fc->weight.to(kFloat64);
  net->to(kFloat64);
  EXPECT_TRUE(params.back().is_same(net->fc->bias));
  EXPECT_EQ(params[0].dtype(), kFloat64);
  EXPECT_EQ(params[0].grad().dtype(), kFloat64);
  EXPECT_TRUE(params[0].requires_grad());
  EXPECT_TRUE(all_close(net->fc->weight, w_before, 0, 0));
  EXPECT_EQ(net->bn1->num_batches_tracked.dtype(), kInt64);
  EXPECT_EQ(net->bn1->running_var.dtype(), kFloat64);
  // The model now takes float64 input.
  EXPECT_EQ((*net)(rand({2, 3, 8, 8}, kFloat64)).dtype(), kFloat64);
  EXPECT_EQ(net->device(), Device::cpu());
}

TEST(Module, TrainEvalIsRecursive) {
  auto net = std::make_shared<TinyNet>();
  EXPECT_TRUE(net->is_training());
  net->eval();
  for (auto& [n, m] : net->named_modules()) EXPECT_FALSE(m->is_training()) << n;
  // Eval mode does not touch the running statistics.
  Tensor rm = net->bn1->running_mean.clone();
  (*net)(rand({2, 3, 8, 8}));
  EXPECT_TRUE(all_close(net->bn1->running_mean, rm, 0, 0));
  EXPECT_EQ(net->bn1->num_batches_tracked.item<int64_t>(), 0);
  net->train();
  for (auto& [n, m] : net->named_modules()) EXPECT_TRUE(m->is_training()) << n;
}

TEST(Module, FreezeAndUnfreezeByPrefix) {
  auto net = std::make_shared<TinyNet>();
  EXPECT_EQ(net->freeze("layer1.0"), 9);
  for (auto& [name, p] : net->named_parameters())
    EXPECT_EQ(p.requires_grad(), name.rfind("layer1.0.", 0) != 0) << name;
  // Frozen parameters receive no gradient.
  sum((*net)(rand({2, 3, 8, 8}))).backward();
  auto block0 = std::dynamic_pointer_cast<Block>((*net->layer1)[0]);
  EXPECT_FALSE(block0->conv1->weight.grad().defined());
  EXPECT_FALSE(block0->downsample->parameters()[0].grad().defined());
  EXPECT_TRUE(net->fc->weight.grad().defined());
  // A prefix matches whole name components: "conv1" is not a prefix of "conv10.weight".
  Sequential s;
  s.push_back("conv1", std::make_shared<Linear>(2, 2));
  s.push_back("conv10", std::make_shared<Linear>(2, 2));
  EXPECT_EQ(s.freeze("conv1"), 2);
  EXPECT_TRUE(s.named_parameters()[2].second.requires_grad());
  EXPECT_EQ(s.freeze("conv10.bias"), 1);
  EXPECT_EQ(s.unfreeze(), 4);
  for (auto& p : s.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_THROW(s.freeze("conv2"), Error);  // a typo must not silently freeze nothing
  EXPECT_EQ(net->freeze(), 20);
  EXPECT_EQ(net->unfreeze("layer1"), 15);
}

// A layer whose op fails: run_op puts the layer's name in front of the message and keeps the
// kind of error, so a GPU failure (DeviceError, with out_of_memory()) stays one and the
// programs can still advise on it (train/failure.h).
struct FailingLayer : Module {
  bool device_failure, out_of_memory;
  FailingLayer(bool device, bool oom)
      : Module("Failing"), device_failure(device), out_of_memory(oom) {}
  Tensor forward(const Tensor&) override {
    return run_op([&]() -> Tensor {
      if (device_failure) CUDL_THROW_DEVICE(out_of_memory, "cudaMalloc failed");
      CUDL_THROW("input too small");
    });
  }
};

TEST(Module, RunOpNamesTheLayerAndKeepsTheKindOfError) {
  auto net = sequential({std::make_shared<ReLU>(), std::make_shared<FailingLayer>(true, true)});
  const Tensor x = ones({2, 3});
  try {
    (*net)(x);
    FAIL() << "no error";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.message(), "1 (Failing()): cudaMalloc failed");
    EXPECT_TRUE(e.out_of_memory());
  }
  FailingLayer not_oom(true, false);
  try {
    not_oom(x);
    FAIL() << "no error";
  } catch (const DeviceError& e) {
    EXPECT_FALSE(e.out_of_memory());
  }
  FailingLayer plain(false, false);
  try {
    plain(x);
    FAIL() << "no error";
  } catch (const DeviceError&) {
    FAIL() << "a plain error became a DeviceError";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "Failing(): input too small");
  }
}

TEST(Module, ReprMatchesPyTorch) {
  EXPECT_EQ(Conv2d(64, 64, 3, Conv2dOptions().stride(1).padding(1).bias(false)).repr(),
            "Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)");
  EXPECT_EQ(Conv2d(4, 6, {2, 3},
                   Conv2dOptions().stride({2, 1}).padding({1, 2}).dilation({2, 1}).groups(2))
                .repr(),
            "Conv2d(4, 6, kernel_size=(2, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 1), "
            "groups=2)");
  EXPECT_EQ(BatchNorm2d(64).repr(),
            "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(BatchNorm1d(
                1024, BatchNormOptions().eps(1e-3).momentum(0.01).affine(false).track_running_stats(
                          false))
                .repr(),
            "BatchNorm1d(1024, eps=0.001, momentum=0.01, affine=False, track_running_stats=False)");
  EXPECT_EQ(MaxPool2d(3, 2, 1).repr(),
            "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  EXPECT_EQ(MaxPool2d({3, 2}, Size2{2, 1}).repr(),
            "MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(Linear(1024, 512).repr(), "Linear(in_features=1024, out_features=512, bias=True)");
  EXPECT_EQ(Linear(512, 4, false).repr(), "Linear(in_features=512, out_features=4, bias=False)");
  EXPECT_EQ(Dropout(0.25).repr(), "Dropout(p=0.25, inplace=False)");
  EXPECT_EQ(Flatten().repr(), "Flatten(start_dim=1, end_dim=-1)");
  EXPECT_EQ(ReLU().repr(), "ReLU()");
  EXPECT_EQ(AdaptiveAvgPool2d().repr(), "AdaptiveAvgPool2d(output_size=1)");
  EXPECT_EQ(AdaptiveMaxPool2d().repr(), "AdaptiveMaxPool2d(output_size=1)");
  Sequential model{
      std::make_shared<Conv2d>(3, 8, 7, Conv2dOptions().stride(2).padding(3).bias(false)),
      sequential({std::make_shared<BatchNorm2d>(8), std::make_shared<ReLU>()}),
      std::make_shared<AdaptiveConcatPool2d>(), std::make_shared<Flatten>(),
      std::make_shared<Linear>(16, 4)};
  EXPECT_EQ(
      model.to_string(),
      "Sequential(\n"
      "  (0): Conv2d(3, 8, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)\n"
      "  (1): Sequential(\n"
      "    (0): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
      "    (1): ReLU()\n"
      "  )\n"
      "  (2): AdaptiveConcatPool2d(\n"
      "    (ap): AdaptiveAvgPool2d(output_size=1)\n"
      "    (mp): AdaptiveMaxPool2d(output_size=1)\n"
      "  )\n"
      "  (3): Flatten(start_dim=1, end_dim=-1)\n"
      "  (4): Linear(in_features=16, out_features=4, bias=True)\n"
      ")");
  EXPECT_EQ(model.repr(), "Sequential()");
}

TEST(Module, RegistrationRules) {
  Sequential s;
  s.push_back(std::make_shared<ReLU>());
  EXPECT_THROW(s.push_back("0", std::make_shared<ReLU>()), Error);  // name taken
  EXPECT_THROW(s.push_back("a.b", std::make_shared<ReLU>()), Error);
  EXPECT_THROW(s.push_back("", std::make_shared<ReLU>()), Error);
  EXPECT_THROW(s.push_back("x", nullptr), Error);
  EXPECT_THROW(s[5], Error);
  EXPECT_EQ(s.size(), 1u);
  s.push_back("head", std::make_shared<Linear>(2, 3));
  EXPECT_EQ(names_of(s.named_parameters()), (std::vector<std::string>{"head.weight", "head.bias"}));
  EXPECT_EQ(s[1]->name(), "head");
}

TEST(Layers, InitialisationFollowsPyTorchDefaults) {
  Generator g(3);
  Conv2d c(64, 32, 3, Conv2dOptions().generator(&g));
  const double bound = 1.0 / std::sqrt(64.0 * 9.0);  // kaiming_uniform_(a=sqrt(5)) = 1/sqrt(fan_in)
  EXPECT_LE(max(abs(c.weight)).item(), bound);
  EXPECT_GT(max(abs(c.weight)).item(), 0.95 * bound);
  EXPECT_LE(max(abs(c.bias)).item(), bound);
  // Uniform on [-b, b] has variance b^2 / 3.
  EXPECT_NEAR(mean(c.weight * c.weight).item(), bound * bound / 3.0, 0.05 * bound * bound);
  // One seed, one initialisation.
  Generator g2(3);
  Conv2d c2(64, 32, 3, Conv2dOptions().generator(&g2));
  EXPECT_TRUE(all_close(c.weight, c2.weight, 0, 0));
  Linear fc(512, 256);
  EXPECT_LE(max(abs(fc.weight)).item(), 1.0 / std::sqrt(512.0));
  // kaiming_normal_ (fan_out, relu), as torchvision's ResNet init: std sqrt(2 / fan_out).
  Tensor w = empty({64, 32, 3, 3});
  init::kaiming_normal_(w, 0.0, init::FanMode::kFanOut, "relu", &g);
  EXPECT_NEAR(std::sqrt(mean(w * w).item()), std::sqrt(2.0 / (64 * 9)),
              0.02 * std::sqrt(2.0 / (64 * 9)));
  BatchNorm2d bn(8);
  EXPECT_EQ(bn.weight.to_vector<float>(), std::vector<float>(8, 1.0f));
  EXPECT_EQ(bn.bias.to_vector<float>(), std::vector<float>(8, 0.0f));
  EXPECT_EQ(bn.running_var.to_vector<float>(), std::vector<float>(8, 1.0f));
  EXPECT_THROW(init::calculate_gain("swish"), Error);
}

TEST(Layers, BatchNormModesAndStatistics) {
  BatchNorm2d bn(3);
  Tensor x = rand({4, 3, 5, 5}) * 3.0 + 1.0;
  Tensor y = bn(x);
  // Training: per-channel zero mean, unit (biased) variance.
  Tensor m = mean(y, {0, 2, 3});
  Tensor v = mean(y * y, {0, 2, 3});
  EXPECT_TRUE(all_close(m, zeros({3}), 1e-5, 0));
  EXPECT_TRUE(all_close(v, ones({3}), 1e-3, 0));  // var / (var + eps) with var ~ 0.75
  // running = 0.9 * init + 0.1 * batch statistic (unbiased variance for running_var).
  Tensor bm = mean(x, {0, 2, 3});
  Tensor bv = mean(pow(x - bm.reshape({1, 3, 1, 1}), 2.0), {0, 2, 3}) * (100.0 / 99.0);
  EXPECT_TRUE(all_close(bn.running_mean, bm * 0.1, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(bn.running_var, bv * 0.1 + 0.9, 1e-6, 1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // Eval: the running statistics normalise, nothing changes.
  bn.eval();
  Tensor ye = bn(x);
  Tensor expect = (x - bn.running_mean.reshape({1, 3, 1, 1})) /
                  sqrt(bn.running_var.reshape({1, 3, 1, 1}) + 1e-5);
  EXPECT_TRUE(all_close(ye, expect, 1e-5, 1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // Without tracking there are no buffers and batch statistics are used in both modes.
  BatchNorm1d plain(3, BatchNormOptions().track_running_stats(false));
  EXPECT_TRUE(plain.named_buffers().empty());
  plain.eval();
  Tensor z = plain(rand({6, 3}) * 4.0);
  EXPECT_TRUE(all_close(mean(z, {0}), zeros({3}), 1e-5, 0));
}

TEST(Layers, DropoutTrainAndEval) {
  Generator g(5);
  Dropout d(0.5, &g);
  Tensor x = ones({1000});
  Tensor y = d(x);
  const auto v = y.to_vector<float>();
  int kept = 0;
  for (float e : v) {
    EXPECT_TRUE(e == 0.0f || e == 2.0f);
    kept += e != 0.0f;
  }
  EXPECT_NEAR(kept, 500, 80);  // Binomial(1000, 0.5): std 16
  // Same seed, same mask.
  Generator g2(5);
  EXPECT_TRUE(all_close(dropout(x, 0.5, true, &g2), y, 0, 0));
  d.eval();
  EXPECT_TRUE(d(x).is_same(x));
  EXPECT_TRUE(all_close(dropout(x, 1.0, true, &g), zeros({1000}), 0, 0));
  EXPECT_THROW(Dropout(1.5), Error);
}

TEST(Layers, OutputShapes) {
  EXPECT_EQ(Conv2d(3, 64, 7, Conv2dOptions().stride(2).padding(3))(rand({2, 3, 300, 300})).shape(),
            (Shape{2, 64, 150, 150}));
  EXPECT_EQ(MaxPool2d(3, 2, 1)(rand({2, 4, 150, 150})).shape(), (Shape{2, 4, 75, 75}));
  EXPECT_EQ(MaxPool2d(2)(rand({1, 1, 5, 5})).shape(), (Shape{1, 1, 2, 2}));  // stride = kernel
  EXPECT_EQ(AdaptiveConcatPool2d()(rand({2, 512, 10, 10})).shape(), (Shape{2, 1024, 1, 1}));
  EXPECT_EQ(Flatten()(rand({2, 1024, 1, 1})).shape(), (Shape{2, 1024}));
  EXPECT_EQ(Linear(1024, 512)(rand({16, 1024})).shape(), (Shape{16, 512}));
  EXPECT_EQ(Linear(8, 2)(rand({3, 5, 8})).shape(), (Shape{3, 5, 2}));
  EXPECT_EQ(BatchNorm1d(4)(rand({3, 4, 7})).shape(), (Shape{3, 4, 7}));
  // Concat pool puts the max first.
  Tensor x = rand({1, 2, 3, 3});
  Tensor c = AdaptiveConcatPool2d()(x).flatten(1);
  EXPECT_TRUE(all_close(c.slice(1, 0, 2), max(x, {2, 3}), 0, 0));
  EXPECT_TRUE(all_close(c.slice(1, 2, 4), mean(x, {2, 3}), 1e-7, 1e-6));
}

}  // namespace
}  // namespace cudl
