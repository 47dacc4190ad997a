// How fridge_train and fridge_eval turn logits into probabilities, decisions and metrics, so
// that both programs give the same numbers for the same model and images.
//
// Multi-label (BCE): probability = sigmoid(logit) per class; a class is predicted when its
// probability is strictly above the threshold.
// Single-label (cross-entropy): probabilities = softmax(logits) over the classes; the predicted
// class is the most probable one, whatever the threshold (as fastai's accuracy). The metrics
// at a threshold, and the threshold sweep, are those of that one-hot decision (so zero-one
// accuracy is top-1 accuracy), and average precision ranks the softmax probabilities.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/ops/metrics.h"
#include "tensor/tensor.h"

namespace cudl::train {

// (N, C) probabilities of (N, C) float32 logits, on the logits' device.
Tensor class_probabilities(const Tensor& logits, bool multi_label);

// The predicted classes of (N, C) row-major probabilities: 1 where predicted, 0 elsewhere.
std::vector<uint8_t> predicted_classes(const std::vector<float>& probs, int64_t num_classes,
                                       double threshold, bool multi_label);

// Gathers a pass's predictions on the device and computes its MetricsReport.
class Scorer {
 public:
  Scorer(int64_t num_classes, Device device, bool multi_label);
  // logits (B, C) float32; targets on the Scorer's device: (B, C) multi-hot, or for
  // single-label (B,) int64 class indices (an index outside 0..C-1, e.g. -1, gives an all-zero
  // row: an unlabelled image), also accepted as (B, C) one-hot, or all zeros when unlabelled.
  void append(const Tensor& logits, const Tensor& targets);
  Tensor probabilities() const;  // (N, C) gathered so far
  MetricsReport compute(double threshold, Metric optimise = Metric::kZeroOneAccuracy) const;

 private:
  int64_t c_;
  Device device_;
  bool multi_label_;
  MetricsAccumulator probs_;  // the probabilities and targets
  Tensor class_ids_;          // single-label: (1, C) float32 0, 1, ..., C-1 on the device
};

}  // namespace cudl::train
