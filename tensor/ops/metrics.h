// Multi-label classification metrics, computed on the device where the predictions live.
//
// Inputs: probabilities p (N, C) (after the sigmoid, float32 or float64) and targets y (N, C)
// (multi-hot; a target counts as positive when y > 0.5; any dtype, converted to p's). Only
// small count arrays come back to the host.
//
// Binarising (RECIPE.md): pred = p > threshold, strict, compared in p's dtype: the threshold
// is first rounded to p's dtype, exactly like torch's `probs > 0.45` on a float32 tensor. The
// sweep thresholds are k / 20 for k = 0..20 (0.00, 0.05, ..., 1.00), computed as a division of
// integers in double (the values numpy.linspace(0, 1, 21) gives) and then rounded the same way.
// A NaN probability is never positive.
//
// Metrics at one threshold (TP, FP, FN, TN counted per class j):
//   hamming accuracy  = sum_j (TP_j + TN_j) / (N * C)
//   zero-one accuracy = #rows whose whole predicted label vector equals the target / N
//   precision / recall / F1, micro: from the counts summed over classes:
//       P = TP / (TP + FP), R = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN)
//   macro: the same per class, then the unweighted mean over the C classes.
//   0/0 convention (scikit-learn's zero_division=0): a ratio with an empty denominator is 0,
//   e.g. the precision of a class that is never predicted.
//
// Sweep: one pass over the predictions computes, for every element, how many thresholds lie
// below its probability, into a per-class histogram; the counts at all thresholds follow by
// prefix sums (metrics_kernels.h). Cost: O(N * C * log T), independent of the number of
// thresholds T except for the log.
//
// Optimal threshold (RECIPE.md, utils_cv's get_optimal_threshold = numpy.argmax): the first
// threshold, in ascending order, whose metric is strictly larger than every earlier one's;
// ties go to the lowest threshold. The values compared are doubles computed from integer
// counts, so equal counts give bit-identical values and a tie is a tie.
//
// Average precision (scikit-learn's average_precision_score, per class):
//   AP_j = sum_n (R_n - R_{n-1}) P_n over the distinct scores of class j in decreasing order,
//   i.e. the mean, over the positives of class j, of the precision at the threshold equal to
//   their score, where all rows with that exact score count as predicted positive (ties share
//   one threshold). A class without positives has AP 0 (scikit-learn sets its recall to 1).
//   mAP = the unweighted mean of AP_j over all C classes. Probabilities must not be NaN here.
//   CUDA: O(N^2) pair counting per class (no sort), fine for validation sets of up to some
//   tens of thousands of rows; CPU: one sort per class.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

enum class Metric {
  kHammingAccuracy,
  kZeroOneAccuracy,
  kPrecisionMicro,
  kRecallMicro,
  kF1Micro,
  kPrecisionMacro,
  kRecallMacro,
  kF1Macro,
};
const char* toString(Metric m);  // "hamming_accuracy", "zero_one_accuracy", "precision_micro", ...
// Parses the names toString() gives; throws listing them otherwise.
Metric metric_from_string(const std::string& name);

struct ClassificationMetrics {
  double threshold = 0.5;
  double hamming_accuracy = 0, zero_one_accuracy = 0;
  double precision_micro = 0, recall_micro = 0, f1_micro = 0;
  double precision_macro = 0, recall_macro = 0, f1_macro = 0;
  double get(Metric m) const;
};

// Confusion counts at each of T thresholds, on the host. Arrays of (T, C) are row-major:
// tp[k * c + j] is class j at thresholds[k].
struct ThresholdCounts {
  int64_t n = 0, c = 0;
  std::vector<double> thresholds;
  std::vector<int64_t> tp, fp, fn, tn;  // (T, C)
  std::vector<int64_t> exact;           // (T): rows entirely right
  int64_t num_thresholds() const { return static_cast<int64_t>(thresholds.size()); }
  ClassificationMetrics metrics(int64_t k) const;  // all metrics at thresholds[k]
};

// k / (steps - 1) for k = 0 .. steps - 1; steps = 21 gives 0.00, 0.05, ..., 1.00.
std::vector<double> sweep_thresholds(int steps = 21);

// One pass over p and y (both (N, C), same device, N >= 1) for any ascending thresholds.
ThresholdCounts threshold_counts(const Tensor& probs, const Tensor& targets,
                                 const std::vector<double>& thresholds);

ClassificationMetrics classification_metrics(const Tensor& probs, const Tensor& targets,
                                             double threshold = 0.5);
double hamming_accuracy(const Tensor& probs, const Tensor& targets, double threshold = 0.5);
double zero_one_accuracy(const Tensor& probs, const Tensor& targets, double threshold = 0.5);

// Every metric at each sweep threshold, from one pass.
std::vector<ClassificationMetrics> threshold_sweep(const Tensor& probs, const Tensor& targets,
                                                   int steps = 21);

struct OptimalThreshold {
  int64_t index = 0;
  double threshold = 0, value = 0;
};
OptimalThreshold optimal_threshold(const std::vector<ClassificationMetrics>& sweep, Metric metric);

// Per-class average precision (C values) and their mean.
std::vector<double> average_precision(const Tensor& probs, const Tensor& targets);
double mean_average_precision(const std::vector<double>& ap);

// Everything an evaluation reports, from one accumulator.
struct MetricsReport {
  int64_t n = 0, c = 0;
  ClassificationMetrics at_threshold;         // at the requested threshold
  std::vector<ClassificationMetrics> sweep;   // the 21 sweep thresholds
  Metric optimised = Metric::kZeroOneAccuracy;
  OptimalThreshold optimal;                   // of `optimised` over the sweep
  std::vector<double> average_precision;      // (C)
  double mean_average_precision = 0;
};

// Gathers the predictions of an epoch on the device: append() copies each batch into growing
// device buffers (capacity doubles when full; no host round-trip per batch) and compute()
// evaluates everything at the end with two kernel passes (histogram + AP).
class MetricsAccumulator {
 public:
  MetricsAccumulator(int64_t num_classes, Device device, DType dtype = kFloat32,
                     int64_t initial_capacity = 256);
  // probs (B, C) probabilities (apply sigmoid to logits first), targets (B, C) multi-hot of any
  // dtype; both on the accumulator's device.
  void append(const Tensor& probs, const Tensor& targets);
  void reset();  // forgets the rows, keeps the buffers
  int64_t size() const { return n_; }
  int64_t capacity() const { return probs_.defined() ? probs_.size(0) : 0; }
  int64_t num_classes() const { return c_; }
  Tensor probabilities() const;  // (N, C) view of the rows gathered so far
  Tensor targets() const;        // (N, C)
  MetricsReport compute(double threshold = 0.5, Metric optimise = Metric::kZeroOneAccuracy,
                        int steps = 21) const;

 private:
  void reserve(int64_t rows);
  int64_t c_;
  Device device_;
  DType dtype_;
  int64_t n_ = 0;
  Tensor probs_, targets_;  // (capacity, C)
};

}  // namespace cudl
