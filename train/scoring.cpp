#include "train/scoring.h"

#include <algorithm>
#include <cmath>

#include "tensor/ops.h"

namespace cudl::train {

namespace {

// The index of the largest of p[0..c) (the first on ties), or -1 when one is NaN (a broken
// model predicts nothing rather than its first class).
int64_t argmax_or_none(const float* p, int64_t c) {
  int64_t best = 0;
  for (int64_t k = 0; k < c; ++k) {
    if (std::isnan(p[k])) return -1;
    if (p[k] > p[best]) best = k;
  }
  return c > 0 ? best : -1;
}

}  // namespace

Tensor class_probabilities(const Tensor& logits, bool multi_label) {
  const Tensor l = logits.detach().to(kFloat32);
  if (multi_label) return sigmoid(l);
  const Tensor e = exp(l - max(l, {1}, true));
  return e / sum(e, {1}, true);
}

std::vector<uint8_t> predicted_classes(const std::vector<float>& probs, int64_t c,
                                       double threshold, bool multi_label) {
  std::vector<uint8_t> out(probs.size(), 0);
  const size_t cs = static_cast<size_t>(c);
  for (size_t i = 0; i + cs <= probs.size(); i += cs) {
    if (multi_label) {
      for (size_t k = 0; k < cs; ++k) out[i + k] = probs[i + k] > threshold;
    } else {
      const int64_t best = argmax_or_none(probs.data() + i, c);
      if (best >= 0) out[i + static_cast<size_t>(best)] = 1;
    }
  }
  return out;
}

Scorer::Scorer(int64_t num_classes, Device device, bool multi_label)
    : c_(num_classes), device_(device), multi_label_(multi_label), probs_(num_classes, device) {
  if (!multi_label_) {
    std::vector<float> ids(static_cast<size_t>(c_));
    for (int64_t k = 0; k < c_; ++k) ids[static_cast<size_t>(k)] = static_cast<float>(k);
    class_ids_ = from_vector(ids, {1, c_}, TensorOptions().device(device_));
  }
}

void Scorer::append(const Tensor& logits, const Tensor& targets) {
  Tensor t = targets;
  // Class indices to one-hot rows on the device: (B, 1) == (1, C).
  if (!multi_label_ && t.dim() == 1) t = eq(t.to(kFloat32).reshape({t.size(0), 1}), class_ids_);
  probs_.append(class_probabilities(logits, multi_label_), t);
}

Tensor Scorer::probabilities() const { return probs_.probabilities(); }

MetricsReport Scorer::compute(double threshold, Metric optimise) const {
  MetricsReport r = probs_.compute(threshold, optimise);
  if (!multi_label_ && probs_.size() > 0) {
    // The one-hot argmax decisions' metrics (read at 0.5: they do not depend on the
    // threshold), at the threshold asked for and at every sweep threshold alike; the
    // probabilities' average precision. The decisions are taken once, over the whole pass.
    const std::vector<float> v =
        probs_.probabilities().to(Device::cpu()).contiguous().to_vector<float>();
    const std::vector<uint8_t> d = predicted_classes(v, c_, threshold, false);
    const Tensor decided = from_vector(std::vector<float>(d.begin(), d.end()),
                                       {probs_.size(), c_}, TensorOptions().device(device_));
    const ClassificationMetrics m = classification_metrics(decided, probs_.targets(), 0.5);
    r.at_threshold = m;
    r.at_threshold.threshold = threshold;
    for (ClassificationMetrics& row : r.sweep) {
      const double t = row.threshold;
      row = m;
      row.threshold = t;
    }
    r.optimal = optimal_threshold(r.sweep, optimise);
  }
  return r;
}

}  // namespace cudl::train
