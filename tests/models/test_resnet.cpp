// The model classes: names and shapes equal torchvision's (via the specs the weight checks
// use), the summary, freezing, errors that name the layer, and blocks whose fused batch norm,
// residual add and ReLU give the separate modules' results. No PyTorch needed.
#include <gtest/gtest.h>

#include "models/model_io.h"
#include "models/resnet.h"
#include "models/summary.h"
#include "tensor/autocast.h"
#include "tests/common/test_util.h"
#include "tests/models/weights_test_util.h"

namespace cudl::models {
namespace {

::testing::AssertionResult same_spec(const std::vector<TensorSpec>& a, const std::vector<TensorSpec>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << a.size() << " entries vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].dtype != b[i].dtype)
      return ::testing::AssertionFailure()
             << "entry " << i << ": " << a[i].name << " " << shape_str(a[i].shape) << " "
             << toString(a[i].dtype) << " vs " << b[i].name << " " << shape_str(b[i].shape) << " "
             << toString(b[i].dtype);
  }
  return ::testing::AssertionSuccess();
}

int64_t numel_sum(const std::vector<TensorSpec>& spec, bool params_only) {
  int64_t n = 0;
  for (const TensorSpec& s : spec) {
    bool buffer = s.name.find("running_") != std::string::npos ||
                  s.name.find("num_batches_tracked") != std::string::npos;
    if (!params_only || !buffer) n += numel_of(s.shape);
  }
  return n;
}

TEST(ResNet, StateDictsAreTorchvisions) {
  for (const char* arch : {"resnet18", "resnet34", "resnet50"}) {
    SCOPED_TRACE(arch);
    Generator g(1);
    EXPECT_TRUE(same_spec(spec_of(*resnet(parse_arch(arch), 1000, &g)), torchvision_resnet_spec(arch, 1000)));
    EXPECT_TRUE(same_spec(spec_of(*notebook_model(parse_arch(arch), 4, &g)), fastai_resnet_spec(arch, 4)));
  }
  // Any number of classes; torchvision's published parameter count of resnet18.
  Generator g(1);
  EXPECT_TRUE(same_spec(spec_of(*resnet(Arch::kResNet18, 7, &g)), torchvision_resnet_spec("resnet18", 7)));
  int64_t n = 0;
  for (const Tensor& p : resnet(Arch::kResNet18, 1000, &g)->parameters()) n += p.numel();
  EXPECT_EQ(n, 11689512);
  EXPECT_THROW(parse_arch("resnet19"), Error);
}

TEST(ResNet, SummaryListsLayersInExecutionOrderWithTotals) {
  Generator g(2);
  auto model = notebook_model(Arch::kResNet18, 4, &g);
  ModelSummary s = summarize(*model, {1, 3, 300, 300});
  ASSERT_FALSE(s.rows.empty());
  EXPECT_EQ(s.rows.front().name, "body.conv1");
  EXPECT_EQ(s.rows.front().type, "Conv2d");
  EXPECT_EQ(s.rows.front().output_shape, (Shape{1, 64, 150, 150}));
  EXPECT_EQ(s.rows.front().params, 64 * 3 * 7 * 7);
  EXPECT_TRUE(s.rows.front().trainable);
  EXPECT_EQ(s.rows.back().name, "head.8");
  EXPECT_EQ(s.rows.back().output_shape, (Shape{1, 4}));
  EXPECT_EQ(s.rows.back().params, 512 * 4 + 4);
  // The downsample runs after conv2/bn2 of the first block of layer2, as in the forward.
  std::vector<std::string> order;
  for (const SummaryRow& r : s.rows) order.push_back(r.name);
  auto pos = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  EXPECT_LT(pos("body.layer2.0.bn2"), pos("body.layer2.0.downsample.0"));
  EXPECT_EQ(s.rows[pos("body.layer4.1.bn2")].output_shape, (Shape{1, 512, 10, 10}));
  // ap and mp of the concat pool are the leaves; the head sees 1024 features.
  EXPECT_EQ(s.rows[pos("head.1")].output_shape, (Shape{1, 1024}));
  EXPECT_EQ(s.total_params, numel_sum(fastai_resnet_spec("resnet18", 4), true));
  EXPECT_EQ(s.total_params, 11706436);
  EXPECT_EQ(s.trainable_params, s.total_params);
  EXPECT_TRUE(model->is_training()) << "summary must restore the training mode";
  std::string text = s.to_string();
  EXPECT_NE(text.find("Total params: 11,706,436"), std::string::npos) << text;

  model->freeze("body");
  ModelSummary f = summarize(*model, {1, 3, 64, 64});
  EXPECT_EQ(f.trainable_params, 2048 + 1024 * 512 + 512 + 1024 + 512 * 4 + 4);
  EXPECT_NE(f.to_string().find("Total non-trainable params: 11,176,512"), std::string::npos);
}

TEST(ResNet, BadInputNamesTheLayer) {
  Generator g(3);
  auto model = notebook_model(Arch::kResNet18, 4, &g);
  try {
    (*model)(zeros({2, 1, 64, 64}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("body.conv1 (Conv2d(3, 64, kernel_size=(7, 7)"), std::string::npos) << m;
    EXPECT_NE(m.find("got (2, 1, 64, 64)"), std::string::npos) << m;
  }
}

TEST(ResNet, ForwardShapesAndBatchNormInTrainMode) {
  Generator g(4);
  auto model = notebook_model(Arch::kResNet18, 3, &g);
  Tensor x = randn({2, 3, 64, 96}, {}, &g);
  Tensor y = (*model)(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_TRUE(y.requires_grad());
  model->eval();
  NoGradGuard ng;
  EXPECT_EQ((*model)(x.slice(0, 0, 1)).shape(), (Shape{1, 3}));  // eval works on one image
}

TEST(ModelIo, WeightsRoundTripThroughHdf5) {
  testing::ScratchDir dir;
  Generator g(5);
  auto a = notebook_model(Arch::kResNet18, 4, &g);
  auto b = notebook_model(Arch::kResNet18, 4, &g);  // different initialisation
  std::string path = dir / "m.h5";
  save_weights(path, named_state(*a));
  load_weights_into(*b, path);
  for (const auto& [name, t] : a->state_dict())
    EXPECT_TRUE(testing::all_close(b->state_dict().at(name), t, 0, 0)) << name;
  // A file for another architecture is refused with every mismatch listed.
  auto c = notebook_model(Arch::kResNet34, 4, &g);
  try {
    load_weights_into(*c, path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("body.layer1.2.conv1.weight"), std::string::npos) << e.what();
  }
}

// Loads `path` into a new notebook model with `load` and checks that a body tensor now equals
// `source`'s `source_name` and that the head's linear layers kept their initialisation.
void expect_body_loaded_head_kept(void (*load)(Module&, const std::string&), const std::string& path,
                                  Module& source, const std::string& source_name, Generator& g) {
  auto model = notebook_model(Arch::kResNet18, 4, &g);
  const Tensor head4 = model->state_dict().at("head.4.weight").clone();
  const Tensor head8 = model->state_dict().at("head.8.weight").clone();
  load(*model, path);
  EXPECT_TRUE(testing::all_close(model->state_dict().at("body.layer3.1.conv2.weight"),
                                 source.state_dict().at(source_name), 0, 0));
  EXPECT_TRUE(testing::all_close(model->state_dict().at("head.4.weight"), head4, 0, 0));
  EXPECT_TRUE(testing::all_close(model->state_dict().at("head.8.weight"), head8, 0, 0));
}

TEST(ModelIo, BackboneGoesIntoTheBodyOnly) {
  testing::ScratchDir dir;
  Generator g(6);
  auto classifier = resnet(Arch::kResNet18, 1000, &g);
  std::string path = dir / "tv.h5";
  save_weights(path, named_state(*classifier));
  expect_body_loaded_head_kept(load_backbone_into, path, *classifier, "layer3.1.conv2.weight", g);
}

// A whole notebook model's body, or a file of body.* tensors alone, goes into the body; the
// head keeps its initialisation; a file missing a body tensor is refused, naming it.
TEST(ModelIo, BodyOfAWholeModelGoesIntoTheBodyOnly) {
  testing::ScratchDir dir;
  Generator g(8);
  auto trained = notebook_model(Arch::kResNet18, 3, &g);  // another number of classes
  std::string whole = dir / "whole.h5", body = dir / "body.h5", partial = dir / "partial.h5";
  save_weights(whole, named_state(*trained));
  NamedTensors body_only, missing_one;
  for (const auto& [name, t] : named_state(*trained)) {
    if (name.rfind("body.", 0) != 0) continue;
    body_only.emplace_back(name, t);
    if (name != "body.layer2.0.bn1.running_var") missing_one.emplace_back(name, t);
  }
  save_weights(body, body_only);
  save_weights(partial, missing_one);
  for (const std::string& path : {whole, body}) {
    SCOPED_TRACE(path);
    expect_body_loaded_head_kept(load_body_into, path, *trained, "body.layer3.1.conv2.weight", g);
  }
  auto model = notebook_model(Arch::kResNet18, 4, &g);
  EXPECT_ERROR_HAS(load_body_into(*model, partial), "body.layer2.0.bn1.running_var");
}

// A ResNet block's fused forward equals the separate modules' (run while a forward hook
// watches, which turns the fusion off), and both see the same outputs and gradients.
TEST(CpuBatchNorm, ResNetBlocksFuseWithoutChangingResults) {
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    Generator g1(7), g2(7);
    auto fused = resnet_body(Arch::kResNet18, &g1);
    auto plain = resnet_body(Arch::kResNet18, &g2);
    const Tensor x = testing::rand64({2, 3, 40, 40}, 507).to(kFloat32);
    Tensor yf, yp;
    {
      AutocastGuard autocast(dt == kBFloat16);
      yf = (*fused)(x);
      ForwardHookGuard watch([](const Module&, const Tensor&, const Tensor&) {});
      yp = (*plain)(x);
    }
    EXPECT_EQ(yf.dtype(), dt);
    EXPECT_TRUE(testing::all_close(yf, yp, 0, 0)) << "output";
    sum(yf.to(kFloat32)).backward();
    sum(yp.to(kFloat32)).backward();
    auto pf = fused->named_parameters(), pp = plain->named_parameters();
    ASSERT_EQ(pf.size(), pp.size());
    for (size_t i = 0; i < pf.size(); ++i)
      EXPECT_TRUE(testing::all_close(pf[i].second.grad(), pp[i].second.grad(), 0, 0)) << pf[i].first;
  }
}

// The whole ResNet-18 body fed a channels-last image: every 4-D activation stays channels-last
// (checked layer by layer), and the output and every parameter gradient are those of the
// row-major run, bit for bit. (Batch norm's channels-last sums group the same elements
// differently, see tensor/ops/batch_norm_kernels.h; their double totals round to the same float
// statistics here, which other data could in principle break by one bit.)
TEST(ChannelsLast, ResNetBodyStaysChannelsLastWithTheRowMajorResults) {
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    Generator g1(7), g2(7);
    auto cl = resnet_body(Arch::kResNet18, &g1);
    auto rm = resnet_body(Arch::kResNet18, &g2);
    const Tensor x = testing::rand64({2, 3, 40, 40}, 508).to(kFloat32);
    const Tensor x_cl = x.contiguous(MemoryFormat::kChannelsLast);
    AutocastGuard autocast(dt == kBFloat16);
    {
      // Layer by layer (the hook runs the blocks unfused): 4-D outputs that are not both
      // layouts at once must be channels-last.
      int checked = 0;
      ForwardHookGuard watch([&](const Module& m, const Tensor&, const Tensor& out) {
        if (out.dim() != 4 || out.is_contiguous()) return;
        EXPECT_TRUE(out.is_contiguous(MemoryFormat::kChannelsLast))
            << m.name() << " " << m.type_name() << " strides " << shape_str(out.strides());
        ++checked;
      });
      NoGradGuard ng;
      (*cl)(x_cl);
      EXPECT_GT(checked, 40) << "every conv, batch norm, ReLU, pool and block";
    }
    const Tensor y_cl = (*cl)(x_cl), y_rm = (*rm)(x);
    EXPECT_TRUE(y_cl.is_contiguous(MemoryFormat::kChannelsLast));
    EXPECT_TRUE(testing::all_close(y_cl.to(kFloat64), y_rm.to(kFloat64), 0, 0)) << "output";
    sum(y_cl.to(kFloat32) * y_cl.to(kFloat32)).backward();
    sum(y_rm.to(kFloat32) * y_rm.to(kFloat32)).backward();
    auto pc = cl->named_parameters(), pr = rm->named_parameters();
    ASSERT_EQ(pc.size(), pr.size());
    for (size_t i = 0; i < pc.size(); ++i) {
      const Tensor gc = pc[i].second.grad(), gr = pr[i].second.grad();
      EXPECT_TRUE(gc.is_contiguous()) << pc[i].first << ": parameters keep row-major gradients";
      EXPECT_TRUE(testing::all_close(gc, gr, 0, 0)) << pc[i].first;
    }
  }
}

}  // namespace
}  // namespace cudl::models
