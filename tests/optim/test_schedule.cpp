// The learning-rate schedules on the CPU: constant, and fastai v1's one-cycle against its
// documented shape (start lr_max / 25, peak lr_max after pct_start of the iterations, end near
// lr_max / (25 * 1e4); momentum 0.95 -> 0.85 -> 0.95, inverse to the lr) and the closed form.
// The iteration-by-iteration parity with fastai's stateful stepping is in test_parity_optim.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/optim.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

TEST(Schedule, ConstantSetsTheLrOnly) {
  Tensor p = zeros({1}).set_requires_grad();
  AdamW opt({p});
  opt.set_momentum(0.8);
  ConstantSchedule s(1e-4);
  s.apply(opt, 17);
  EXPECT_EQ(opt.lr(), 1e-4);
  EXPECT_EQ(opt.momentum(), 0.8);  // untouched
}

TEST(Schedule, OneCycleHasFastaisShape) {
  const double lr_max = 1e-3;
  const int64_t n = 60;  // 6 batches x 10 epochs, the recipe's size
  OneCycleSchedule s(lr_max, n);
  EXPECT_EQ(s.warmup_iterations(), 18);  // int(60 * 0.3)
  EXPECT_DOUBLE_EQ(s.lr(0), lr_max / 25);
  EXPECT_DOUBLE_EQ(*s.momentum(0), 0.95);
  EXPECT_DOUBLE_EQ(s.lr(18), lr_max);
  EXPECT_DOUBLE_EQ(*s.momentum(18), 0.85);
  EXPECT_DOUBLE_EQ(s.lr(9), (lr_max / 25 + lr_max) / 2);  // the cosine's midpoint
  EXPECT_NEAR(*s.momentum(9), 0.90, 1e-15);
  const double final_lr = lr_max / 25 / 1e4;
  EXPECT_NEAR(s.lr(60), final_lr, 1e-18);
  EXPECT_NEAR(*s.momentum(60), 0.95, 1e-15);
  EXPECT_GT(s.lr(59), final_lr);  // the last batch trains just above the final value
  for (int64_t i = 1; i <= 60; ++i) {
    if (i <= 18) {
      EXPECT_GT(s.lr(i), s.lr(i - 1)) << i;
      EXPECT_LT(*s.momentum(i), *s.momentum(i - 1)) << i;
    } else {
      EXPECT_LT(s.lr(i), s.lr(i - 1)) << i;
      EXPECT_GT(*s.momentum(i), *s.momentum(i - 1)) << i;
    }
  }
  // The closed form: phase 2 at a third of its length.
  EXPECT_NEAR(s.lr(18 + 14), cos_anneal(lr_max, final_lr, 14.0 / 42), 1e-18);
  EXPECT_NEAR(cos_anneal(2.0, 1.0, 0.5), 1.5, 1e-15);
}

TEST(Schedule, OneCycleOptionsAndApply) {
  OneCycleOptions o;
  o.div_factor = 10;
  o.final_div = 100;
  o.pct_start = 0.5;
  o.moms = {0.9, 0.8};
  OneCycleSchedule s(1.0, 10, o);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(5), 1.0);
  EXPECT_NEAR(s.lr(10), 0.01, 1e-15);
  Tensor a = zeros({1}).set_requires_grad(), b = zeros({1}).set_requires_grad();
  AdamW opt({ParamGroup({a}), ParamGroup({b})});
  s.apply(opt, 5);
  EXPECT_DOUBLE_EQ(opt.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(opt.lr(1), 1.0);
  EXPECT_DOUBLE_EQ(opt.momentum(1), 0.8);  // Adam's beta1
  o.schedule_momentum = false;
  EXPECT_FALSE(OneCycleSchedule(1.0, 10, o).momentum(3).has_value());
  EXPECT_THROW(OneCycleSchedule(1.0, 0), Error);
  EXPECT_THROW(OneCycleSchedule(-1.0, 10), Error);
}

}  // namespace
}  // namespace cudl
