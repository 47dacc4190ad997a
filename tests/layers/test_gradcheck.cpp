// Level 1 of DESIGN.md: every layer op's CPU gradients against float64 central differences.
// testing::gradcheck perturbs each input element by eps = 1e-6 and compares with
// atol 1e-6 + rtol 1e-5: the truncation error is O(eps^2) ~ 1e-12 and the rounding error of
// the objective (|f| <= ~1e2, double) over 2*eps is ~1e-8, far below the bound, while a wrong
// formula is off by O(1).
//
// Shapes are small (each element costs two forward passes) but chosen to reach every code
// path of the CPU kernels: padding on all sides, strides, dilation, groups, non-square
// kernels, the 1x1 "direct" GEMM (no unfold) and the multi-sample column buffer used when
// output maps are small. Max-pool inputs are random uniform, so no two window elements are
// within eps of each other (no kinks).
#include <gtest/gtest.h>

#include "layers/layers.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::gradcheck;
using testing::rand64;

TEST(Gradcheck, Conv2dPaddedWithBias) {
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                        {rand64({2, 3, 5, 6}, 1), rand64({4, 3, 3, 3}, 2), rand64({4}, 3)}));
}

TEST(Gradcheck, Conv2dStrideDilationAsymmetric) {
  EXPECT_TRUE(gradcheck(
      [](auto& v) {
        return conv2d(v[0], v[1], Tensor(), {2, 1}, {1, 2}, {2, 1});
      },
      {rand64({2, 2, 7, 6}, 4), rand64({3, 2, 2, 3}, 5)}));
  // 7x7 stride 2 padding 3 as ResNet's stem, on a tiny image.
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2, 3); },
                        {rand64({1, 2, 6, 5}, 6), rand64({2, 2, 7, 7}, 7)}));
}

TEST(Gradcheck, Conv2dGroups) {
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], v[2], 1, 1, 1, 2); },
                        {rand64({2, 4, 4, 4}, 8), rand64({6, 2, 3, 3}, 9), rand64({6}, 10)}));
}

TEST(Gradcheck, Conv2dOneByOne) {
  // Small maps: several samples share one column buffer (unfold of a 1x1 is a copy).
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], v[2]); },
                        {rand64({3, 3, 4, 4}, 11), rand64({5, 3, 1, 1}, 12), rand64({5}, 13)}));
  // 1x1 stride 2 (ResNet's downsample).
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2); },
                        {rand64({2, 3, 5, 5}, 14), rand64({4, 3, 1, 1}, 15)}));
}

TEST(Gradcheck, Conv2dLargeMapsOneSamplePerGemm) {
  // 32x32 outputs (>= 1024 columns): one sample per GEMM; the 1x1 case reads x directly and
  // writes dx from the GEMM (no col2im).
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], v[2]); },
                        {rand64({1, 2, 32, 32}, 16), rand64({2, 2, 1, 1}, 17), rand64({2}, 18)}));
  EXPECT_TRUE(gradcheck([](auto& v) { return conv2d(v[0], v[1], Tensor(), 1, 1); },
                        {rand64({1, 1, 32, 32}, 19), rand64({2, 1, 3, 3}, 20)}));
}

TEST(Gradcheck, BatchNormTraining) {
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  EXPECT_TRUE(gradcheck([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, true); },
                        {rand64({4, 3, 2, 3}, 21), rand64({3}, 22, 0.5, 1.5), rand64({3}, 23)}));
  // BatchNorm1d shapes (N, C) and (N, C, L), and without running statistics.
  EXPECT_TRUE(
      gradcheck([](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true); },
                {rand64({5, 4}, 24), rand64({4}, 25, 0.5, 1.5), rand64({4}, 26)}));
  EXPECT_TRUE(
      gradcheck([](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true); },
                {rand64({3, 2, 4}, 27), rand64({2}, 28, 0.5, 1.5), rand64({2}, 29)}));
}

TEST(Gradcheck, BatchNormEval) {
  Tensor rm = rand64({3}, 30), rv = rand64({3}, 31, 0.5, 2.0);
  EXPECT_TRUE(gradcheck([&](auto& v) { return batch_norm(v[0], v[1], v[2], rm, rv, false); },
                        {rand64({2, 3, 2, 2}, 32), rand64({3}, 33), rand64({3}, 34)}));
}

// batch_norm_act: + residual and ReLU fused in, training and eval. The inputs keep every
// pre-activation away from 0 by more than eps (no kink): the residual is shifted off the
// normalised values' range where needed.
TEST(Gradcheck, BatchNormWithResidualAndRelu) {
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  const Tensor x = rand64({4, 3, 2, 3}, 35), w = rand64({3}, 36, 0.5, 1.5), b = rand64({3}, 37);
  const Tensor res = rand64({4, 3, 2, 3}, 38);
  for (bool relu : {false, true}) {
    EXPECT_TRUE(gradcheck(
        [&](auto& v) { return batch_norm_act(v[0], v[1], v[2], rm, rv, true, 0.1, 1e-5, v[3], relu); },
        {x, w, b, res}))
        << "training, relu " << relu;
    EXPECT_TRUE(gradcheck(
        [&](auto& v) { return batch_norm_act(v[0], v[1], v[2], rm, rv, false, 0.1, 1e-5, v[3], relu); },
        {x, w, b, res}))
        << "eval, relu " << relu;
  }
  EXPECT_TRUE(gradcheck(
      [&](auto& v) { return batch_norm_act(v[0], v[1], v[2], rm, rv, true, 0.1, 1e-5, Tensor(), true); },
      {x, w, b}))
      << "ReLU without residual";
}

TEST(Gradcheck, MaxPool2d) {
  EXPECT_TRUE(
      gradcheck([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, {rand64({2, 2, 7, 6}, 35)}));
  // Overlapping windows with stride 1, non-square kernel and dilation.
  EXPECT_TRUE(gradcheck(
      [](auto& v) {
        return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1});
      },
      {rand64({1, 2, 6, 7}, 36)}));
}

TEST(Gradcheck, GlobalPools) {
  EXPECT_TRUE(
      gradcheck([](auto& v) { return global_max_pool2d(v[0]); }, {rand64({2, 3, 4, 5}, 37)}));
  EXPECT_TRUE(
      gradcheck([](auto& v) { return global_avg_pool2d(v[0]); }, {rand64({2, 3, 4, 5}, 38)}));
}

TEST(Gradcheck, Linear) {
  EXPECT_TRUE(gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); },
                        {rand64({4, 5}, 39), rand64({3, 5}, 40), rand64({3}, 41)}));
  EXPECT_TRUE(gradcheck([](auto& v) { return linear(v[0], v[1]); },
                        {rand64({2, 3, 5}, 42), rand64({4, 5}, 43)}));
}

TEST(Gradcheck, Dropout) {
  // A fresh generator per call: every evaluation draws the same mask.
  EXPECT_TRUE(gradcheck(
      [](auto& v) {
        Generator g(44);
        return dropout(v[0], 0.3, true, &g);
      },
      {rand64({4, 6}, 45)}));
}

TEST(Gradcheck, ConvBatchNormReluPoolStack) {
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  EXPECT_TRUE(gradcheck(
      [&](auto& v) {
        Tensor h = conv2d(v[0], v[1], Tensor(), 1, 1);
        h = relu(batch_norm(h, v[2], v[3], rm, rv, true));
        h = max_pool2d(h, 3, 2, 1);
        return linear(cat({global_max_pool2d(h), global_avg_pool2d(h)}, 1).flatten(1), v[4]);
      },
      {rand64({2, 2, 5, 5}, 46), rand64({3, 2, 3, 3}, 47), rand64({3}, 48, 0.5, 1.5),
       rand64({3}, 49), rand64({2, 6}, 50)}));
}

}  // namespace
}  // namespace cudl
