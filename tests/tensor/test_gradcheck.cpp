// Level 1 of DESIGN.md: every differentiable core op against float64 central differences.
//
// Tolerance: with eps = 1e-6 the central difference has truncation error O(eps^2 * f''') ~ 1e-12
// and rounding error ~ 1e-16 * |f| / eps ~ 1e-10 for the O(1) values used here, so
// atol 1e-6 + rtol 1e-5 leaves a wide margin while any wrong formula (an O(1) error) fails.
// Inputs of relu, abs and max are kept away from their kinks (|x| >= 0.1, no ties), where the
// derivative is not defined and finite differences would straddle the kink.
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::gradcheck;
using testing::rand64;

// Uniform on [-1, -0.1] U [0.1, 1]: away from 0.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor u = rand64(s, seed, 0.1, 1.0);
  Tensor sign = rand64(s, seed + 1000, -1.0, 1.0);
  std::vector<double> v = u.to_vector<double>(), sg = sign.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) v[i] *= sg[i] < 0 ? -1 : 1;
  return from_vector(v, s);
}

TEST(GradCheck, BinaryWithBroadcasting) {
  auto a = rand64({3, 1, 4}, 1), b = rand64({5, 1}, 2), bpos = rand64({5, 1}, 3, 0.5, 2.0);
  EXPECT_TRUE(gradcheck([](auto& x) { return add(x[0], x[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](auto& x) { return sub(x[0], x[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](auto& x) { return mul(x[0], x[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](auto& x) { return div(x[0], x[1]); }, {a, bpos}));
  // Same shapes, and an operand broadcast from a scalar tensor.
  auto c = rand64({2, 3}, 4), d = rand64({2, 3}, 5), s = rand64({}, 6);
  EXPECT_TRUE(gradcheck([](auto& x) { return mul(x[0], x[1]); }, {c, d}));
  EXPECT_TRUE(gradcheck([](auto& x) { return add(x[0], x[1]); }, {c, s}));
}

TEST(GradCheck, ScalarOps) {
  auto x = rand64({2, 5}, 7, 0.5, 2.0);
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0] + 3.0; }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0] * -2.5; }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return 1.5 - v[0]; }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return 2.0 / v[0]; }, {x}));
}

TEST(GradCheck, UnaryOps) {
  auto x = rand64({3, 4}, 8, -2.0, 2.0);
  auto pos = rand64({3, 4}, 9, 0.2, 3.0);
  auto off = away_from_zero({3, 4}, 10);
  EXPECT_TRUE(gradcheck([](auto& v) { return neg(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return exp(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return log(v[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](auto& v) { return sigmoid(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return relu(v[0]); }, {off}));
  EXPECT_TRUE(gradcheck([](auto& v) { return pow(v[0], 2.0); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return pow(v[0], 3.0); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return pow(v[0], -1.5); }, {pos}));
  EXPECT_TRUE(gradcheck([](auto& v) { return sqrt(v[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](auto& v) { return abs(v[0]); }, {off}));
}

TEST(GradCheck, Reductions) {
  auto x = rand64({3, 4, 5}, 11);
  EXPECT_TRUE(gradcheck([](auto& v) { return sum(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return sum(v[0], {1}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return sum(v[0], {0, 2}, true); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return mean(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return mean(v[0], {-1}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return mean(v[0], {0, 1}, true); }, {x}));
  // Random values have no ties, so the max is unique and differentiable.
  EXPECT_TRUE(gradcheck([](auto& v) { return max(v[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return max(v[0], {2}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return max(v[0], {0, 2}, true); }, {x}));
}

TEST(GradCheck, Matmul) {
  auto a = rand64({4, 3}, 12), b = rand64({3, 5}, 13);
  EXPECT_TRUE(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {a, b}));
  auto ba = rand64({2, 4, 3}, 14), bb = rand64({2, 3, 5}, 15);
  EXPECT_TRUE(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {ba, bb}));
  EXPECT_TRUE(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {ba, b}));
  // Transposed views go to the BLAS as transposes.
  auto at = rand64({3, 4}, 16), bt = rand64({5, 3}, 17);
  EXPECT_TRUE(gradcheck([](auto& v) { return matmul(v[0].t(), v[1].t()); }, {at, bt}));
}

TEST(GradCheck, ConcatAndStack) {
  auto a = rand64({2, 3}, 18), b = rand64({2, 1}, 19), c = rand64({2, 2}, 20);
  EXPECT_TRUE(gradcheck([](auto& v) { return cat({v[0], v[1], v[2]}, 1); }, {a, b, c}));
  auto d = rand64({2, 3}, 21);
  EXPECT_TRUE(gradcheck([](auto& v) { return cat({v[0], v[1]}, 0); }, {a, d}));
  EXPECT_TRUE(gradcheck([](auto& v) { return stack({v[0], v[1]}, 1); }, {a, d}));
}

TEST(GradCheck, ViewsAndCopies) {
  auto x = rand64({2, 3, 4}, 22);
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].reshape({6, 4}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].transpose(0, 2).reshape({-1}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].permute({1, 2, 0}); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].slice(2, 1, 4, 2); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].select(1, 2); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].unsqueeze(1).squeeze(1); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].flatten(1); }, {x}));
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].clone(); }, {x}));
  auto col = rand64({3, 1}, 23);
  EXPECT_TRUE(gradcheck([](auto& v) { return v[0].expand({2, 3, 4}); }, {col}));
}

TEST(GradCheck, CompositeExpression) {
  auto x = rand64({4, 3}, 24), w = rand64({3, 2}, 25), b = rand64({2}, 26);
  EXPECT_TRUE(gradcheck(
      [](auto& v) {
        Tensor h = sigmoid(matmul(v[0], v[1]) + v[2]);
        return mean(log(h) * h + exp(-h), {1});
      },
      {x, w, b}));
}

}  // namespace
}  // namespace cudl
