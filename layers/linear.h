// Linear: y = x @ weight^T + bias over linear() (tensor/ops/linear.h: cuBLAS / OpenBLAS).
//   input (*, in_features) -> output (*, out_features)
//   weight (out_features, in_features), bias (out_features,) unless bias = false
// Initialised like PyTorch's nn.Linear: weight kaiming_uniform_(a = sqrt(5)), i.e.
// U(-1/sqrt(in), 1/sqrt(in)), bias from the same range. (The fastai head re-initialises its
// Linear layers itself, with layers/init.h.)
#pragma once

#include "layers/module.h"
#include "tensor/random.h"

namespace cudl {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters(Generator* gen = nullptr);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  Tensor weight;  // (out_features, in_features)
  Tensor bias;    // (out_features,), undefined without bias

 private:
  int64_t in_, out_;
};

}  // namespace cudl
