// Progress on a terminal: a live bar on stderr redrawn in place (fastai's progress bar), or
// nothing when stderr is not a terminal (logs and pipes get only the per-epoch lines).
#pragma once

#include <chrono>
#include <string>

namespace cudl::train {

class ProgressBar {
 public:
  // enabled: draw at all (false when stderr is not a terminal).
  explicit ProgressBar(bool enabled);
  // A new bar: `label` before it, `total` steps.
  void start(const std::string& label, int64_t total);
  void update(int64_t done, const std::string& suffix = "");
  void finish();  // clears the line
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::string label_;
  int64_t total_ = 0;
  std::chrono::steady_clock::time_point start_;
};

bool stderr_is_terminal();

}  // namespace cudl::train
