// The metrics on the CPU: the notebook's worked example, the strict threshold, the one-pass
// sweep against a brute-force loop, the optimal-threshold rule, the 0/0 convention, average
// precision by hand, and the accumulator. Values are ratios of small integer counts, so they
// are compared to 1e-12 (exact up to the last bits of a double division).
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops/metrics.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using ::cudl::testing::error_of;

constexpr double kTol = 1e-12;

// The notebook's table: 5 images x 4 labels (seeds/000_*.txt, "Hamming Accuracy & Zero-one").
const std::vector<float> kTruth = {1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0};
const std::vector<float> kPred = {1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0};

// Probabilities whose 0.5-threshold predictions are kPred (varied values, not only 0/1).
Tensor notebook_probs() {
  std::vector<float> p(kPred.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = kPred[i] > 0 ? 0.55f + 0.02f * (i % 5) : 0.1f + 0.08f * (i % 5);
  return from_vector(p, {5, 4});
}

TEST(Metrics, NotebookWorkedExample) {
  Tensor p = notebook_probs(), y = from_vector(kTruth, {5, 4});
  EXPECT_NEAR(hamming_accuracy(p, y), 0.85, kTol);   // 3 of 20 labels wrong
  EXPECT_NEAR(zero_one_accuracy(p, y), 0.40, kTol);  // 3 of 5 images wrong
  // Counted by hand from the table: TP 9, FP 2, FN 1; per class (TP, FP, FN) = (3, 0, 0),
  // (3, 1, 0), (2, 1, 0), (1, 0, 1).
  ClassificationMetrics m = classification_metrics(p, y, 0.5);
  EXPECT_NEAR(m.precision_micro, 9.0 / 11, kTol);
  EXPECT_NEAR(m.recall_micro, 9.0 / 10, kTol);
  EXPECT_NEAR(m.f1_micro, 18.0 / 21, kTol);
  EXPECT_NEAR(m.precision_macro, (1 + 0.75 + 2.0 / 3 + 1) / 4, kTol);
  EXPECT_NEAR(m.recall_macro, (1 + 1 + 1 + 0.5) / 4, kTol);
  EXPECT_NEAR(m.f1_macro, (1 + 6.0 / 7 + 0.8 + 2.0 / 3) / 4, kTol);
  // Float64 probabilities and integer targets give the same.
  EXPECT_NEAR(hamming_accuracy(p.to(kFloat64), y.to(kInt64)), 0.85, kTol);
}

TEST(Metrics, ThresholdIsStrictInTheProbabilityDtype) {
  // 0.45 as float32 is 0.449999988; the threshold 0.45 is rounded to the same float, so the
  // probability is not above it; the next float up is.
  const float at = 0.45f, above = std::nextafter(0.45f, 1.0f);
  Tensor p = from_vector<float>({at, above, 0.5f, 0.0f}, {1, 4});
  Tensor y = from_vector<float>({1, 1, 1, 0}, {1, 4});
  ThresholdCounts c = threshold_counts(p, y, {0.45, 0.5});
  EXPECT_EQ(c.tp[0 * 4 + 0], 0);  // p == threshold: predicted negative
  EXPECT_EQ(c.tp[0 * 4 + 1], 1);
  EXPECT_EQ(c.tp[1 * 4 + 2], 0);  // 0.5 at 0.5
  EXPECT_EQ(c.tn[0 * 4 + 3], 1);  // 0 at 0: not above
  // NaN is never positive.
  Tensor pn = from_vector<float>({std::nanf("")}, {1, 1});
  EXPECT_EQ(threshold_counts(pn, from_vector<float>({1}, {1, 1}), {0.0}).fn[0], 1);
}

// Brute force: one loop per threshold, straight from the definitions.
ClassificationMetrics brute_force(const std::vector<double>& p, const std::vector<double>& y,
                                  int64_t n, int64_t c, double thr) {
  const float t = static_cast<float>(thr);
  std::vector<double> tp(c), fp(c), fn(c);
  double right = 0, rows = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool all = true;
    for (int64_t j = 0; j < c; ++j) {
      const bool pred = static_cast<float>(p[i * c + j]) > t, truth = y[i * c + j] > 0.5;
      right += pred == truth;
      all = all && pred == truth;
      tp[j] += pred && truth;
      fp[j] += pred && !truth;
      fn[j] += !pred && truth;
    }
    rows += all;
  }
  auto r = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  ClassificationMetrics m;
  double TP = 0, FP = 0, FN = 0;
  for (int64_t j = 0; j < c; ++j) {
    TP += tp[j];
    FP += fp[j];
    FN += fn[j];
    m.precision_macro += r(tp[j], tp[j] + fp[j]) / c;
    m.recall_macro += r(tp[j], tp[j] + fn[j]) / c;
    m.f1_macro += r(2 * tp[j], 2 * tp[j] + fp[j] + fn[j]) / c;
  }
  m.hamming_accuracy = right / (n * c);
  m.zero_one_accuracy = rows / n;
  m.precision_micro = r(TP, TP + FP);
  m.recall_micro = r(TP, TP + FN);
  m.f1_micro = r(2 * TP, 2 * TP + FP + FN);
  return m;
}

TEST(Metrics, OnePassSweepMatchesBruteForce) {
  const int64_t n = 333, c = 5;  // several threads' worth of rows
  Generator g(7);
  Tensor u = rand({n, c}, kFloat64, &g);
  // A third of the probabilities exactly on a sweep threshold, where strictness matters.
  std::vector<double> p = u.to_vector<double>();
  for (size_t i = 0; i < p.size(); i += 3) p[i] = static_cast<float>(std::floor(p[i] * 21) / 20);
  std::vector<double> y = rand({n, c}, kFloat64, &g).to_vector<double>();
  for (double& v : y) v = v < 0.4 ? 1 : 0;
  Tensor probs = from_vector(p, {n, c}).to(kFloat32), targets = from_vector(y, {n, c});
  std::vector<ClassificationMetrics> sweep = threshold_sweep(probs, targets);
  ASSERT_EQ(sweep.size(), 21u);
  for (int k = 0; k <= 20; ++k) {
    ClassificationMetrics b = brute_force(p, y, n, c, k / 20.0);
    const ClassificationMetrics& s = sweep[k];
    EXPECT_DOUBLE_EQ(s.threshold, k / 20.0);
    for (int mi = 0; mi < 8; ++mi) {
      const Metric m = static_cast<Metric>(mi);
      EXPECT_NEAR(s.get(m), b.get(m), kTol) << toString(m) << " at threshold " << k;
    }
  }
}

TEST(Metrics, OptimalThresholdIsTheFirstStrictlyBest) {
  auto sweep_of = [](std::vector<double> zero_one) {
    std::vector<ClassificationMetrics> s;
    for (size_t k = 0; k < zero_one.size(); ++k) {
      ClassificationMetrics m;
      m.threshold = k / 20.0;
      m.zero_one_accuracy = zero_one[k];
      s.push_back(m);
    }
    return s;
  };
  OptimalThreshold o = optimal_threshold(sweep_of({0.1, 0.5, 0.7, 0.7, 0.2, 0.7}), Metric::kZeroOneAccuracy);
  EXPECT_EQ(o.index, 2);
  EXPECT_DOUBLE_EQ(o.threshold, 0.10);
  EXPECT_DOUBLE_EQ(o.value, 0.7);
  EXPECT_EQ(optimal_threshold(sweep_of({0.3, 0.3, 0.3}), Metric::kZeroOneAccuracy).index, 0);
  // On data: scores in {0.1, 0.9} with matching targets are perfect from 0.10 to 0.85; the
  // first of those thresholds wins.
  Tensor p = from_vector<float>({0.1f, 0.9f, 0.9f, 0.1f}, {2, 2});
  Tensor y = from_vector<float>({0, 1, 1, 0}, {2, 2});
  OptimalThreshold d = optimal_threshold(threshold_sweep(p, y), Metric::kZeroOneAccuracy);
  EXPECT_EQ(d.index, 2);
  EXPECT_DOUBLE_EQ(d.value, 1.0);
}

TEST(Metrics, EmptyDenominatorsScoreZero) {
  // No positives anywhere and nothing predicted: every prediction is right, but precision,
  // recall and F1 are 0/0 -> 0 (scikit-learn's zero_division=0).
  Tensor p = full({3, 2}, 0.2), y = zeros({3, 2});
  ClassificationMetrics m = classification_metrics(p, y, 0.5);
  EXPECT_EQ(m.hamming_accuracy, 1.0);
  EXPECT_EQ(m.zero_one_accuracy, 1.0);
  for (Metric k : {Metric::kPrecisionMicro, Metric::kRecallMicro, Metric::kF1Micro,
                   Metric::kPrecisionMacro, Metric::kRecallMacro, Metric::kF1Macro})
    EXPECT_EQ(m.get(k), 0.0) << toString(k);
}

TEST(Metrics, AveragePrecisionByHand) {
  // Class 0 scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.3 (neg): at 0.9 P = 1, R = 1/2; at 0.8
  // the tie counts as one threshold: P = 2/3, R = 1. AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  // Class 1 has no positives: AP 0. Class 2 is perfectly ranked: AP 1.
  Tensor p = from_vector<float>({0.9f, 0.1f, 0.2f, 0.8f, 0.2f, 0.7f, 0.8f, 0.3f, 0.6f, 0.3f, 0.4f, 0.1f}, {4, 3});
  Tensor y = from_vector<float>({1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0}, {4, 3});
  std::vector<double> ap = average_precision(p, y);
  ASSERT_EQ(ap.size(), 3u);
  EXPECT_NEAR(ap[0], 5.0 / 6, kTol);
  EXPECT_EQ(ap[1], 0.0);
  EXPECT_NEAR(ap[2], 1.0, kTol);
  EXPECT_NEAR(mean_average_precision(ap), (5.0 / 6 + 1) / 3, kTol);
}

TEST(Metrics, AccumulatorGathersBatchesAndGrows) {
  const int64_t c = 4;
  MetricsAccumulator acc(c, Device::cpu(), kFloat32, /*initial_capacity=*/4);
  Generator g(9);
  std::vector<Tensor> ps, ys;
  for (int64_t b : {3, 16, 9, 0, 1}) {
    Tensor p = rand({b, c}, kFloat32, &g);
    Tensor y = gt(rand({b, c}, kFloat32, &g), full({}, 0.6));
    acc.append(p, y);
    if (b > 0) {
      ps.push_back(p);
      ys.push_back(y);
    }
  }
  EXPECT_EQ(acc.size(), 29);
  EXPECT_EQ(acc.capacity(), 32);  // doubled from 4 until the 19 rows of the second batch fit
  Tensor all_p = cat(ps, 0), all_y = cat(ys, 0);
  EXPECT_TRUE(testing::all_close(acc.probabilities(), all_p, 0, 0));
  MetricsReport r = acc.compute(0.37, Metric::kF1Macro);
  ClassificationMetrics direct = classification_metrics(all_p, all_y, 0.37);
  EXPECT_EQ(r.n, 29);
  EXPECT_DOUBLE_EQ(r.at_threshold.threshold, 0.37);
  EXPECT_DOUBLE_EQ(r.at_threshold.f1_macro, direct.f1_macro);
  EXPECT_DOUBLE_EQ(r.at_threshold.zero_one_accuracy, direct.zero_one_accuracy);
  ASSERT_EQ(r.sweep.size(), 21u);  // the extra threshold is not part of the sweep
  std::vector<ClassificationMetrics> sweep = threshold_sweep(all_p, all_y);
  for (int k = 0; k <= 20; ++k) EXPECT_DOUBLE_EQ(r.sweep[k].hamming_accuracy, sweep[k].hamming_accuracy);
  EXPECT_EQ(r.optimal.index, optimal_threshold(sweep, Metric::kF1Macro).index);
  EXPECT_EQ(r.average_precision, average_precision(all_p, all_y));
  acc.reset();
  EXPECT_EQ(acc.size(), 0);
  EXPECT_EQ(acc.capacity(), 32);
  EXPECT_ERROR_HAS(acc.compute(), "no predictions");
  EXPECT_ERROR_HAS(acc.append(zeros({2, 3}), zeros({2, 3})), "expected (B, 4)");
}

TEST(Metrics, BadInputIsNamed) {
  EXPECT_ERROR_HAS(hamming_accuracy(zeros({4}), zeros({4})), "expected (N, C)");
  EXPECT_ERROR_HAS(hamming_accuracy(zeros({2, 3}), zeros({3, 2})), "targets of shape (3, 2)");
  EXPECT_ERROR_HAS(hamming_accuracy(zeros({0, 3}), zeros({0, 3})), "at least one row");
  EXPECT_ERROR_HAS(threshold_counts(zeros({2, 3}), zeros({2, 3}), {0.5, 0.2}), "ascending");
  EXPECT_ERROR_HAS(metric_from_string("accuracy"), "known: hamming_accuracy, zero_one_accuracy");
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(metric_from_string(toString(static_cast<Metric>(i))), static_cast<Metric>(i));
}

}  // namespace
}  // namespace cudl
