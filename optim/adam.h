// Adam and AdamW (formula in optim_math.h), bias-corrected, eps added after the bias
// correction as modern PyTorch does: p -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps).
//
// Adam: weight decay is coupled, an L2 term added to the gradient (g += wd * p), exactly
//   torch.optim.Adam. Defaults are torch's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.
// AdamW: weight decay is decoupled, p *= 1 - lr * wd before the Adam step (RECIPE.md: fastai
//   v1's true_wd, applied to every parameter that has a gradient; torch.optim.AdamW does the
//   same). Defaults are fastai v1's Learner: betas (0.9, 0.99), eps 1e-8, wd 0.01 (lr 1e-3; the
//   recipe passes 1e-4).
// Per group: lr, weight_decay and beta1 (the group's momentum, which the one-cycle schedule
// anneals); beta2 and eps are per optimiser. The step count t is per parameter, as in torch.
// State per parameter: "exp_avg" (m) and "exp_avg_sq" (v), zero at the first update.
#pragma once

#include "optim/optimizer.h"

namespace cudl {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

struct AdamWOptions : AdamOptions {
  AdamWOptions() {
    beta2 = 0.99;
    weight_decay = 0.01;
  }
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = AdamOptions());
  Adam(std::vector<Tensor> params, const AdamOptions& options = AdamOptions());
  void step() override;
  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }
  bool decoupled_weight_decay() const { return decoupled_; }

 protected:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled);
  void update(Pass pass) override;

 private:
  AdamOptions options_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = AdamWOptions());
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = AdamWOptions());
};

}  // namespace cudl
