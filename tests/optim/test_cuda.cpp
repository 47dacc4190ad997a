// Level 2 of DESIGN.md for the training kernels: every CUDA kernel of the losses, metrics and
// optimisers against its CPU twin on the same inputs. Each test skips with the reason when no
// GPU is present (and fails instead under CUDL_REQUIRE_CUDA=1, as scripts/gpu_check.sh runs).
//
// Tolerances: both backends evaluate the same functions (loss_math.h, optim_math.h), but CUDA's
// expf/log1pf may differ from glibc's by an ulp or two and nvcc contracts a*b+c into FMAs:
// float32 elementwise results atol 1e-6, rtol 1e-5. Reductions accumulate in double on both
// sides in a different order: rtol 1e-5 on float32 outputs. The optimisers are compared after
// several steps: the per-step ulp differences stay below atol 1e-6 / rtol 1e-5 (parameters are
// O(1)). Counts are integers and must be identical; average precision is computed by two
// different algorithms (sort on the CPU, pair counting on CUDA) from the same comparisons: 1e-12.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/optim.h"
#include "tensor/ops/loss.h"
#include "tensor/ops/metrics.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

Tensor gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
Tensor cpu(const Tensor& t) { return t.to(Device::cpu()); }

Tensor uniform(const Shape& s, uint64_t seed, double lo, double hi, DType dt = kFloat32) {
  Generator g(seed);
  Tensor t = empty(s, dt);
  return uniform_(t, lo, hi, &g);
}

// Logits with every extreme magnitude mixed into random values.
Tensor logits(int64_t rows, int64_t c, uint64_t seed) {
  std::vector<float> v = uniform({rows, c}, seed, -6, 6).to_vector<float>();
  const float extreme[] = {-1000.f, -100.f, -30.f, 30.f, 100.f, 1000.f, 0.f};
  for (size_t i = 0; i < v.size(); i += 5) v[i] = extreme[(i / 5) % 7];
  return from_vector(v, {rows, c});
}

TEST(CudaTrain, BceWithLogitsMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // A batch of the recipe's size and one large enough for many blocks' partial sums.
  for (auto [rows, c] : {std::pair<int64_t, int64_t>{16, 4}, {4099, 77}}) {
    Tensor x = logits(rows, c, 1), y = uniform({rows, c}, 2, 0, 1), pw = uniform({c}, 3, 0.2, 4);
    for (bool with_pw : {false, true}) {
      for (Reduction r : {Reduction::kNone, Reduction::kMean, Reduction::kSum}) {
        Tensor xc = x.clone().set_requires_grad(), xg = gpu(x).set_requires_grad();
        Tensor lc = binary_cross_entropy_with_logits(xc, y, r, with_pw ? pw : Tensor());
        Tensor lg = binary_cross_entropy_with_logits(xg, gpu(y), r, with_pw ? gpu(pw) : Tensor());
        ASSERT_TRUE(lg.device().is_cuda());
        EXPECT_TRUE(all_close(cpu(lg), lc, 1e-6, 1e-5)) << rows << "x" << c << " loss, pos_weight " << with_pw;
        Tensor up = r == Reduction::kNone ? uniform(lc.shape(), 4, 0.5, 1.5) : full({}, 0.7);
        lc.backward(up);
        lg.backward(gpu(up));
        EXPECT_TRUE(all_close(cpu(xg.grad()), xc.grad(), 1e-6, 1e-5)) << rows << "x" << c << " gradient";
      }
    }
  }
}

TEST(CudaTrain, CrossEntropyMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Few classes (most lanes of a warp idle) and many (each lane loops over the row).
  for (auto [rows, c] : {std::pair<int64_t, int64_t>{50, 7}, {33, 1000}, {3000, 5}}) {
    Tensor x = logits(rows, c, 5), w = uniform({c}, 6, 0.2, 2);
    std::vector<int64_t> t(rows);
    for (int64_t i = 0; i < rows; ++i) t[i] = (i * 7919) % c;
    Tensor tc = from_vector(t, {rows});
    for (bool weighted : {false, true}) {
      for (Reduction r : {Reduction::kNone, Reduction::kMean, Reduction::kSum}) {
        Tensor xc = x.clone().set_requires_grad(), xg = gpu(x).set_requires_grad();
        Tensor lc = cross_entropy(xc, tc, r, weighted ? w : Tensor());
        Tensor lg = cross_entropy(xg, gpu(tc), r, weighted ? gpu(w) : Tensor());
        EXPECT_TRUE(all_close(cpu(lg), lc, 1e-6, 1e-5)) << rows << "x" << c << " loss";
        Tensor up = r == Reduction::kNone ? uniform(lc.shape(), 7, 0.5, 1.5) : full({}, 1.3);
        lc.backward(up);
        lg.backward(gpu(up));
        EXPECT_TRUE(all_close(cpu(xg.grad()), xc.grad(), 1e-6, 1e-5)) << rows << "x" << c << " gradient";
      }
    }
  }
  // A class index out of range surfaces as NaN on CUDA (no host round-trip to check it).
  Tensor bad = cross_entropy(gpu(zeros({2, 3})), gpu(from_vector<int64_t>({0, 3}, {2})));
  EXPECT_TRUE(std::isnan(bad.item()));
}

Tensor probabilities(int64_t rows, int64_t c, uint64_t seed) {
  // Half of them exactly on sweep thresholds, where the strict comparison matters.
  std::vector<float> v = uniform({rows, c}, seed, 0, 1).to_vector<float>();
  for (size_t i = 0; i < v.size(); i += 2) v[i] = static_cast<float>(std::floor(v[i] * 21) / 20);
  return from_vector(v, {rows, c});
}

Tensor targets(int64_t rows, int64_t c, uint64_t seed) {
  return gt(uniform({rows, c}, seed, 0, 1), full({}, 0.6));
}

TEST(CudaTrain, ThresholdCountsMatchCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // 4 classes (shared-memory histogram) and 2000 (the global-memory fallback).
  for (auto [rows, c] : {std::pair<int64_t, int64_t>{10007, 4}, {50, 2000}}) {
    Tensor p = probabilities(rows, c, 8), y = targets(rows, c, 9);
    ThresholdCounts a = threshold_counts(p, y, sweep_thresholds(21));
    ThresholdCounts b = threshold_counts(gpu(p), gpu(y), sweep_thresholds(21));
    EXPECT_EQ(a.tp, b.tp) << c;
    EXPECT_EQ(a.fp, b.fp) << c;
    EXPECT_EQ(a.fn, b.fn) << c;
    EXPECT_EQ(a.tn, b.tn) << c;
    EXPECT_EQ(a.exact, b.exact) << c;
    // Float64 probabilities too.
    ThresholdCounts d = threshold_counts(gpu(p.to(kFloat64)), gpu(y), {0.25, 0.5, 0.75});
    ThresholdCounts e = threshold_counts(p.to(kFloat64), y, {0.25, 0.5, 0.75});
    EXPECT_EQ(d.tp, e.tp);
    EXPECT_EQ(d.exact, e.exact);
  }
}

TEST(CudaTrain, AveragePrecisionMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Scores rounded to 0.01: many ties; 700 rows span several 256-row tiles.
  std::vector<float> v = uniform({700, 3}, 10, 0, 1).to_vector<float>();
  for (float& s : v) s = std::round(s * 100) / 100;
  Tensor p = from_vector(v, {700, 3}), y = targets(700, 3, 11);
  std::vector<double> a = average_precision(p, y), b = average_precision(gpu(p), gpu(y));
  ASSERT_EQ(a.size(), b.size());
  for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-12) << "class " << j;
}

TEST(CudaTrain, AccumulatorOnTheDevice) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  MetricsAccumulator on_gpu(4, Device::cuda(0), kFloat32, 8), on_cpu(4, Device::cpu(), kFloat32, 8);
  for (int b = 0; b < 7; ++b) {
    Tensor p = probabilities(16 - b, 4, 20 + b), y = targets(16 - b, 4, 40 + b);
    on_gpu.append(gpu(p), gpu(y));
    on_cpu.append(p, y);
  }
  EXPECT_TRUE(on_gpu.probabilities().device().is_cuda());
  EXPECT_EQ(on_gpu.size(), on_cpu.size());
  MetricsReport g = on_gpu.compute(0.45), c = on_cpu.compute(0.45);
  EXPECT_EQ(g.at_threshold.hamming_accuracy, c.at_threshold.hamming_accuracy);
  EXPECT_EQ(g.at_threshold.zero_one_accuracy, c.at_threshold.zero_one_accuracy);
  EXPECT_EQ(g.optimal.index, c.optimal.index);
  for (size_t k = 0; k < g.sweep.size(); ++k) EXPECT_EQ(g.sweep[k].f1_macro, c.sweep[k].f1_macro);
  EXPECT_NEAR(g.mean_average_precision, c.mean_average_precision, 1e-12);
}

// Runs `steps` updates of the same optimiser on CPU and CUDA copies of the parameters.
template <class Opt, class Options>
void compare_optimizer(const Options& options, bool two_groups, int steps = 5) {
  const std::vector<int64_t> sizes = {1, 8191, 0, 8192, 8193, 40000, 300};
  std::vector<Tensor> pc, pg;
  std::vector<std::string> names;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Tensor p = uniform({sizes[k]}, 100 + k, -2, 2);
    pc.push_back(p.clone().set_requires_grad());
    pg.push_back(gpu(p).set_requires_grad());
    names.push_back("p" + std::to_string(k));
  }
  auto groups = [&](std::vector<Tensor>& ps) {
    if (!two_groups) return std::vector<ParamGroup>{ParamGroup(ps, names)};
    ParamGroup a({ps.begin(), ps.begin() + 3}, {names.begin(), names.begin() + 3});
    ParamGroup b({ps.begin() + 3, ps.end()}, {names.begin() + 3, names.end()});
    b.lr = 0.003;
    b.weight_decay = 0.0;
    return std::vector<ParamGroup>{a, b};
  };
  Opt oc(groups(pc), options), og(groups(pg), options);
  for (int s = 0; s < steps; ++s) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (s == 2 && k == 4) {  // one parameter without a gradient in one step: skipped on both
        pc[k].set_grad(Tensor());
        pg[k].set_grad(Tensor());
        continue;
      }
      Tensor g = uniform({sizes[k]}, 1000 * s + k, -1, 1);
      pc[k].set_grad(g);
      pg[k].set_grad(gpu(g));
    }
    oc.step();
    og.step();
    for (size_t k = 0; k < sizes.size(); ++k)
      ASSERT_TRUE(all_close(cpu(pg[k]), pc[k], 1e-6, 1e-5)) << oc.name() << " tensor " << k << " step " << s;
  }
  std::vector<NamedTensor> sc = oc.state_dict(), sg = og.state_dict();
  ASSERT_EQ(sc.size(), sg.size());
  for (size_t i = 0; i < sc.size(); ++i) {
    EXPECT_EQ(sc[i].first, sg[i].first);
    EXPECT_TRUE(all_close(cpu(sg[i].second), sc[i].second, 1e-6, 1e-5)) << sc[i].first;
  }
}

TEST(CudaTrain, AdamWMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  compare_optimizer<AdamW>(o, false);
  compare_optimizer<AdamW>(o, true);
}

TEST(CudaTrain, AdamMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.05;
  compare_optimizer<Adam>(o, true);
}

TEST(CudaTrain, SgdMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  compare_optimizer<SGD>(o, true);
  o.nesterov = true;
  compare_optimizer<SGD>(o, false);
  SGDOptions plain;
  plain.lr = 0.1;
  compare_optimizer<SGD>(plain, false);
}

TEST(CudaTrain, OptimizerStateMovesBetweenDevices) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor w = uniform({5, 3}, 50, -1, 1);
  Tensor wg = gpu(w).set_requires_grad(), wc = w.clone().set_requires_grad();
  AdamW og({ParamGroup({wg}, {"w"})});
  for (int s = 0; s < 3; ++s) {
    wg.set_grad(gpu(uniform({5, 3}, 60 + s, -1, 1)));
    og.step();
  }
  // A checkpoint written from the GPU run, resumed on the CPU.
  AdamW oc({ParamGroup({wc}, {"w"})});
  oc.load_state_dict(og.state_dict());
  {
    NoGradGuard ng;
    wc.copy_(wg);
  }
  for (int s = 3; s < 6; ++s) {
    Tensor g = uniform({5, 3}, 60 + s, -1, 1);
    wg.set_grad(gpu(g));
    wc.set_grad(g);
    og.step();
    oc.step();
  }
  EXPECT_TRUE(all_close(cpu(wg), wc, 1e-6, 1e-5));
  og.zero_grad();
  EXPECT_EQ(cpu(wg.grad()).to_vector<float>(), std::vector<float>(15, 0.f));
}

}  // namespace
}  // namespace cudl
