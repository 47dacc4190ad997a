#include "train/scoring.h"

#include <algorithm>

#include "tensor/ops.h"

namespace cudl::train {

namespace {

// One-hot (B, C) float32 rows of class indices (B,), on `device`.
Tensor one_hot(const Tensor& indices, int64_t c, Device device) {
  const std::vector<int64_t> t = indices.to(Device::cpu()).to_vector<int64_t>();
  std::vector<float> oh(t.size() * static_cast<size_t>(c), 0.f);
  for (size_t i = 0; i < t.size(); ++i) {
    CUDL_CHECK(t[i] >= 0 && t[i] < c, "class index ", t[i], " outside 0..", c - 1);
    oh[i * static_cast<size_t>(c) + static_cast<size_t>(t[i])] = 1.f;
  }
  return from_vector(oh, {static_cast<int64_t>(t.size()), c}, TensorOptions().device(device));
}

// The index of each row's largest value (the first on ties), as (B,) int64.
Tensor row_argmax(const Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1);
  const std::vector<float> v = x.detach().to(Device::cpu()).contiguous().to_vector<float>();
  std::vector<int64_t> best(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    best[static_cast<size_t>(i)] = std::max_element(v.begin() + i * c, v.begin() + (i + 1) * c) -
                                   (v.begin() + i * c);
  return from_vector(best, {n});
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
      out[i + static_cast<size_t>(std::max_element(probs.begin() + i, probs.begin() + i + cs) -
                                  (probs.begin() + i))] = 1;
    }
  }
  return out;
}

Scorer::Scorer(int64_t num_classes, Device device, bool multi_label)
    : c_(num_classes), device_(device), multi_label_(multi_label), probs_(num_classes, device) {
  if (!multi_label) decided_.emplace(num_classes, device);
}

void Scorer::append(const Tensor& logits, const Tensor& targets) {
  Tensor t = targets;
  if (!multi_label_ && t.dim() == 1) t = one_hot(t, c_, device_);
  probs_.append(class_probabilities(logits, multi_label_), t);
  if (decided_) decided_->append(one_hot(row_argmax(logits), c_, device_), t);
}

Tensor Scorer::probabilities() const { return probs_.probabilities(); }

MetricsReport Scorer::compute(double threshold, Metric optimise) const {
  MetricsReport r = probs_.compute(threshold, optimise);
  if (decided_) {
    // The decisions' metrics (threshold-free argmax: the same at every threshold below 1),
    // the probabilities' average precision.
    MetricsReport d = decided_->compute(threshold, optimise);
    d.average_precision = r.average_precision;
    d.mean_average_precision = r.mean_average_precision;
    r = d;
  }
  return r;
}

}  // namespace cudl::train
