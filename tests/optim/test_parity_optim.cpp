// Level 3 of DESIGN.md for the optimisers: 20 steps of cudl's Adam, AdamW and SGD against
// torch.optim (tests/reference/optim.py, run by ctest first) on four float32 parameter tensors
// (one of 15003 elements, so two chunks of the multi-tensor pass) with the gradient sequence
// the script wrote; the parameters are compared after EVERY step and the optimiser state at
// the end. AdamW is RECIPE.md's decoupled decay, which the script reproduces by hand
// (p.mul_(1 - lr * wd), then torch's Adam without weight decay) and checks against AdamW.
// Also fastai v1's one-cycle schedule, stepped the way its callback does, against the closed
// form.
//
// Tolerances: the same float32 formula evaluated in a different order (torch fuses a*b+c into
// FMAs in its vectorised kernels; cudl rounds each operation) differs by an ulp or so per
// operation. Adam's step is lr * m_hat / (sqrt(v_hat) + eps), a ratio of similar rounding
// errors, so the per-step parameter change has relative error ~1e-6 and the parameters (O(1),
// moving by ~1e-2 per step) drift by a few ulp (2.4e-7 at most, seen). atol 1e-6 + rtol 1e-6 leaves a
// margin, while a wrong formula (eps before the bias correction, coupled instead of decoupled
// decay, a missed bias correction) is off by 1e-4 or more within the first steps. The moments
// and momentum buffers are running sums of terms that partly cancel, so their absolute error
// follows the size of the terms, not of the result: atol 1e-6 x the largest |entry| of the
// tensor (~8 ulp of the scale), rtol 1e-5. The schedule is double arithmetic on both sides:
// rtol 1e-12.
#include <gtest/gtest.h>

#include <cfloat>

#include <filesystem>

#include "optim/optim.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;
using testing::load_reference;

constexpr int kSteps = 20;
constexpr int kTensors = 4;

Tensor reference(const std::string& name) { return load_reference("optim", name); }

struct Params {
  std::vector<Tensor> params;
  std::vector<std::string> names;
};

Params fresh_params() {
  Params s;
  for (int k = 0; k < kTensors; ++k) {
    s.params.push_back(reference("p" + std::to_string(k) + "_init").set_requires_grad());
    s.names.push_back("p" + std::to_string(k));
  }
  return s;
}

// Runs kSteps steps of `opt` over s.params and compares each step with `config`'s trajectory.
void run_and_compare(const std::string& config, Optimizer& opt, Params& s, double grad_scale = 1.0) {
  std::vector<Tensor> grads, hist;
  for (int k = 0; k < kTensors; ++k) {
    grads.push_back(reference("g" + std::to_string(k)));
    hist.push_back(reference(config + "_p" + std::to_string(k)));
  }
  for (int step = 0; step < kSteps; ++step) {
    for (int k = 0; k < kTensors; ++k)
      s.params[k].set_grad((grads[k].select(0, step) * grad_scale).contiguous());
    opt.step();
    for (int k = 0; k < kTensors; ++k) {
      ASSERT_TRUE(all_close(s.params[k], hist[k].select(0, step), 1e-6, 1e-6))
          << config << ": tensor " << k << " after step " << step + 1;
    }
  }
  std::vector<NamedTensor> state = opt.state_dict();
  for (int k = 0; k < kTensors; ++k) {
    for (const char* buf : {"exp_avg", "exp_avg_sq", "momentum_buffer"}) {
      const std::string entry = "state.p" + std::to_string(k) + "." + buf;
      const std::string file = config + "_p" + std::to_string(k) + "_" + buf;
      // torch keeps no momentum buffer without momentum (cudl keeps an unused one).
      if (!std::filesystem::exists(testing::reference_dir("optim") + "/" + file + ".npy")) continue;
      bool found = false;
      for (auto& [name, t] : state) {
        if (name != entry) continue;
        found = true;
        Tensor expect = reference(file);
        const double scale = max(abs(expect)).item();
        EXPECT_TRUE(all_close(t, expect, 1e-6 * scale, 1e-5)) << config << " " << entry;
      }
      EXPECT_TRUE(found) << config << ": no " << entry << " in the state";
    }
  }
}

std::vector<ParamGroup> one_group(Params& s) { return {ParamGroup(s.params, s.names)}; }

TEST(Parity, Adam) {
  Params s = fresh_params();
  AdamOptions o;
  o.lr = 1e-2;
  Adam opt(one_group(s), o);
  run_and_compare("adam", opt, s);
}

TEST(Parity, AdamCoupledL2) {
  Params s = fresh_params();
  AdamOptions o;
  o.lr = 1e-2;
  o.beta2 = 0.99;
  o.weight_decay = 0.1;
  Adam opt(one_group(s), o);
  run_and_compare("adam_l2", opt, s);
}

TEST(Parity, AdamEpsAfterBiasCorrection) {
  // Gradients ~1e-3 and eps 1e-3: sqrt(v_hat) and eps are comparable, so eps's placement shows.
  Params s = fresh_params();
  AdamOptions o;
  o.lr = 1e-2;
  o.eps = 1e-3;
  Adam opt(one_group(s), o);
  run_and_compare("adam_eps", opt, s, 1e-3);
}

TEST(Parity, AdamWAsRecipe) {
  Params s = fresh_params();
  AdamWOptions o;  // betas (0.9, 0.99), eps 1e-8
  o.lr = 1e-2;
  o.weight_decay = 0.5;
  AdamW opt(one_group(s), o);
  run_and_compare("adamw_recipe", opt, s);
}

TEST(Parity, AdamWTwoGroups) {
  Params s = fresh_params();
  ParamGroup a({s.params[0], s.params[1]}, {"p0", "p1"});
  a.lr = 1e-2;
  a.weight_decay = 0.5;
  ParamGroup b({s.params[2], s.params[3]}, {"p2", "p3"});
  b.lr = 3e-3;
  b.weight_decay = 0.0;
  AdamW opt({a, b});
  run_and_compare("adamw_groups", opt, s);
}

TEST(Parity, Sgd) {
  struct Case {
    const char* name;
    double lr, momentum, dampening, wd;
    bool nesterov;
  };
  for (const Case& c : {Case{"sgd_momentum", 0.05, 0.9, 0, 1e-2, false},
                        Case{"sgd_nesterov", 0.05, 0.9, 0, 0, true},
                        Case{"sgd_dampening", 0.05, 0.9, 0.1, 0, false},
                        Case{"sgd_plain", 0.1, 0, 0, 0, false}}) {
    Params s = fresh_params();
    SGDOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.dampening = c.dampening;
    o.weight_decay = c.wd;
    o.nesterov = c.nesterov;
    SGD opt(one_group(s), o);
    run_and_compare(c.name, opt, s);
  }
}

// Each value is end + (start - end) / 2 (cos(pi pct) + 1). The reference's cos is NumPy's, which
// on CPUs with AVX-512 is its own vectorised one: it differs from the C library's by up to a few
// units in the last place (up to 3 near pct = 1 on an AVX-512 machine; on the AVX2 machines the
// test ran on before, a relative 1e-12 alone held). Where a phase ends, cos(pi pct) + 1 is small
// and those ulps are a large part of it: lr may differ by 8 ulp of cos near -1 (an ulp there is
// DBL_EPSILON / 2) times (start - end) / 2 <= lr_max / 2 besides a relative 1e-12 (measured:
// 3.3e-19 at lr 7e-8, 2 such ulp, against an allowance of 1.3e-18 there).
TEST(Parity, OneCycleMatchesFastaiStepping) {
  for (int n : {60, 3, 10, 1000}) {
    const std::string p = "onecycle_" + std::to_string(n);
    const std::vector<double> cfg = reference(p + "_cfg").to_vector<double>();
    OneCycleOptions o;
    o.pct_start = cfg[2];
    OneCycleSchedule s(cfg[1], n, o);
    const std::vector<double> lr = reference(p + "_lr").to_vector<double>(), mom = reference(p + "_mom").to_vector<double>();
    ASSERT_EQ(lr.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_NEAR(s.lr(i), lr[i], 1e-12 * lr[i] + 2 * DBL_EPSILON * cfg[1])
          << p << " iteration " << i;
      EXPECT_NEAR(*s.momentum(i), mom[i], 1e-12) << p << " iteration " << i;
    }
  }
}

}  // namespace
}  // namespace cudl
