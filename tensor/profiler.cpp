#include "tensor/profiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>

#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#endif

namespace cudl {

namespace {

using Clock = std::chrono::steady_clock;

struct Record {
  std::string name;
  Clock::time_point begin, end;  // CPU
#ifdef CUDL_WITH_CUDA
  cudaEvent_t ev_begin = nullptr, ev_end = nullptr;  // CUDA
#endif
};

struct State {
  std::mutex mutex;
  std::atomic<bool> running{false};
  Device device;
  std::vector<Record> records;
#ifdef CUDL_WITH_CUDA
  std::vector<cudaEvent_t> spare;  // events of earlier runs, reused

  cudaEvent_t event() {
    if (!spare.empty()) {
      cudaEvent_t e = spare.back();
      spare.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    CUDL_CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }
#endif
};

State& state() {
  static State* s = new State();  // leaked: ranges may close during static destruction
  return *s;
}

}  // namespace

ProfileRange::ProfileRange(const char* name) {
  State& s = state();
  if (!s.running.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.running) return;
  Record r;
  r.name = name;
#ifdef CUDL_WITH_CUDA
  if (s.device.is_cuda()) {
    cuda::DeviceGuard guard(s.device.index);
    r.ev_begin = s.event();
    r.ev_end = s.event();
    CUDL_CUDA_CHECK(cudaEventRecord(r.ev_begin, cuda::stream(s.device.index)));
  }
#endif
  r.begin = Clock::now();
  slot_ = static_cast<int64_t>(s.records.size());
  s.records.push_back(std::move(r));
}

ProfileRange::~ProfileRange() {
  if (slot_ < 0) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.running || slot_ >= static_cast<int64_t>(s.records.size())) return;
  Record& r = s.records[static_cast<size_t>(slot_)];
  r.end = Clock::now();
#ifdef CUDL_WITH_CUDA
  if (r.ev_end) {
    try {
      cuda::DeviceGuard guard(s.device.index);
      CUDL_CUDA_WARN(cudaEventRecord(r.ev_end, cuda::stream(s.device.index)));
    } catch (const std::exception& e) {
      log_warning(str("profiler: ", e.what()));
    }
  }
#endif
}

void profiler_start(Device device) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  CUDL_CHECK(!s.running, "profiler_start: a profiler is already running");
  s.device = device;
  s.records.clear();
  s.running = true;
}

bool profiler_running() { return state().running; }

std::vector<ProfileEntry> profiler_stop() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  CUDL_CHECK(s.running, "profiler_stop: no profiler is running");
  s.running = false;
#ifdef CUDL_WITH_CUDA
  if (s.device.is_cuda()) {
    cuda::DeviceGuard guard(s.device.index);
    cuda::synchronize(s.device.index);
  }
#endif
  std::map<std::string, ProfileEntry> by_name;
  for (Record& r : s.records) {
    double sec = std::chrono::duration<double>(r.end - r.begin).count();
#ifdef CUDL_WITH_CUDA
    if (r.ev_begin) {
      float ms = 0;
      CUDL_CUDA_CHECK(cudaEventElapsedTime(&ms, r.ev_begin, r.ev_end));
      sec = ms / 1e3;
      s.spare.push_back(r.ev_begin);
      s.spare.push_back(r.ev_end);
    }
#endif
    ProfileEntry& e = by_name[r.name];
    e.name = r.name;
    e.calls++;
    e.seconds += sec;
  }
  s.records.clear();
  std::vector<ProfileEntry> out;
  for (auto& [name, e] : by_name) out.push_back(e);
  std::stable_sort(out.begin(), out.end(),
                   [](const ProfileEntry& a, const ProfileEntry& b) { return a.seconds > b.seconds; });
  return out;
}

std::string format_profile(const std::vector<ProfileEntry>& entries, int64_t steps) {
  double total = 0;
  for (const ProfileEntry& e : entries) total += e.seconds;
  const double per = steps > 0 ? static_cast<double>(steps) : 1.0;
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %9s %12s %7s\n", "range", "calls", "ms per step", "share");
  os << line;
  for (const ProfileEntry& e : entries) {
    std::snprintf(line, sizeof line, "%-28s %9.1f %12.3f %6.1f%%\n", e.name.c_str(),
                  static_cast<double>(e.calls) / per, 1e3 * e.seconds / per,
                  total > 0 ? 100.0 * e.seconds / total : 0.0);
    os << line;
  }
  std::snprintf(line, sizeof line, "%-28s %9s %12.3f\n", "all ranges", "", 1e3 * total / per);
  os << line;
  return os.str();
}

}  // namespace cudl
