// The optimisers on the CPU: hand-computed steps, the decoupled decay, parameter groups,
// zero_grad, skipping parameters without a gradient, the multi-tensor pass against a
// per-tensor formula across chunk boundaries, state export/restore, and bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/optim.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using ::cudl::testing::error_of;

using testing::all_close;

Tensor param(const std::vector<double>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}).set_requires_grad(); }
Tensor vec(const std::vector<double>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}); }

TEST(Optim, SgdMomentumByHand) {
  // lr 0.1, momentum 0.9, wd 0.1, constant gradient (0.5, -1):
  //   step 1: d = g + 0.1 p = (0.6, -0.8); buf = d; p = (0.94, 2.08)
  //   step 2: d = (0.594, -0.792); buf = 0.9 (0.6, -0.8) + d = (1.134, -1.512)
  Tensor p = param({1.0, 2.0});
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.1;
  SGD opt({p}, o);
  for (int s = 0; s < 2; ++s) {
    p.set_grad(vec({0.5, -1.0}));
    opt.step();
  }
  EXPECT_TRUE(all_close(p, vec({0.94 - 0.1134, 2.08 + 0.1512}), 1e-15, 1e-14));
  // Nesterov, no decay: step 1: buf = g, p -= lr (g + 0.9 g).
  Tensor q = param({1.0});
  o.weight_decay = 0;
  o.nesterov = true;
  SGD nes({q}, o);
  q.set_grad(vec({2.0}));
  nes.step();
  EXPECT_NEAR(q.item(), 1.0 - 0.1 * 3.8, 1e-15);
}

TEST(Optim, AdamFirstStepMovesByLrTimesSign) {
  // After one step m_hat = g and v_hat = g^2: p -= lr * g / (|g| + eps).
  Tensor p = param({1.0, -2.0, 3.0});
  AdamOptions o;
  o.lr = 0.01;
  Adam opt({p}, o);
  p.set_grad(vec({0.3, -4.0, 1e-9}));
  opt.step();
  EXPECT_TRUE(all_close(p, vec({1.0 - 0.01 * 0.3 / (0.3 + 1e-8), -2.0 + 0.01 * 4.0 / (4.0 + 1e-8),
                                3.0 - 0.01 * 1e-9 / (1e-9 + 1e-8)}),
                        1e-15, 1e-12));
}

TEST(Optim, AdamWDecayIsDecoupledAdamDecayIsCoupled) {
  // Zero gradient: AdamW only decays, p *= 1 - lr * wd; Adam's L2 term becomes the gradient
  // and the normalised step moves p by ~lr towards 0.
  Tensor a = param({2.0, -4.0}), b = param({2.0, -4.0});
  AdamWOptions ow;
  ow.lr = 0.1;
  ow.weight_decay = 0.5;
  AdamW adamw({a}, ow);
  AdamOptions oa;
  oa.lr = 0.1;
  oa.weight_decay = 0.5;
  Adam adam({b}, oa);
  a.set_grad(vec({0.0, 0.0}));
  b.set_grad(vec({0.0, 0.0}));
  adamw.step();
  adam.step();
  EXPECT_TRUE(all_close(a, vec({2.0 * 0.95, -4.0 * 0.95}), 0, 1e-15));
  EXPECT_TRUE(all_close(b, vec({2.0 - 0.1, -4.0 + 0.1}), 1e-8, 0));
  EXPECT_STREQ(adamw.name(), "AdamW");
  EXPECT_STREQ(adam.name(), "Adam");
  // fastai v1 defaults for AdamW: betas (0.9, 0.99), wd 0.01.
  EXPECT_EQ(AdamWOptions().beta2, 0.99);
  EXPECT_EQ(AdamWOptions().weight_decay, 0.01);
}

TEST(Optim, GroupsHaveTheirOwnLrAndDecay) {
  // Two groups under AdamW with zero gradients: group 0 decays with its lr and wd, group 1
  // (e.g. BatchNorm parameters, wd 0) does not move.
  Tensor w = param({1.0}), bn = param({1.0});
  ParamGroup decayed({w}, {"conv.weight"});
  decayed.lr = 0.2;
  ParamGroup no_decay({bn}, {"bn.weight"});
  no_decay.weight_decay = 0.0;
  AdamWOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.25;
  AdamW opt({decayed, no_decay}, o);
  EXPECT_EQ(opt.lr(0), 0.2);
  EXPECT_EQ(opt.lr(1), 0.1);  // default
  EXPECT_EQ(opt.weight_decay(0), 0.25);
  EXPECT_EQ(opt.weight_decay(1), 0.0);
  EXPECT_EQ(opt.momentum(1), 0.9);  // beta1
  w.set_grad(vec({0.0}));
  bn.set_grad(vec({0.0}));
  opt.step();
  EXPECT_DOUBLE_EQ(w.item(), 1.0 - 0.2 * 0.25);
  EXPECT_DOUBLE_EQ(bn.item(), 1.0);
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(0), 0.5);
  EXPECT_EQ(opt.lr(1), 0.5);
  EXPECT_EQ(opt.param_names(1)[0], "bn.weight");
}

TEST(Optim, ParametersWithoutGradientAreSkipped) {
  Tensor a = param({1.0}), b = param({1.0});
  AdamW opt(std::vector<Tensor>{a, b});
  a.set_grad(vec({1.0}));
  opt.step();
  EXPECT_NE(a.item(), 1.0);
  EXPECT_EQ(b.item(), 1.0);  // no gradient: no decay either
  std::vector<NamedTensor> st = opt.state_dict();
  int entries_for_b = 0;
  for (auto& [name, t] : st) entries_for_b += name.rfind("state.group0.1.", 0) == 0;
  EXPECT_EQ(entries_for_b, 0);
}

TEST(Optim, ZeroGradInPlaceOrToNone) {
  Tensor a = param({1.0, 2.0});
  SGDOptions o;
  SGD opt({a}, o);
  a.set_grad(vec({3.0, 4.0}));
  const void* storage = a.grad().data_ptr();
  opt.zero_grad();
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().data_ptr(), storage);  // same buffer, zeroed (torch 1.13's default)
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{0, 0}));
  opt.zero_grad(/*set_to_none=*/true);
  EXPECT_FALSE(a.grad().defined());
}

// Adam by whole-tensor core ops, for comparison with the fused multi-tensor pass.
void adam_reference(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, int step, double lr,
                    double b1, double b2, double eps, double wd) {
  Tensor pd = p.detach() * (1 - lr * wd);
  m = m * b1 + g * (1 - b1);
  v = v * b2 + g * g * (1 - b2);
  Tensor denom = sqrt(v) / std::sqrt(1 - std::pow(b2, step)) + eps;
  Tensor next = pd - m * (lr / (1 - std::pow(b1, step))) / denom;
  NoGradGuard ng;
  p.copy_(next);
}

TEST(Optim, MultiTensorPassAcrossChunkBoundaries) {
  // Sizes around the 8192-element chunk, an empty tensor, and a large one split in several
  // chunks that different threads update.
  const std::vector<int64_t> sizes = {1, 8191, 0, 8192, 8193, 40000};
  std::vector<Tensor> params, mine, ms, vs;
  Generator gen(4);
  for (int64_t n : sizes) {
    Tensor p = randn({n}, kFloat64, &gen);
    params.push_back(p.clone().set_requires_grad());
    mine.push_back(p.clone());
    ms.push_back(zeros({n}, kFloat64));
    vs.push_back(zeros({n}, kFloat64));
  }
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  AdamW opt(params, o);
  for (int s = 1; s <= 3; ++s) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      Tensor g = randn({sizes[k]}, kFloat64, &gen);
      params[k].set_grad(g);
      adam_reference(mine[k], g, ms[k], vs[k], s, 0.01, 0.9, 0.99, 1e-8, 0.1);
    }
    opt.step();
    for (size_t k = 0; k < sizes.size(); ++k)
      ASSERT_TRUE(all_close(params[k], mine[k], 1e-14, 1e-12)) << "tensor " << k << " step " << s;
  }
}

TEST(Optim, StateExportRestoreContinuesIdentically) {
  Generator gen(5);
  Tensor w0 = randn({3, 2}, kFloat32, &gen), b0 = randn({2}, kFloat32, &gen);
  std::vector<Tensor> grads;
  for (int s = 0; s < 10; ++s) grads.push_back(randn({3, 2}, kFloat32, &gen)), grads.push_back(randn({2}, kFloat32, &gen));
  auto make = [&](Tensor& w, Tensor& b) {
    w = w0.clone().set_requires_grad();
    b = b0.clone().set_requires_grad();
    ParamGroup g({w, b}, {"fc.weight", "fc.bias"});
    return std::make_unique<AdamW>(std::vector<ParamGroup>{g});
  };
  auto run = [&](Optimizer& opt, Tensor& w, Tensor& b, int from, int to) {
    for (int s = from; s < to; ++s) {
      w.set_grad(grads[2 * s]);
      b.set_grad(grads[2 * s + 1]);
      opt.step();
    }
  };
  Tensor wa, ba, wb, bb;
  auto a = make(wa, ba);
  run(*a, wa, ba, 0, 6);
  auto b = make(wb, bb);
  run(*b, wb, bb, 0, 3);
  // Export b after 3 steps into a fresh optimiser c over b's parameters (a checkpoint).
  std::vector<NamedTensor> st = b->state_dict();
  std::vector<std::string> names;
  for (auto& [n, t] : st) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "param_groups.0.lr", "param_groups.0.weight_decay", "param_groups.0.momentum",
                       "state.fc.weight.step", "state.fc.weight.exp_avg", "state.fc.weight.exp_avg_sq",
                       "state.fc.bias.step", "state.fc.bias.exp_avg", "state.fc.bias.exp_avg_sq"}));
  EXPECT_EQ(st[3].second.dtype(), kInt64);
  EXPECT_EQ(st[3].second.item(), 3.0);
  std::vector<NamedTensor> saved;
  for (auto& [n, t] : st) saved.emplace_back(n, t.clone());  // as if read back from a file
  Tensor wc = wb.detach().clone().set_requires_grad(), bc = bb.detach().clone().set_requires_grad();
  AdamW c({ParamGroup({wc, bc}, {"fc.weight", "fc.bias"})});
  c.load_state_dict(saved);
  run(c, wc, bc, 3, 6);
  EXPECT_TRUE(all_close(wc, wa, 0, 0));  // bit-identical to never having stopped
  EXPECT_TRUE(all_close(bc, ba, 0, 0));
}

TEST(Optim, LoadStateReportsEveryProblemAndChangesNothing) {
  Tensor w = zeros({3}).set_requires_grad(), b = zeros({2}).set_requires_grad();
  AdamW opt({ParamGroup({w, b}, {"w", "b"})});
  w.set_grad(ones({3}));
  b.set_grad(ones({2}));
  opt.step();
  std::vector<NamedTensor> st = opt.state_dict();
  std::vector<NamedTensor> bad;
  for (auto& [n, t] : st) {
    if (n == "state.w.exp_avg") bad.emplace_back(n, zeros({4}));     // wrong shape
    else if (n == "state.b.exp_avg_sq") continue;                     // incomplete
    else if (n == "param_groups.0.lr") bad.emplace_back(n, full({}, 123.0, kFloat64));
    else bad.emplace_back(n, t);
  }
  bad.emplace_back("state.conv.weight.exp_avg", zeros({1}));  // unknown
  const std::string e = error_of([&] { opt.load_state_dict(bad); });
  EXPECT_NE(e.find("3 problem(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("'state.w.exp_avg' has shape (4,) but the parameter has shape (3,)"), std::string::npos) << e;
  EXPECT_NE(e.find("incomplete state for parameter 'b': missing exp_avg_sq"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown entry 'state.conv.weight.exp_avg'"), std::string::npos) << e;
  EXPECT_EQ(opt.lr(0), 1e-3);  // the valid lr entry was not applied either
}

TEST(Optim, BadConstructionIsNamed) {
  Tensor a = zeros({2}).set_requires_grad();
  EXPECT_ERROR_HAS(SGD({a, a}, SGDOptions()), "appears in more than one place");
  EXPECT_ERROR_HAS(AdamW({ParamGroup({a, zeros({1})}, {"x", "x"})}), "name 'x' appears twice");
  EXPECT_ERROR_HAS(AdamW({ParamGroup({a}, {"x", "y"})}), "1 parameters but 2 names");
  EXPECT_ERROR_HAS(AdamW(std::vector<Tensor>{a * 2.0}), "not a leaf");
  EXPECT_ERROR_HAS(AdamW(std::vector<Tensor>{a, zeros({2}, kFloat64)}), "share one device and dtype");
  EXPECT_ERROR_HAS(AdamW(std::vector<Tensor>{zeros({2}, kInt64)}), "float32 or float64 expected");
  SGDOptions nes;
  nes.nesterov = true;
  EXPECT_ERROR_HAS(SGD({a}, nes), "Nesterov momentum needs momentum > 0");
  AdamOptions o;
  o.beta2 = 1.0;
  EXPECT_ERROR_HAS(Adam({a}, o), "beta2 1 outside [0, 1)");
  AdamW ok({a});
  EXPECT_ERROR_HAS(ok.set_lr(3, 0.1), "group 3 does not exist");
}

}  // namespace
}  // namespace cudl
