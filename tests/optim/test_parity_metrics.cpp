// Level 3 of DESIGN.md for the metrics: cudl's one-pass histogram and derived metrics against
// an independent computation (tests/reference/metrics.py): one torch comparison per threshold
// as utils_cv does, scikit-learn's definitions written out in NumPy, and np.argmax for the
// optimal threshold; average precision by scikit-learn's algorithm (sort, distinct thresholds).
//
// Tolerances: the counts must be equal. The metrics are ratios of the same integers; the
// script's hamming and zero-one are torch float32 means (error <= 1e-7), the others float64:
// atol 1e-6. The optimal threshold index must be equal (a tie is part of the "tie" case).
// Average precision: float64 sums of at most 50 ratios: 1e-12.
#include <gtest/gtest.h>

#include "tensor/ops/metrics.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::load_reference;

Tensor reference(const std::string& name) { return load_reference("metrics", name); }

void check_case(const std::string& c) {
  Tensor p = reference(c + "_probs"), y = reference(c + "_targets");
  ThresholdCounts counts = threshold_counts(p, y, sweep_thresholds(21));
  EXPECT_EQ(counts.tp, reference(c + "_tp").to_vector<int64_t>()) << c;
  EXPECT_EQ(counts.fp, reference(c + "_fp").to_vector<int64_t>()) << c;
  EXPECT_EQ(counts.fn, reference(c + "_fn").to_vector<int64_t>()) << c;
  EXPECT_EQ(counts.tn, reference(c + "_tn").to_vector<int64_t>()) << c;
  EXPECT_EQ(counts.exact, reference(c + "_exact").to_vector<int64_t>()) << c;
  const std::vector<double> expect = reference(c + "_sweep").to_vector<double>();  // (21, 8)
  const std::vector<int64_t> best = reference(c + "_best").to_vector<int64_t>();    // (8)
  std::vector<ClassificationMetrics> sweep = threshold_sweep(p, y);
  for (int k = 0; k < 21; ++k)
    for (int m = 0; m < 8; ++m)
      EXPECT_NEAR(sweep[k].get(static_cast<Metric>(m)), expect[k * 8 + m], 1e-6)
          << c << " " << toString(static_cast<Metric>(m)) << " at threshold " << k;
  for (int m = 0; m < 8; ++m) {
    OptimalThreshold o = optimal_threshold(sweep, static_cast<Metric>(m));
    EXPECT_EQ(o.index, best[m]) << c << " optimal threshold of " << toString(static_cast<Metric>(m));
    EXPECT_DOUBLE_EQ(o.threshold, best[m] / 20.0);
  }
  const std::vector<double> ap = average_precision(p, y), ap_ref = reference(c + "_ap").to_vector<double>();
  ASSERT_EQ(ap.size(), ap_ref.size());
  for (size_t j = 0; j < ap.size(); ++j) EXPECT_NEAR(ap[j], ap_ref[j], 1e-12) << c << " AP of class " << j;
  EXPECT_NEAR(mean_average_precision(ap), reference(c + "_map").item(), 1e-12) << c;
}

TEST(Parity, MetricsRandomWithProbabilitiesOnThresholds) { check_case("rand"); }
TEST(Parity, MetricsWithTiedOptimum) { check_case("tie"); }
TEST(Parity, AveragePrecisionWithTiedScoresAndAnEmptyClass) { check_case("ap"); }

TEST(Parity, AccumulatorReportMatchesReference) {
  Tensor p = reference("rand_probs"), y = reference("rand_targets");
  MetricsAccumulator acc(p.size(1), Device::cpu());
  for (int64_t start = 0; start < p.size(0); start += 16)  // batches of 16, the last one short
    acc.append(p.narrow(0, start, std::min<int64_t>(16, p.size(0) - start)),
               y.narrow(0, start, std::min<int64_t>(16, p.size(0) - start)));
  MetricsReport r = acc.compute(0.5, Metric::kZeroOneAccuracy);
  const std::vector<double> expect = reference("rand_sweep").to_vector<double>();
  EXPECT_NEAR(r.at_threshold.hamming_accuracy, expect[10 * 8 + 0], 1e-6);
  EXPECT_NEAR(r.at_threshold.zero_one_accuracy, expect[10 * 8 + 1], 1e-6);
  EXPECT_EQ(r.optimal.index, reference("rand_best").to_vector<int64_t>()[1]);
  EXPECT_NEAR(r.mean_average_precision, reference("rand_map").item(), 1e-12);
}

}  // namespace
}  // namespace cudl
