// Parameter-free layers and the container.
//   ReLU: max(x, 0), any shape.
//   Dropout(p): tensor/ops/dropout.h in training mode (Philox mask scaled by 1/(1-p)), the
//     identity in eval mode. Draws from `gen` (the default generator when null).
//   Flatten(start_dim = 1, end_dim = -1): merges those dims (a view when possible), as
//     PyTorch's nn.Flatten: (N, C, 1, 1) -> (N, C).
//   Sequential: runs its children in order; children added without a name are named "0", "1",
//     ... in order, as in PyTorch, so their parameters are "0.weight", "1.running_mean", ...
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "layers/module.h"
#include "tensor/random.h"

namespace cudl {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1, int end_dim = -1);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  int start_, end_;
};

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);

  // Appends under the next index ("0", "1", ...).
  Sequential& push_back(std::shared_ptr<Module> m);
  // Appends under a chosen name (PyTorch's Sequential(OrderedDict(...))).
  Sequential& push_back(const std::string& name, std::shared_ptr<Module> m);
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// A shared Sequential from a braced list (std::make_shared cannot take one):
//   auto body = sequential({conv, bn, std::make_shared<ReLU>()});
std::shared_ptr<Sequential> sequential(std::initializer_list<std::shared_ptr<Module>> modules);

}  // namespace cudl
