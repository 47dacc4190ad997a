// Command-line checks shared by the programs (CLI11 validators).
#pragma once

#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

namespace cudl::tools {

// A finite number: CLI11's Range and PositiveNumber let NaN through (every comparison with NaN
// is false) and print infinity as a 309-digit bound. Put it before them.
inline const CLI::Validator& finite() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        double d = 0;
        if (!CLI::detail::lexical_cast(s, d)) return "'" + s + "' is not a number";
        return std::isfinite(d) ? "" : "must be a finite number, got " + s;
      },
      "FINITE");
  return v;
}

}  // namespace cudl::tools
