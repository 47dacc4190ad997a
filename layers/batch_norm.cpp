#include "layers/batch_norm.h"

#include <optional>

#include "layers/repr.h"
#include "tensor/autograd.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/profiler.h"

namespace cudl {

BatchNorm::BatchNorm(const char* type_name, int64_t num_features, const BatchNormOptions& options,
                     std::vector<int64_t> ranks, std::string expected_shape)
    : Module(type_name),
      num_features_(num_features),
      options_(options),
      ranks_(std::move(ranks)),
      expected_shape_(std::move(expected_shape)) {
  CUDL_CHECK(num_features > 0, type_name, ": num_features must be positive, got ", num_features);
  CUDL_CHECK(options.eps_ >= 0.0, type_name, ": eps must be >= 0, got ", options.eps_);
  CUDL_CHECK(options.momentum_ >= 0.0 && options.momentum_ <= 1.0, type_name,
             ": momentum must be in [0, 1], got ", options.momentum_);
  if (options.affine_) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
  if (options.track_running_stats_) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
}

void BatchNorm::reset_running_stats() {
  if (!options_.track_running_stats_) return;
  NoGradGuard ng;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

std::string BatchNorm::extra_repr() const {
  return std::to_string(num_features_) + ", eps=" + repr::py_float(options_.eps_) +
         ", momentum=" + repr::py_float(options_.momentum_) +
         ", affine=" + repr::py_bool(options_.affine_) +
         ", track_running_stats=" + repr::py_bool(options_.track_running_stats_);
}

Tensor BatchNorm::forward(const Tensor& x) { return run(x, Tensor(), false); }

Tensor BatchNorm::forward_act(const Tensor& x, const Tensor& residual, bool relu) {
  // Timed as one range (forward() is timed by operator()).
  std::optional<ProfileRange> range;
  if (profiler_running())
    range.emplace(type_name() + (residual.defined() ? "+Add" : "") + (relu ? "+ReLU" : "") +
                  ".forward");
  return run(x, residual, relu);
}

Tensor BatchNorm::run(const Tensor& x, const Tensor& residual, bool relu) {
  check_input(x, ranks_, num_features_, expected_shape_);
  const bool track = options_.track_running_stats_;
  const bool use_batch_stats = is_training() || !track;
  // PyTorch passes the running statistics whenever they exist: updated in training, used in
  // eval.
  Tensor y = run_op([&] {
    return batch_norm_act(x, weight, bias, track ? running_mean : Tensor(),
                          track ? running_var : Tensor(), use_batch_stats, options_.momentum_,
                          options_.eps_, residual, relu);
  });
  if (is_training() && track) increment_counter_(num_batches_tracked);
  return y;
}

BatchNorm1d::BatchNorm1d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm1d", num_features, options, {2, 3},
                "(N, " + std::to_string(num_features) + ") or (N, " + std::to_string(num_features) +
                    ", L)") {}

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm2d", num_features, options, {4},
                "(N, " + std::to_string(num_features) + ", H, W)") {}

}  // namespace cudl
