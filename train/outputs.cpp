#include "train/outputs.h"

#include <iomanip>
#include <iterator>
#include <sstream>

#include "tensor/ops/conv.h"

namespace cudl::train {

ComputeMode ComputeMode::of(const Device& device, bool mixed_precision, bool channels_last,
                            bool winograd) {
  return {mixed_precision, channels_last, winograd, device.is_cpu(),
          device.is_cpu() && onednn_bf16_native()};
}

std::string ComputeMode::cpu_convolutions() const {
  if (!cpu) return "";
  if (mixed_precision && onednn_bf16) return "onednn_bf16";
  return winograd ? "winograd" : "direct";
}

std::string ComputeMode::text() const {
  const std::string conv = cpu_convolutions();
  return std::string(mixed_precision ? ", bfloat16 mixed precision" : "") +
         (channels_last ? ", channels-last" : "") +
         (conv == "onednn_bf16" ? ", oneDNN bfloat16 convolutions"
          : conv == "winograd"  ? ", Winograd 3x3 convolutions"
          : conv == "direct"    ? ", direct convolutions"
                                : "");
}

std::string ComputeMode::slower_options() const {
  if (!cpu) return "";
  std::string out;
  if (mixed_precision && !onednn_bf16)
    out = "--mixed-precision on a CPU without bfloat16 instructions (AVX512-BF16 or AMX): the "
          "bfloat16 convolutions widen to float32, so the run is slower than in float32";
  if (channels_last && cpu_convolutions() != "onednn_bf16")
    out += std::string(out.empty() ? "" : "; ") +
           "--channels-last on the CPU: the float32 convolutions convert to NCHW and back, so "
           "the run is slower than in the default layout (channels-last is meant for GPUs)";
  return out;
}

void ComputeMode::add_json(nlohmann::json& j) const {
  j["precision"] = mixed_precision ? "bfloat16 mixed" : "float32";
  j["memory_format"] = channels_last ? "channels_last" : "contiguous";
  if (cpu) j["cpu_convolutions"] = cpu_convolutions();
}

nlohmann::json metrics_json(const ClassificationMetrics& m) {
  return {{"threshold", m.threshold},
          {"hamming_accuracy", m.hamming_accuracy},
          {"zero_one_accuracy", m.zero_one_accuracy},
          {"precision_micro", m.precision_micro},
          {"recall_micro", m.recall_micro},
          {"f1_micro", m.f1_micro},
          {"precision_macro", m.precision_macro},
          {"recall_macro", m.recall_macro},
          {"f1_macro", m.f1_macro}};
}

void add_report_json(nlohmann::json& j, const MetricsReport& r, const std::vector<std::string>& classes) {
  j["sweep"] = nlohmann::json::array();
  for (const ClassificationMetrics& s : r.sweep) j["sweep"].push_back(metrics_json(s));
  const ClassificationMetrics& best = r.sweep.at(r.optimal.index);
  j["optimal_threshold"] = {{"metric", toString(r.optimised)},
                            {"threshold", r.optimal.threshold},
                            {"value", r.optimal.value},
                            {"hamming_accuracy", best.hamming_accuracy},
                            {"zero_one_accuracy", best.zero_one_accuracy}};
  j["average_precision"] = nlohmann::json::object();
  for (size_t k = 0; k < classes.size() && k < r.average_precision.size(); ++k)
    j["average_precision"][classes[k]] = r.average_precision[k];
  j["mean_average_precision"] = r.mean_average_precision;
}

std::string epoch_table_row(const std::vector<std::string>& cells) {
  static const size_t widths[] = {7, 12, 12, 15, 15, 16, 16};
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 == cells.size()) break;
    const size_t width = i < std::size(widths) ? widths[i] : 0;
    line += std::string(width > cells[i].size() ? width - cells[i].size() : 1, ' ');
  }
  return line;
}

std::string predictions_csv(const std::vector<std::string>& classes,
                            const std::vector<std::string>& filenames, const std::vector<float>& probs,
                            const std::vector<uint8_t>& predicted_flags,
                            const std::vector<std::vector<std::string>>* truth) {
  const size_t c = classes.size();
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  };
  // Filenames may hold commas or quotes: RFC 4180 quoting.
  auto field = [](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  std::ostringstream o;
  o << "filename";
  for (const std::string& cl : classes) o << "," << field("p_" + cl);
  o << ",predicted" << (truth ? ",true" : "") << "\n" << std::setprecision(6);
  for (size_t i = 0; i < filenames.size(); ++i) {
    o << field(filenames[i]);
    std::vector<std::string> predicted;
    for (size_t k = 0; k < c; ++k) {
      o << "," << probs[i * c + k];
      if (predicted_flags[i * c + k]) predicted.push_back(classes[k]);
    }
    o << "," << field(join(predicted));
    if (truth) o << "," << field(join((*truth)[i]));
    o << "\n";
  }
  return o.str();
}

}  // namespace cudl::train
