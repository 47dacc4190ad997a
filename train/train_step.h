// TrainStep: one optimisation step of a model on a batch (zero_grad in place, forward, loss,
// backward, optimiser step), run eagerly or, on a CUDA device, replayed from a CUDA graph
// (tensor/graph.h).
//
// With graphs on, the first `warmup` calls run eagerly (cuDNN chooses its algorithms, the
// optimiser creates its state, the caching allocator fills up); the next call captures the
// whole step into a graph, reading the batch from input tensors of its own, and every later
// call copies the batch into those inputs, stages the optimiser's hyperparameters for that step
// (Optimizer::prepare_replay) and replays the graph: one launch instead of several hundred.
// The last eager call, unless it is the first, measures what a step allocates at its peak; the
// graph's memory pool starts as one segment of that size (CudaGraph::capture's reserve_bytes).
// Random draws (dropout) come fresh at every replay from the generators given here; the
// results equal those of eager steps up to the choice of cuDNN algorithms.
//
// A batch of another shape than the captured one runs eagerly. When the capture fails (an op
// that waits for the device, an unsupported library call), the step falls back to eager mode
// for good and reason() says why; nothing of the failed capture has run, so no step is lost.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "optim/optimizer.h"
#include "tensor/graph.h"
#include "tensor/random.h"

namespace cudl::train {

// The images in the memory format a model runs in: channels-last (a copy) or as they are.
Tensor model_input(const Tensor& images, bool channels_last);

struct TrainStepOptions {
  bool cuda_graph = true;  // on CUDA devices; ignored on the CPU
  // Forward and loss under AutocastGuard (tensor/autocast.h): bfloat16 convolutions and linear
  // layers, float32 parameters, gradients and optimiser state.
  bool mixed_precision = false;
  // Images go into the model channels-last (NHWC memory, as PyTorch's
  // model.to(memory_format=torch.channels_last) with channels-last inputs): every activation
  // then stays channels-last, the layout of cuDNN's tensor-core convolutions. Same values.
  bool channels_last = false;
  int warmup = 2;          // eager calls before the capture (at least 1)
};

class TrainStep {
 public:
  using LossFn = std::function<Tensor(const Tensor& logits, const Tensor& targets)>;

  TrainStep(Module& model, Optimizer& optimizer, LossFn loss, std::vector<Generator*> generators,
            Device device, const TrainStepOptions& options = {});

  struct Result {
    Tensor loss;    // scalar, float32
    Tensor logits;  // (B, C) float32, detached; with a graph, buffers the next call overwrites
  };
  Result run(const Tensor& images, const Tensor& targets);

  bool graphed() const { return graph_ && graph_->captured(); }
  // Why the step runs eagerly: "cpu device", "disabled", "capture failed: ...", or empty.
  const std::string& reason() const { return reason_; }

 private:
  Result eager(const Tensor& images, const Tensor& targets);
  // zero_grad, forward and loss (under autocast when asked), backward, optimiser step.
  Result step(const Tensor& images, const Tensor& targets);
  void capture(const Tensor& images, const Tensor& targets);

  Module& model_;
  Optimizer& opt_;
  LossFn loss_;
  std::vector<Generator*> generators_;
  Device device_;
  TrainStepOptions options_;
  int calls_ = 0;
  int64_t step_peak_bytes_ = 0;  // allocated at the peak of the last eager warm-up call
  std::string reason_;
  std::unique_ptr<CudaGraph> graph_;
  Tensor static_images_, static_targets_, static_loss_, static_logits_;
};

}  // namespace cudl::train
