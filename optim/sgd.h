// Stochastic gradient descent with momentum, as torch.optim.SGD (formula in optim_math.h):
//   g += wd * p (coupled weight decay); buf = g (first update) or momentum * buf +
//   (1 - dampening) * g; g = nesterov ? g + momentum * buf : buf; p -= lr * g.
// Per group: lr, weight_decay, momentum. Nesterov needs momentum > 0 and no dampening.
// State: "momentum_buffer" per parameter (allocated at its first update; the first update
// initialises it to the gradient, so a group whose momentum is switched on later starts from
// the zero-initialised buffer instead).
#pragma once

#include "optim/optimizer.h"

namespace cudl {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void step() override;
  const char* name() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

 protected:
  void update(Pass pass) override;

 private:
  SGDOptions options_;
};

}  // namespace cudl
