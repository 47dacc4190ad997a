// train/scoring.h: the one rule both programs score by.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/common/test_util.h"
#include "train/scoring.h"

namespace cudl::train {
namespace {

// Single-label: softmax probabilities; the most probable class is the decision at any
// threshold (even where no probability reaches it), so zero-one accuracy is top-1 accuracy;
// average precision ranks the probabilities.
TEST(Scorer, SingleLabelDecidesByTheMostProbableClass) {
  // Three images, three classes; each row's largest logit gives a probability below 0.5.
  const Tensor logits = from_vector(std::vector<float>{0.3f, 0.2f, 0.1f,    // predicts 0 (true 0)
                                                       0.1f, 0.0f, 0.4f,    // predicts 2 (true 1)
                                                       0.0f, 0.1f, 0.35f},  // predicts 2 (true 2)
                                    {3, 3});
  const Tensor targets = from_vector(std::vector<int64_t>{0, 1, 2}, {3});
  Scorer s(3, Device::cpu(), false);
  s.append(logits, targets);
  const std::vector<float> p = s.probabilities().to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2], 1.0, 1e-6);
    for (int k = 0; k < 3; ++k) EXPECT_LT(p[i * 3 + k], 0.5);
  }
  const MetricsReport r = s.compute(0.5);
  EXPECT_NEAR(r.at_threshold.zero_one_accuracy, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.at_threshold.hamming_accuracy, 7.0 / 9.0, 1e-12);
  // Average precision is the probabilities' (not the one-hot decisions', which would rank
  // every image of a class alike).
  const Tensor oh = from_vector(std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3});
  const std::vector<double> ap = average_precision(s.probabilities(), oh);
  EXPECT_EQ(r.average_precision, ap);
  EXPECT_EQ(predicted_classes(p, 3, 0.5, false), (std::vector<uint8_t>{1, 0, 0, 0, 0, 1, 0, 0, 1}));
  // The decisions do not depend on the threshold: the same metrics at 1.0 and over the sweep.
  const MetricsReport at_one = s.compute(1.0);
  EXPECT_NEAR(at_one.at_threshold.zero_one_accuracy, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(at_one.at_threshold.threshold, 1.0);
  for (const ClassificationMetrics& row : r.sweep) EXPECT_NEAR(row.zero_one_accuracy, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(predicted_classes(p, 3, 1.0, false), predicted_classes(p, 3, 0.5, false));
  // A row with a NaN (a broken model) predicts nothing, rather than its first class.
  Scorer broken(3, Device::cpu(), false);
  broken.append(from_vector(std::vector<float>{NAN, 0.f, 1.f}, {1, 3}), from_vector(std::vector<int64_t>{0}, {1}));
  EXPECT_EQ(broken.compute(0.5).at_threshold.zero_one_accuracy, 0.0);
  EXPECT_EQ(predicted_classes(broken.probabilities().to_vector<float>(), 3, 0.5, false),
            (std::vector<uint8_t>{0, 0, 0}));
}

// Multi-label: sigmoid probabilities and the threshold decide, as MetricsAccumulator does.
TEST(Scorer, MultiLabelIsSigmoidAndThreshold) {
  const Tensor logits = from_vector(std::vector<float>{2.f, -1.f, 0.1f, -3.f}, {2, 2});
  const Tensor targets = from_vector(std::vector<float>{1, 0, 0, 0}, {2, 2});
  Scorer s(2, Device::cpu(), true);
  s.append(logits, targets);
  const std::vector<float> p = s.probabilities().to_vector<float>();
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_EQ(predicted_classes(p, 2, 0.5, true), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_NEAR(s.compute(0.5).at_threshold.hamming_accuracy, 0.75, 1e-12);
  EXPECT_NEAR(s.compute(0.6).at_threshold.hamming_accuracy, 1.0, 1e-12);
}

}  // namespace
}  // namespace cudl::train
