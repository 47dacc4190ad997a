// Learning-rate (and momentum) schedules, evaluated per iteration (optimiser step).
//
// ConstantSchedule(lr): lr at every iteration, momentum left alone (RECIPE.md's learn.fit).
//
// OneCycleSchedule(lr_max, total_iterations): fastai v1's fit_one_cycle (OneCycleScheduler),
// with n = total_iterations (= batches per epoch x epochs), a1 = floor(n * pct_start) warm-up
// iterations and a2 = n - a1 annealing ones. With cos_anneal(a, b, x) = b + (a - b) / 2 *
// (1 + cos(pi * x)) going from a (x = 0) to b (x = 1), and A1 = max(a1, 1), A2 = max(a2, 1)
// (fastai's Stepper runs at least one step per phase), iteration i (0-based) uses
//   lr(i) = cos_anneal(lr_max / div_factor, lr_max, i / A1)                 for i <= A1
//         = cos_anneal(lr_max, lr_max / final_div, min((i - A1) / A2, 1))   after
//   momentum(i) = the same with (moms.first -> moms.second), then back to moms.first.
// Defaults: pct_start 0.3, div_factor 25, final_div = div_factor * 1e4, moms (0.95, 0.85).
// This is exactly what fastai's callback produces: it starts at the phase's start value and
// steps its phase counter after every batch, switching phase when a counter is done.
// The momentum is SGD's momentum or Adam's beta1 (fastai sets betas[0] for Adam).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "optim/optimizer.h"

namespace cudl {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double lr(int64_t iteration) const = 0;
  // Momentum / beta1 for the iteration; nullopt when the schedule does not set it.
  virtual std::optional<double> momentum(int64_t iteration) const { return std::nullopt; }
  // Sets every group's lr (and momentum when scheduled) for `iteration`; call before step().
  void apply(Optimizer& opt, int64_t iteration) const;
};

class ConstantSchedule : public Schedule {
 public:
  explicit ConstantSchedule(double lr);
  double lr(int64_t) const override { return lr_; }

 private:
  double lr_;
};

struct OneCycleOptions {
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div = 0.0;  // 0: div_factor * 1e4
  std::pair<double, double> moms{0.95, 0.85};
  bool schedule_momentum = true;
};

class OneCycleSchedule : public Schedule {
 public:
  OneCycleSchedule(double lr_max, int64_t total_iterations, const OneCycleOptions& options = OneCycleOptions());
  double lr(int64_t iteration) const override;
  std::optional<double> momentum(int64_t iteration) const override;
  int64_t warmup_iterations() const { return a1_; }  // fastai's a1 (before max(., 1))

 private:
  // Phase and position in it: (0, i / A1) or (1, (i - A1) / A2).
  std::pair<int, double> phase(int64_t iteration) const;
  double lr_max_;
  int64_t n_, a1_;
  OneCycleOptions o_;
};

// cos_anneal(a, b, x) = b + (a - b) / 2 * (1 + cos(pi * x)), fastai's annealing_cos.
double cos_anneal(double start, double end, double pct);

}  // namespace cudl
