// report.html: one self-contained page (inline CSS, inline SVG plots, images embedded as
// base64 data URIs) that opens offline in any browser. Built from plain values, so it does not
// depend on how training produced them.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cudl::train {

// One row of the per-epoch history (fastai's table).
struct EpochRecord {
  int epoch = 0;
  double train_loss = 0;  // exponentially smoothed (beta 0.98, debiased), as fastai shows
  double valid_loss = 0;
  double train_hamming = 0, valid_hamming = 0;
  double train_zero_one = 0, valid_zero_one = 0;
  double seconds = 0;
};

// A picture with a caption and labels. For predictions, `marks` says per label: 1 predicted and
// true, 0 predicted but not true, 2 true but missed; -1 (or no marks) shows a plain label.
struct ReportImage {
  std::vector<uint8_t> jpeg;  // encoded JPEG bytes
  std::string caption;
  std::vector<std::string> labels;
  std::vector<int> marks;
};

struct ThresholdCurve {
  std::vector<double> thresholds;
  std::vector<double> hamming, zero_one;
  double best_threshold = 0.5;
  double best_zero_one = 0;
  double best_hamming = 0;
};

struct ReportData {
  std::string title = "cudl training report";
  std::vector<std::pair<std::string, std::string>> summary;  // key/value lines at the top
  std::vector<std::string> classes;
  std::vector<EpochRecord> history;
  ThresholdCurve sweep;
  double threshold = 0.5;  // the model's decision threshold
  std::vector<ReportImage> train_images;
  std::vector<ReportImage> valid_images;
};

std::string render_report(const ReportData& data);

// Building blocks, exposed for tests.
struct Series {
  std::string name;
  std::string colour;  // CSS colour
  std::vector<double> x, y;
  bool dashed = false;
};
// A line chart with axes, ticks, grid and a legend. `marker_x` (when finite) draws a
// vertical marker labelled `marker_label`.
std::string svg_line_chart(const std::vector<Series>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label, int width,
                           int height,
                           double marker_x = std::numeric_limits<double>::quiet_NaN(),
                           const std::string& marker_label = "");
std::string base64(const std::vector<uint8_t>& bytes);
std::string html_escape(const std::string& s);

}  // namespace cudl::train
