#include "train/train_step.h"

#include <algorithm>
#include <cstdint>

#include "tensor/allocator.h"
#include "tensor/autocast.h"
#include "tensor/error.h"

namespace cudl::train {

Tensor model_input(const Tensor& images, bool channels_last) {
  return channels_last ? images.contiguous(MemoryFormat::kChannelsLast) : images;
}

TrainStep::TrainStep(Module& model, Optimizer& optimizer, LossFn loss,
                     std::vector<Generator*> generators, Device device,
                     const TrainStepOptions& options)
    : model_(model),
      opt_(optimizer),
      loss_(std::move(loss)),
      generators_(std::move(generators)),
      device_(device),
      options_(options) {
  CUDL_CHECK(options_.warmup >= 1, "TrainStep: at least one eager warm-up step is needed, got ",
             options_.warmup);
  if (!device_.is_cuda()) {
    reason_ = "cpu device";
  } else if (!options_.cuda_graph) {
    reason_ = "disabled";
  }
}

TrainStep::Result TrainStep::step(const Tensor& images, const Tensor& targets) {
  opt_.zero_grad();
  Result r;
  {
    AutocastGuard autocast(options_.mixed_precision);
    r.logits = model_(model_input(images, options_.channels_last));
    r.loss = loss_(r.logits, targets);
  }
  r.loss.backward();
  opt_.step();
  r.logits = r.logits.detach().to(kFloat32);  // bfloat16 under autocast
  return r;
}

TrainStep::Result TrainStep::eager(const Tensor& images, const Tensor& targets) {
  return step(images, targets);
}

void TrainStep::capture(const Tensor& images, const Tensor& targets) {
  static_images_ = empty(images.shape(), TensorOptions(images.dtype()).device(device_));
  static_targets_ = empty(targets.shape(), TensorOptions(targets.dtype()).device(device_));
  // The capture allocates a whole step's memory in a pool of its own while nothing cached may
  // be given back during it: give back the warm-up's cached blocks first.
  empty_cache(device_);
  graph_ = std::make_unique<CudaGraph>(device_);
  // The pool starts as one segment of the eager step's peak (1/64 more for the static outputs
  // and rounding): its blocks then merge when freed, which segments per request do not. The
  // peak counts blocks below 1 MiB too, which the pool keeps apart: a little too much.
  const size_t reserve = static_cast<size_t>(step_peak_bytes_ + step_peak_bytes_ / 64);
  try {
    graph_->capture(
        [&] {
          Result r = step(static_images_, static_targets_);
          static_loss_ = r.loss;
          static_logits_ = r.logits;
        },
        generators_, reserve);
  } catch (const Error& e) {
    reason_ = std::string("capture failed: ") + e.message();
    graph_.reset();
    static_images_ = static_targets_ = static_loss_ = static_logits_ = Tensor();
    return;
  }
  // The warm-up's cached activations are not needed any more: the graph has its own.
  empty_cache(device_);
}

TrainStep::Result TrainStep::run(const Tensor& images, const Tensor& targets) {
  if (!reason_.empty() || calls_ < options_.warmup) {
    // The last eager call before the capture measures what a step allocates at its peak, to
    // size the graph's pool. Not the first call: cuDNN's algorithm search then takes
    // workspaces no later step needs.
    const bool measure = reason_.empty() && calls_ == options_.warmup - 1 && calls_ > 0;
    ++calls_;
    if (!measure) return eager(images, targets);
    const int64_t before = memory_stats(device_).allocated_bytes;
    watch_peak_allocated(device_);
    Result r = eager(images, targets);
    step_peak_bytes_ = std::max<int64_t>(0, watched_peak_allocated(device_) - before);
    return r;
  }
  ++calls_;
  if (!graph_) {
    capture(images, targets);
    if (!graph_) return eager(images, targets);  // the capture failed: reason() says why
  }
  if (images.shape() != static_images_.shape() || targets.shape() != static_targets_.shape() ||
      images.dtype() != static_images_.dtype() || targets.dtype() != static_targets_.dtype())
    return eager(images, targets);
  static_images_.copy_(images);
  static_targets_.copy_(targets);
  opt_.prepare_replay();
  graph_->replay();
  return {static_loss_, static_logits_};
}

}  // namespace cudl::train
