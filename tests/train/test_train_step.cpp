// TrainStep (train/train_step.h): eager on the CPU, with exactly the results of the plain
// zero_grad/forward/backward/step sequence (also under bfloat16 autocast); on CUDA, steps
// replayed from a captured graph give the losses, parameters, optimiser state and random draws
// of eager steps, in float32 and in mixed precision (the CUDA tests skip with their reason
// without a GPU).
#include <gtest/gtest.h>

#include "layers/layers.h"
#include "optim/optim.h"
#include "tensor/ops.h"
#include "tensor/ops/conv.h"
#include "tests/common/test_util.h"
#include "train/train_step.h"

namespace cudl::train {
namespace {

using testing::all_close;

// conv-bn-relu-pool, then a head with dropout: every kind of op of the real model.
std::shared_ptr<Sequential> small_model(Generator* gen) {
  return sequential({std::make_shared<Conv2d>(3, 8, 3, Conv2dOptions().padding(1).bias(false)),
                     std::make_shared<BatchNorm2d>(8), std::make_shared<ReLU>(),
                     std::make_shared<MaxPool2d>(2, 2), std::make_shared<AdaptiveAvgPool2d>(1),
                     std::make_shared<Flatten>(), std::make_shared<Dropout>(0.5, gen),
                     std::make_shared<Linear>(8, 4, true, gen)});
}

struct Trainer {
  Generator gen{3};
  std::shared_ptr<Sequential> model;
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<TrainStep> step;

  Trainer(Device device, bool graph, bool mixed = false, bool channels_last = false) {
    Generator init(11);
    model = small_model(&gen);
    for (auto& [name, p] : model->named_parameters()) {
      NoGradGuard ng;
      if (p.dim() > 1) uniform_(p, -0.3, 0.3, &init);
    }
    model->to(device);
    model->train();
    AdamWOptions o;
    o.lr = 1e-2;
    opt = std::make_unique<AdamW>(model->parameters(), o);
    TrainStepOptions so;
    so.cuda_graph = graph;
    so.mixed_precision = mixed;
    so.channels_last = channels_last;
    step = std::make_unique<TrainStep>(
        *model, *opt,
        [](const Tensor& l, const Tensor& t) { return binary_cross_entropy_with_logits(l, t); },
        std::vector<Generator*>{&gen}, device, so);
  }
};

// Every pair of same-named tensors (parameters, buffers, optimiser state) agrees.
void expect_close(const std::vector<std::pair<std::string, Tensor>>& a,
                  const std::vector<std::pair<std::string, Tensor>>& b, double atol, double rtol,
                  const char* what = "") {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].first, b[k].first);
    EXPECT_TRUE(all_close(a[k].second.to(Device::cpu()), b[k].second.to(Device::cpu()), atol, rtol))
        << a[k].first << what;
  }
}

// Batch i: images and 0/1 targets, the same for every run.
std::pair<Tensor, Tensor> batch(int i, Device device) {
  Generator g(100 + i);
  Tensor x = empty({6, 3, 12, 12}), y = empty({6, 4});
  uniform_(x, -1, 1, &g);
  bernoulli_(y, 0.4, &g);
  return {x.to(device), y.to(device)};
}

TEST(TrainStep, OnTheCpuItIsThePlainEagerStep) {
  Trainer a(Device::cpu(), true), b(Device::cpu(), true);
  EXPECT_EQ(a.step->reason(), "cpu device");
  for (int i = 0; i < 4; ++i) {
    auto [x, y] = batch(i, Device::cpu());
    a.opt->set_lr(1e-2 / (i + 1));
    b.opt->set_lr(1e-2 / (i + 1));
    TrainStep::Result r = a.step->run(x, y);
    b.opt->zero_grad();
    Tensor loss = binary_cross_entropy_with_logits((*b.model)(x), y);
    loss.backward();
    b.opt->step();
    EXPECT_EQ(r.loss.item(), loss.item()) << "step " << i;
    EXPECT_EQ(r.logits.shape(), (Shape{6, 4}));
  }
  EXPECT_FALSE(a.step->graphed());
  expect_close(a.model->named_parameters(), b.model->named_parameters(), 0, 0);
  EXPECT_EQ(a.gen.offset(), b.gen.offset());
}

TEST(TrainStep, MixedPrecisionIsTheStepUnderAutocastWithFloat32WeightsAndLogits) {
  Trainer a(Device::cpu(), true, true), b(Device::cpu(), true), fp32(Device::cpu(), true);
  double first = 0, last = 0, first32 = 0, last32 = 0;
  const int steps = 30;
  for (int i = 0; i < steps; ++i) {
    auto [x, y] = batch(i % 3, Device::cpu());
    TrainStep::Result r = a.step->run(x, y);
    b.opt->zero_grad();
    Tensor loss;
    {
      AutocastGuard autocast;
      Tensor logits = (*b.model)(x);
      EXPECT_EQ(logits.dtype(), kBFloat16);
      loss = binary_cross_entropy_with_logits(logits.to(kFloat32), y);
    }
    loss.backward();
    b.opt->step();
    EXPECT_EQ(r.loss.item(), loss.item()) << "step " << i;
    EXPECT_EQ(r.loss.dtype(), kFloat32);
    EXPECT_EQ(r.logits.dtype(), kFloat32);
    EXPECT_FALSE(r.logits.requires_grad());
    const double l32 = fp32.step->run(x, y).loss.item();
    if (i < 3) first += r.loss.item(), first32 += l32;
    if (i >= steps - 3) last += r.loss.item(), last32 += l32;
  }
  expect_close(a.model->named_parameters(), b.model->named_parameters(), 0, 0);
  for (const auto& [name, p] : a.model->named_parameters()) EXPECT_EQ(p.dtype(), kFloat32) << name;
  for (const auto& [name, s] : a.opt->state_dict()) {
    if (s.numel() > 1) {
      EXPECT_EQ(s.dtype(), kFloat32) << name;
    }
  }
  // It learns as float32 does: the loss of the same three batches falls by a similar amount.
  std::printf("loss over the first / last 3 steps: mixed %.4f -> %.4f, float32 %.4f -> %.4f\n",
              first / 3, last / 3, first32 / 3, last32 / 3);
  EXPECT_LT(last, 0.9 * first);
  EXPECT_NEAR(last / first, last32 / first32, 0.02);
}

// Channels-last steps (the images converted inside the step) are the row-major ones: the same
// losses, weights and statistics, bit for bit on these batches (see the ResNet body's test).
TEST(TrainStep, ChannelsLastStepsAreTheRowMajorOnes) {
  for (const bool mixed : {false, true}) {
    SCOPED_TRACE(mixed ? "bf16 mixed precision" : "float32");
    Trainer cl(Device::cpu(), true, mixed, true), rm(Device::cpu(), true, mixed);
    for (int i = 0; i < 5; ++i) {
      auto [x, y] = batch(i, Device::cpu());
      const double lc = cl.step->run(x, y).loss.item(), lr = rm.step->run(x, y).loss.item();
      EXPECT_EQ(lc, lr) << "step " << i;
    }
    expect_close(cl.model->named_parameters(), rm.model->named_parameters(), 0, 0);
    expect_close(cl.model->named_buffers(), rm.model->named_buffers(), 0, 0);
  }
}

TEST(TrainStep, PrepareReplayWithoutACaptureIsAnError) {
  Tensor p = ones({3}, TensorOptions().requires_grad(true));
  AdamW opt({p});
  sum(mul(p, p)).backward();
  opt.step();
  EXPECT_ERROR_HAS(opt.prepare_replay(), "captured");
}

// cuDNN settings under which two GPU runs of the same steps compare closely: heuristics (the
// same algorithms in both), no TF32, and only deterministic algorithms (some backward ones add
// partial sums with atomics, in an order that changes between runs; AdamW turns a near-zero
// gradient's changed sign into a step of lr).
struct ReproducibleConvolutions {
  ReproducibleConvolutions() {
    set_conv_benchmark(false);
    set_conv_allow_tf32(false);
    set_conv_deterministic(true);
  }
  ~ReproducibleConvolutions() { set_conv_deterministic(false); }
};

TEST(TrainStepCuda, GraphReplaysMatchEagerSteps) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  ReproducibleConvolutions convs;
  Trainer graphed(gpu, true), eager(gpu, false);
  EXPECT_EQ(eager.step->reason(), "disabled");
  for (int i = 0; i < 7; ++i) {
    auto [x, y] = batch(i, gpu);
    for (Trainer* r : {&graphed, &eager}) {
      r->opt->set_lr(1e-2 * (1.0 + 0.5 * (i % 3)));  // a schedule: each replay must see its lr
      r->opt->set_momentum(0.9 - 0.02 * i);
    }
    const double lg = graphed.step->run(x, y).loss.item();
    const double le = eager.step->run(x, y).loss.item();
    EXPECT_NEAR(lg, le, 1e-6 * std::max(1.0, std::abs(le))) << "step " << i;
  }
  EXPECT_TRUE(graphed.step->graphed()) << graphed.step->reason();
  EXPECT_EQ(graphed.gen.offset(), eager.gen.offset()) << "dropout drew as many numbers";
  expect_close(graphed.model->named_parameters(), eager.model->named_parameters(), 1e-6, 1e-5);
  expect_close(graphed.model->named_buffers(), eager.model->named_buffers(), 1e-6, 1e-5);  // BN
  expect_close(graphed.opt->state_dict(), eager.opt->state_dict(), 1e-6, 1e-5);
  // A batch of another size runs eagerly, and the graph keeps working after it.
  auto [x5, y5] = batch(20, gpu);
  Tensor xs = x5.narrow(0, 0, 5), ys = y5.narrow(0, 0, 5);
  EXPECT_TRUE(std::isfinite(graphed.step->run(xs.contiguous(), ys.contiguous()).loss.item()));
  auto [x6, y6] = batch(21, gpu);
  EXPECT_TRUE(std::isfinite(graphed.step->run(x6, y6).loss.item()));
}

TEST(TrainStepCuda, MixedPrecisionGraphReplaysMatchEagerSteps) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  ReproducibleConvolutions convs;
  Trainer graphed(gpu, true, true), eager(gpu, false, true);
  for (int i = 0; i < 6; ++i) {
    auto [x, y] = batch(i, gpu);
    TrainStep::Result r = graphed.step->run(x, y);
    EXPECT_EQ(r.logits.dtype(), kFloat32);
    const double lg = r.loss.item();
    const double le = eager.step->run(x, y).loss.item();
    // The same kernels on the same data; the bound leaves room for a bfloat16 shape for which
    // cuDNN has no deterministic algorithm (a warning says so), whose atomic adds may move a
    // bfloat16 gradient by one ulp (0.4%).
    EXPECT_NEAR(lg, le, 1e-4 * std::max(1.0, std::abs(le))) << "step " << i;
  }
  EXPECT_TRUE(graphed.step->graphed()) << graphed.step->reason();
  expect_close(graphed.model->named_parameters(), eager.model->named_parameters(), 1e-4, 1e-3);
  expect_close(graphed.model->named_buffers(), eager.model->named_buffers(), 1e-4, 1e-3);
  // And the GPU's mixed precision step is the CPU's, up to accumulation order.
  Trainer cpu(Device::cpu(), true, true), gpu_eager(gpu, false, true);
  for (int i = 0; i < 3; ++i) {
    auto [x, y] = batch(i, Device::cpu());
    const double lc = cpu.step->run(x, y).loss.item();
    const double lgpu = gpu_eager.step->run(x.to(gpu), y.to(gpu)).loss.item();
    EXPECT_NEAR(lgpu, lc, 2e-2 * std::max(1.0, std::abs(lc))) << "step " << i;
  }
}

// Channels-last on the GPU: graph replays of the channels-last step (cuDNN's NHWC convolutions
// and batch norm, cudl's channels-last kernels) follow eager row-major steps, in float32
// without TF32 and in bf16 mixed precision.
TEST(TrainStepCuda, ChannelsLastGraphReplaysFollowRowMajorSteps) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  ReproducibleConvolutions convs;
  for (const bool mixed : {false, true}) {
    SCOPED_TRACE(mixed ? "bf16 mixed precision" : "float32");
    Trainer cl(gpu, true, mixed, true), rm(gpu, false, mixed);
    const double tol = mixed ? 2e-2 : 1e-4;
    for (int i = 0; i < 6; ++i) {
      auto [x, y] = batch(i, gpu);
      const double lc = cl.step->run(x, y).loss.item(), lr = rm.step->run(x, y).loss.item();
      EXPECT_NEAR(lc, lr, tol * std::max(1.0, std::abs(lr))) << "step " << i;
    }
    EXPECT_TRUE(cl.step->graphed()) << cl.step->reason();
    expect_close(cl.model->named_parameters(), rm.model->named_parameters(), tol, tol * 10);
    expect_close(cl.model->named_buffers(), rm.model->named_buffers(), tol, tol * 10);
  }
}

TEST(TrainStepCuda, AFailedCaptureFallsBackToEagerStepsWithNothingLost) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const Device gpu = Device::cuda(0);
  ReproducibleConvolutions convs;
  Trainer broken(gpu, true), eager(gpu, false);
  // A loss that reads a value on the host: allowed eagerly, impossible inside a capture.
  broken.step = std::make_unique<TrainStep>(
      *broken.model, *broken.opt,
      [](const Tensor& l, const Tensor& t) {
        Tensor loss = binary_cross_entropy_with_logits(l, t);
        (void)loss.item();
        return loss;
      },
      std::vector<Generator*>{&broken.gen}, gpu, TrainStepOptions());
  for (int i = 0; i < 5; ++i) {
    auto [x, y] = batch(i, gpu);
    const double lb = broken.step->run(x, y).loss.item();
    const double le = eager.step->run(x, y).loss.item();
    EXPECT_NEAR(lb, le, 1e-6 * std::max(1.0, std::abs(le))) << "step " << i;
  }
  EXPECT_FALSE(broken.step->graphed());
  EXPECT_EQ(broken.step->reason().rfind("capture failed", 0), 0u) << broken.step->reason();
  EXPECT_EQ(broken.gen.offset(), eager.gen.offset());
  expect_close(broken.opt->state_dict(), eager.opt->state_dict(), 1e-6, 1e-5,
               ": the failed capture must not have counted a step");
}

}  // namespace
}  // namespace cudl::train
