// The files fridge_train and fridge_eval both write: metrics as JSON and predictions as CSV.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/ops/metrics.h"

namespace cudl::train {

// Every metric at one threshold.
nlohmann::json metrics_json(const ClassificationMetrics& m);
// Adds "sweep", "optimal_threshold", "average_precision" (per class) and
// "mean_average_precision" of a report to j.
void add_report_json(nlohmann::json& j, const MetricsReport& r, const std::vector<std::string>& classes);

// One row per image: filename, p_<class> per class, predicted labels (probability strictly above
// `threshold`) and, when `truth` is given, the true labels. probs is (N, C) row-major.
std::string predictions_csv(const std::vector<std::string>& classes,
                            const std::vector<std::string>& filenames, const std::vector<float>& probs,
                            double threshold, const std::vector<std::vector<std::string>>* truth);

}  // namespace cudl::train
