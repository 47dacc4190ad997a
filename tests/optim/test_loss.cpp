// The losses on the CPU: known values, stability at extreme logits, reductions, bad input, the
// loss choice from the labels, and level 1 of DESIGN.md (float64 central differences).
//
// Gradcheck tolerance: eps 1e-6 on O(1) smooth functions (logits in [-4, 4], away from any
// kink: the losses are smooth everywhere) gives truncation ~1e-12 and rounding ~1e-10, so the
// default atol 1e-6 / rtol 1e-5 has a wide margin while a wrong formula is off by O(1).
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops/loss.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using ::cudl::testing::error_of;

using testing::all_close;
using testing::gradcheck;
using testing::rand64;

Tensor f32(const std::vector<float>& v, const Shape& s) { return from_vector(v, s); }

TEST(Loss, BceKnownValuesAndGradient) {
  // Columns: x = 0, y = 1 -> log 2; x = 2, y = 0 -> log(1 + e^2); x = -1, y = 0.25.
  Tensor x = f32({0.f, 2.f, -1.f}, {1, 3}).set_requires_grad();
  Tensor y = f32({1.f, 0.f, 0.25f}, {1, 3});
  Tensor l = binary_cross_entropy_with_logits(x, y, Reduction::kNone);
  auto v = l.to_vector<float>();
  EXPECT_NEAR(v[0], std::log(2.0), 1e-6);
  EXPECT_NEAR(v[1], std::log1p(std::exp(2.0)), 1e-6);
  const double s = 1 / (1 + std::exp(1.0));  // sigmoid(-1)
  EXPECT_NEAR(v[2], -(0.25 * std::log(s) + 0.75 * std::log(1 - s)), 1e-6);
  l.backward(ones({1, 3}));
  auto g = x.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 0.5 - 1.0, 1e-6);
  EXPECT_NEAR(g[1], 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(g[2], s - 0.25, 1e-6);
}

TEST(Loss, BcePosWeightKnownValues) {
  // pos_weight scales the positive term only: x = 0, y = 1, pw = 3 -> 3 log 2, grad 3 (0.5 - 1).
  Tensor x = f32({0.f, 0.f}, {1, 2}).set_requires_grad();
  Tensor y = f32({1.f, 0.f}, {1, 2});
  Tensor pw = f32({3.f, 3.f}, {2});
  Tensor l = binary_cross_entropy_with_logits(x, y, Reduction::kNone, pw);
  auto v = l.to_vector<float>();
  EXPECT_NEAR(v[0], 3 * std::log(2.0), 1e-6);
  EXPECT_NEAR(v[1], std::log(2.0), 1e-6);  // a negative is unaffected
  l.backward(ones({1, 2}));
  auto g = x.grad().to_vector<float>();
  EXPECT_NEAR(g[0], -1.5, 1e-6);
  EXPECT_NEAR(g[1], 0.5, 1e-6);
}

TEST(Loss, BceIsFiniteAndExactAtExtremeLogits) {
  for (bool with_pw : {false, true}) {
    Tensor x = f32({1000.f, -1000.f, 1000.f, -1000.f, 1e30f, -1e30f}, {3, 2}).set_requires_grad();
    Tensor y = f32({0.f, 1.f, 1.f, 0.f, 0.f, 1.f}, {3, 2});
    Tensor pw = with_pw ? f32({2.f, 0.5f}, {2}) : Tensor();
    Tensor l = binary_cross_entropy_with_logits(x, y, Reduction::kNone, pw);
    auto v = l.to_vector<float>();
    const float w1 = with_pw ? 0.5f : 1.f;  // pos_weight of column 1
    EXPECT_FLOAT_EQ(v[0], 1000.f);           // confidently wrong: the loss is the logit
    EXPECT_FLOAT_EQ(v[1], 1000.f * w1);
    EXPECT_FLOAT_EQ(v[2], 0.f);              // confidently right
    EXPECT_FLOAT_EQ(v[3], 0.f);
    EXPECT_FLOAT_EQ(v[4], 1e30f);
    EXPECT_FLOAT_EQ(v[5], 1e30f * w1);
    l.backward(ones({3, 2}));
    auto g = x.grad().to_vector<float>();
    const std::vector<float> expect = {1.f, -w1, 0.f, 0.f, 1.f, -w1};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_FLOAT_EQ(g[i], expect[i]) << i;
  }
}

TEST(Loss, BceReductionsAgree) {
  Generator gen(3);
  Tensor x = randn({6, 5}, kFloat64, &gen);
  Tensor y = rand({6, 5}, kFloat64, &gen);
  Tensor none = binary_cross_entropy_with_logits(x, y, Reduction::kNone);
  Tensor s = binary_cross_entropy_with_logits(x, y, Reduction::kSum);
  Tensor m = binary_cross_entropy_with_logits(x, y, Reduction::kMean);
  EXPECT_EQ(none.shape(), (Shape{6, 5}));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_NEAR(s.item(), sum(none).item(), 1e-12);
  EXPECT_NEAR(m.item(), sum(none).item() / 30, 1e-13);
  // The mean's gradient is the sum's divided by the element count.
  Tensor xs = x.clone().set_requires_grad(), xm = x.clone().set_requires_grad();
  binary_cross_entropy_with_logits(xs, y, Reduction::kSum).backward();
  binary_cross_entropy_with_logits(xm, y, Reduction::kMean).backward();
  EXPECT_TRUE(all_close(xm.grad(), xs.grad() / 30.0, 1e-15, 1e-12));
}

TEST(Loss, BceWithoutGradModeRecordsNothing) {
  Tensor x = rand64({2, 3}, 1).set_requires_grad();
  NoGradGuard ng;
  Tensor l = binary_cross_entropy_with_logits(x, rand64({2, 3}, 2, 0, 1));
  EXPECT_FALSE(l.requires_grad());
}

TEST(Loss, EmptyBatch) {
  Tensor x = empty({0, 4});
  EXPECT_TRUE(std::isnan(binary_cross_entropy_with_logits(x, x).item()));  // mean of nothing, as torch
  EXPECT_EQ(binary_cross_entropy_with_logits(x, x, Reduction::kSum).item(), 0.0);
  EXPECT_EQ(binary_cross_entropy_with_logits(x, x, Reduction::kNone).shape(), (Shape{0, 4}));
}

TEST(Loss, CrossEntropyKnownValues) {
  // Equal logits: loss log C, gradient 1/C - onehot; a dominant correct logit: loss ~ 0.
  Tensor x = f32({0.f, 0.f, 0.f, 0.f, 50.f, 0.f, 0.f, 0.f}, {2, 4}).set_requires_grad();
  Tensor t = from_vector<int64_t>({2, 0}, {2});
  Tensor l = cross_entropy(x, t, Reduction::kNone);
  auto v = l.to_vector<float>();
  EXPECT_NEAR(v[0], std::log(4.0), 1e-6);
  EXPECT_NEAR(v[1], 0.0, 1e-6);
  l.backward(ones({2}));
  auto g = x.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 0.25, 1e-6);
  EXPECT_NEAR(g[2], -0.75, 1e-6);
  EXPECT_NEAR(g[4], 0.0, 1e-6);
  // Weighted mean: sum w_t l / sum w_t.
  Tensor w = f32({1.f, 1.f, 3.f, 1.f}, {4});
  Tensor m = cross_entropy(x.detach(), t, Reduction::kMean, w);
  EXPECT_NEAR(m.item(), 3 * std::log(4.0) / 4, 1e-6);
}

TEST(Loss, CrossEntropyExtremeLogitsAreFinite) {
  Tensor x = f32({1000.f, -1000.f, 0.f, -1000.f, 1000.f, 0.f}, {2, 3}).set_requires_grad();
  Tensor t = from_vector<int64_t>({1, 1}, {2});
  Tensor l = cross_entropy(x, t, Reduction::kNone);
  auto v = l.to_vector<float>();
  EXPECT_FLOAT_EQ(v[0], 2000.f);
  EXPECT_FLOAT_EQ(v[1], 0.f);
  l.backward(ones({2}));
  for (float g : x.grad().to_vector<float>()) EXPECT_TRUE(std::isfinite(g));
}

TEST(GradCheck, BceWithLogitsAllReductions) {
  Tensor x = rand64({4, 3}, 11, -4, 4);
  Tensor y = rand64({4, 3}, 12, 0, 1);  // soft targets: the formula must hold for any y in [0, 1]
  Tensor yb = gt(y, full({}, 0.5, kFloat64));
  Tensor pw = rand64({3}, 13, 0.2, 3);
  for (Reduction r : {Reduction::kNone, Reduction::kMean, Reduction::kSum}) {
    for (const Tensor& target : {y, yb}) {
      EXPECT_TRUE(gradcheck([&](auto& v) { return binary_cross_entropy_with_logits(v[0], target, r); }, {x}));
      EXPECT_TRUE(gradcheck([&](auto& v) { return binary_cross_entropy_with_logits(v[0], target, r, pw); }, {x}));
    }
  }
}

TEST(GradCheck, CrossEntropyAllReductions) {
  Tensor x = rand64({5, 4}, 21, -4, 4);
  Tensor t = from_vector<int64_t>({0, 3, 1, 1, 2}, {5});
  Tensor w = rand64({4}, 22, 0.2, 2);
  for (Reduction r : {Reduction::kNone, Reduction::kMean, Reduction::kSum}) {
    EXPECT_TRUE(gradcheck([&](auto& v) { return cross_entropy(v[0], t, r); }, {x}));
    EXPECT_TRUE(gradcheck([&](auto& v) { return cross_entropy(v[0], t, r, w); }, {x}));
  }
}

TEST(Loss, BadInputIsNamed) {
  Tensor x = zeros({2, 3});
  EXPECT_ERROR_HAS(binary_cross_entropy_with_logits(x, zeros({3, 2})), "targets of shape (3, 2)");
  EXPECT_ERROR_HAS(binary_cross_entropy_with_logits(x, zeros({2, 3}), Reduction::kMean, zeros({2})),
                   "pos_weight of shape (2,) for logits of shape (2, 3) (expected (3,)");
  EXPECT_ERROR_HAS(binary_cross_entropy_with_logits(x, zeros({2, 3}, kFloat64)), "dtype");
  Tensor yg = zeros({2, 3}).set_requires_grad();
  EXPECT_ERROR_HAS(binary_cross_entropy_with_logits(x, yg), "targets require grad");
  EXPECT_ERROR_HAS(cross_entropy(x, from_vector<int64_t>({0, 3}, {2})), "target 3 of row 1");
  EXPECT_ERROR_HAS(cross_entropy(x, from_vector<int64_t>({-1, 0}, {2})), "target -1 of row 0");
  EXPECT_ERROR_HAS(cross_entropy(x, zeros({2})), "int64 class indices");
  EXPECT_ERROR_HAS(cross_entropy(x, from_vector<int64_t>({0}, {1})), "expected (2,)");
  EXPECT_ERROR_HAS(cross_entropy(zeros({6}), from_vector<int64_t>({0}, {1})), "expected (N, C)");
}

TEST(Loss, ChosenFromTheLabelsAsFastai) {
  EXPECT_EQ(label_kind_from_counts({1, 1, 1}), LabelKind::kSingleLabel);
  EXPECT_EQ(label_kind_from_counts({1, 2, 1}), LabelKind::kMultiLabel);
  EXPECT_EQ(label_kind_from_counts({1, 0}), LabelKind::kMultiLabel);  // an image with no label
  EXPECT_EQ(loss_for_labels(LabelKind::kMultiLabel), LossKind::kBCEWithLogits);
  EXPECT_EQ(loss_for_labels(LabelKind::kSingleLabel), LossKind::kCrossEntropy);
  EXPECT_STREQ(toString(LossKind::kBCEWithLogits), "bce_with_logits");
  Tensor x = rand64({3, 4}, 5);
  Tensor multi_hot = rand64({3, 4}, 6, 0, 1);
  Tensor classes = from_vector<int64_t>({0, 3, 2}, {3});
  EXPECT_NEAR(compute_loss(LossKind::kBCEWithLogits, x, multi_hot).item(),
              binary_cross_entropy_with_logits(x, multi_hot).item(), 0);
  EXPECT_NEAR(compute_loss(LossKind::kCrossEntropy, x, classes).item(), cross_entropy(x, classes).item(), 0);
  EXPECT_ERROR_HAS(compute_loss(LossKind::kBCEWithLogits, x, classes), "multi-hot");
  EXPECT_ERROR_HAS(compute_loss(LossKind::kCrossEntropy, x, multi_hot), "int64 class indices");
  EXPECT_ERROR_HAS(label_kind_from_counts({}), "no samples");
}

}  // namespace
}  // namespace cudl
