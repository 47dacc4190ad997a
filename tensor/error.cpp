#include "tensor/error.h"

#include <cstdio>
#include <iostream>

namespace cudl {

namespace {
std::string base_name(const char* file) {
  std::string f(file);
  size_t slash = f.find_last_of('/');
  // Keep "folder/file.cpp" so the message says which part of cudl failed.
  if (slash != std::string::npos && slash > 0) {
    size_t prev = f.find_last_of('/', slash - 1);
    if (prev != std::string::npos) return f.substr(prev + 1);
  }
  return f;
}
}  // namespace

Error::Error(const std::string& what, const char* file, int line)
    : std::runtime_error(base_name(file) + ":" + std::to_string(line) + ": " + what),
      message_(what) {}

void log_warning(const std::string& message) {
  // What the program printed before the warning goes first, also when stdout is a pipe or a
  // file (fully buffered there): a log then reads in order. std::cout writes through stdout.
  std::cout.flush();
  std::fflush(stdout);
  std::fprintf(stderr, "cudl warning: %s\n", message.c_str());
}

}  // namespace cudl
