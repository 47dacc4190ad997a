// The files fridge_train and fridge_eval both write: metrics as JSON and predictions as CSV.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/ops/metrics.h"

namespace cudl::train {

// Every metric at one threshold.
nlohmann::json metrics_json(const ClassificationMetrics& m);
// Adds "sweep", "optimal_threshold", "average_precision" (per class) and
// "mean_average_precision" of a report to j.
void add_report_json(nlohmann::json& j, const MetricsReport& r, const std::vector<std::string>& classes);

// How a model runs, as both programs say it: bfloat16 mixed precision or float32, the memory
// format and, on the CPU, which convolutions (Winograd, direct, or oneDNN's bfloat16 ones).
struct ComputeMode {
  bool mixed_precision = false;
  bool channels_last = false;
  bool winograd = true;  // meaningful on the CPU only
  bool cpu = true;
  // Mixed precision on a CPU whose bfloat16 convolutions run on oneDNN's bfloat16 kernels
  // (onednn_bf16_native): then those compute every direction they have a kernel for (all of
  // ResNet-18's convolutions), and only the others, and bias gradients, widen to float32.
  bool onednn_bf16 = false;
  // The mode of a run on `device`, onednn_bf16 as this CPU decides it.
  static ComputeMode of(const Device& device, bool mixed_precision, bool channels_last,
                        bool winograd);
  // On the CPU: "winograd", "direct" or "onednn_bf16"; "" on a GPU.
  std::string cpu_convolutions() const;
  // For a log line: ", bfloat16 mixed precision, channels-last, Winograd 3x3 convolutions".
  std::string text() const;
  // On the CPU, the options of this mode that make a run slower than without them, and why,
  // for a warning: --mixed-precision where the CPU has no bfloat16 instructions (its
  // convolutions then widen to float32), --channels-last outside oneDNN's bfloat16 kernels (the
  // float32 convolutions convert to NCHW and back); "" when none does, and on a GPU.
  std::string slower_options() const;
  // Adds "precision", "memory_format" and, on the CPU, "cpu_convolutions" to j.
  void add_json(nlohmann::json& j) const;
};

// One line of fridge_train's epoch table (fastai's columns: epoch, train_loss, valid_loss,
// train_hamming, valid_hamming, train_zero_one, valid_zero_one, time): each cell padded to its
// column's width, with at least one space after it however long its text.
std::string epoch_table_row(const std::vector<std::string>& cells);

// One row per image: filename, p_<class> per class, the predicted labels and, when `truth` is
// given, the true labels. probs and predicted (1 where a class is predicted: scoring.h's
// predicted_classes) are (N, C) row-major.
std::string predictions_csv(const std::vector<std::string>& classes,
                            const std::vector<std::string>& filenames, const std::vector<float>& probs,
                            const std::vector<uint8_t>& predicted,
                            const std::vector<std::vector<std::string>>* truth);

}  // namespace cudl::train
