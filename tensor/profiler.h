// Profiler: the time spent in named ranges (each leaf module's forward, each autograd node's
// backward, the loss, the optimiser's step), summed per name over the calls made while it
// runs. On the CPU a range measures wall time (the ops run synchronously); on CUDA it measures
// GPU time between two events recorded on cudl's stream, read when the profiler stops, so the
// ranges add no synchronisation. While no profiler runs, a range costs one atomic load.
//
//   profiler_start(device);
//   for (...) step();
//   std::cout << format_profile(profiler_stop(), steps);
//
// Ranges should not nest (a nested range's time is also inside its parent's); the ones cudl
// opens do not: modules with children open none, and backward nodes run one after another.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/device.h"

namespace cudl {

struct ProfileEntry {
  std::string name;
  int64_t calls = 0;
  double seconds = 0;
};

class ProfileRange {
 public:
  explicit ProfileRange(const char* name);
  explicit ProfileRange(const std::string& name) : ProfileRange(name.c_str()) {}
  ~ProfileRange();
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;

 private:
  int64_t slot_ = -1;  // the range's record while a profiler runs
};

// Starts collecting ranges of work on `device` (one profiler at a time; throws otherwise).
void profiler_start(Device device);
bool profiler_running();
// Stops, waits for the device, and returns one entry per name, the most time first.
std::vector<ProfileEntry> profiler_stop();
// A table: name, calls, ms per `steps`, share of the ranges' total.
std::string format_profile(const std::vector<ProfileEntry>& entries, int64_t steps = 1);

}  // namespace cudl
