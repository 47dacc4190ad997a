// BatchNorm1d and BatchNorm2d over batch_norm() (tensor/ops/batch_norm.h: cuDNN on CUDA, own
// kernels on the CPU), with PyTorch's semantics and state-dict names:
//   weight (C,) = 1, bias (C,) = 0                       parameters (when affine)
//   running_mean (C,) = 0, running_var (C,) = 1,         buffers (when track_running_stats)
//   num_batches_tracked () int64 = 0
// Training mode normalises with the batch statistics and updates the running ones
// (momentum 0.1 by default, unbiased variance for the running estimate) and counts the batch
// in num_batches_tracked; eval mode normalises with the running statistics. Without
// track_running_stats the batch statistics are used in both modes.
//   BatchNorm1d: input (N, C) or (N, C, L);  BatchNorm2d: input (N, C, H, W).
// Only a fixed momentum is supported (PyTorch's momentum=None cumulative average is not).
#pragma once

#include "layers/module.h"

namespace cudl {

struct BatchNormOptions {
  double eps_ = 1e-5;
  double momentum_ = 0.1;
  bool affine_ = true;
  bool track_running_stats_ = true;

  BatchNormOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  BatchNormOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  BatchNormOptions& affine(bool v) {
    affine_ = v;
    return *this;
  }
  BatchNormOptions& track_running_stats(bool v) {
    track_running_stats_ = v;
    return *this;
  }
};

// The shared implementation; use BatchNorm1d or BatchNorm2d.
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) in one pass (batch_norm_act): the residual add when residual is
  // defined, the ReLU when relu. Counted as this module's forward by the profiler.
  Tensor forward_act(const Tensor& x, const Tensor& residual, bool relu);
  std::string extra_repr() const override;
  // running_mean = 0, running_var = 1, num_batches_tracked = 0.
  void reset_running_stats();

  int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }

  Tensor weight, bias;                                    // (C,), undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking

 protected:
  BatchNorm(const char* type_name, int64_t num_features, const BatchNormOptions& options,
            std::vector<int64_t> ranks, std::string expected_shape);

 private:
  Tensor run(const Tensor& x, const Tensor& residual, bool relu);

  int64_t num_features_;
  BatchNormOptions options_;
  std::vector<int64_t> ranks_;
  std::string expected_shape_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& options = {});
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
};

}  // namespace cudl
