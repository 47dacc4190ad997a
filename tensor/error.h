// cudl::Error and the checking macros used everywhere.
//
// Every failed check throws cudl::Error with the source location and a message that says what
// was expected and what was found. CUDA, cuBLAS and cuDNN checks live in tensor/cuda/check.h.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cudl {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, const char* file, int line);
  // The message without the "file:line: " prefix.
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// A failure of the GPU backend: a CUDA runtime, cuBLAS or cuDNN call that failed, or device
// memory exhausted (out_of_memory()). Thrown by the checks of tensor/cuda/check.h and by the
// CUDA caching allocator, so that the programs can add what to try (train/failure.h).
class DeviceError : public Error {
 public:
  DeviceError(const std::string& what, const char* file, int line, bool out_of_memory)
      : Error(what, file, line), out_of_memory_(out_of_memory) {}
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool out_of_memory_;
};

// One bad item of input data: a label row that cannot be used or an image that cannot be read
// or decoded. The programs skip such items with --skip-bad, and say so when one stops them
// (train/failure.h). Thrown by data/labels.cpp and by ImageDataset::preload.
class BadDataError : public Error {
 public:
  enum class Kind { kRow, kRowWithoutLabels, kImage };
  BadDataError(const std::string& what, const char* file, int line, Kind kind)
      : Error(what, file, line), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

namespace detail {
inline void concat_into(std::ostringstream&) {}
template <class T, class... Rest>
void concat_into(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  concat_into(os, rest...);
}
}  // namespace detail

// Streams all arguments into one string: str("expected ", 3, " got ", x).
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::concat_into(os, args...);
  return os.str();
}

// Logs a message to stderr without throwing (used by destructors), after flushing stdout.
void log_warning(const std::string& message);

}  // namespace cudl

#define CUDL_THROW(...) throw ::cudl::Error(::cudl::str(__VA_ARGS__), __FILE__, __LINE__)

// Throws cudl::DeviceError (out_of_memory: a bool).
#define CUDL_THROW_DEVICE(out_of_memory, ...) \
  throw ::cudl::DeviceError(::cudl::str(__VA_ARGS__), __FILE__, __LINE__, (out_of_memory))

#define CUDL_CHECK(cond, ...)                                                         \
  do {                                                                                \
    if (!(cond)) CUDL_THROW(__VA_ARGS__);                                             \
  } while (0)
