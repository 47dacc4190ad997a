// Where a tensor lives. Device::best() is CUDA when a GPU answers, the CPU otherwise, so the
// same binary runs on machines with and without a GPU.
#pragma once

#include <ostream>
#include <string>

namespace cudl {

enum class DeviceType : int8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static Device cpu() { return Device{DeviceType::kCPU, 0}; }
  static Device cuda(int index = 0) { return Device{DeviceType::kCUDA, index}; }
  // cuda:0 when this build has CUDA and a device answers; cpu otherwise.
  static Device best();
  // "cpu", "cuda", "cuda:N" or "auto" (= best()). Throws cudl::Error on anything else, and
  // when a CUDA device is asked for but not available.
  static Device parse(const std::string& spec);

  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  std::string str() const;  // "cpu" or "cuda:0"
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::ostream& operator<<(std::ostream& os, const Device& d);

// True when this build contains the CUDA backend (it may still find no GPU at run time).
bool cuda_compiled();
// Number of usable CUDA devices; 0 without a GPU, without a driver, or in a CPU-only build.
int cuda_device_count();
// Why there is no usable GPU ("CUDA driver version is insufficient...", "built without CUDA"),
// empty when there is one.
std::string cuda_unavailable_reason();

}  // namespace cudl
