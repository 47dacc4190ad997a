// Python-style formatting for module reprs, so printouts read like PyTorch's.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/ops/conv_geometry.h"

namespace cudl::repr {

inline std::string py_bool(bool b) {
  return b ? "True" : "False";
}

// Shortest text that reads back as v, like Python's repr(float): 0.1, 1e-05, 0.25, 1.0.
inline std::string py_float(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".einn") == std::string::npos) s += ".0";
  return s;
}

// (3, 3) as Python prints a tuple.
inline std::string tuple(Size2 s) {
  return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}
// 3 when both sides agree, (3, 2) otherwise (how PyTorch prints pooling arguments given as int).
inline std::string int_or_tuple(Size2 s) {
  return s.h == s.w ? std::to_string(s.h) : tuple(s);
}

}  // namespace cudl::repr
