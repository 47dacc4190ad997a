#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cudl::train {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled) {}

void ProgressBar::start(const std::string& label, int64_t total) {
  label_ = label;
  total_ = total;
  start_ = std::chrono::steady_clock::now();
  update(0);
}

void ProgressBar::update(int64_t done, const std::string& suffix) {
  if (!enabled_) return;
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : 0;
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %.1fs %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), s, suffix.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace cudl::train
