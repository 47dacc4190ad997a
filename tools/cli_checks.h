// Command-line checks shared by the programs (CLI11 validators).
#pragma once

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
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

// A device name: auto, cpu, cuda or cuda:N (whether that device exists is checked when it is
// opened).
inline const CLI::Validator& device_name() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        if (s == "auto" || s == "cpu" || s == "cuda") return "";
        if (s.rfind("cuda:", 0) == 0 && s.size() > 5 &&
            s.find_first_not_of("0123456789", 5) == std::string::npos)
          return "";
        return "'" + s + "' is not a device: expected auto, cpu, cuda or cuda:N";
      },
      "DEVICE");
  return v;
}

// A non-empty text (a column name).
inline const CLI::Validator& non_empty() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string { return s.empty() ? "must not be empty" : ""; }, "TEXT");
  return v;
}

// Why `s` cannot be an output folder, "" when it can: a non-empty name of a folder, or of
// nothing yet (created then) below a folder, not of a file nor inside one.
inline std::string output_folder_problem(const std::string& s) {
  namespace fs = std::filesystem;
  if (s.empty()) return "must not be empty";
  std::error_code ec;
  for (fs::path p(s); !p.empty(); p = p.parent_path()) {
    const fs::file_status st = fs::status(p, ec);
    if (fs::exists(st)) {
      if (fs::is_directory(st)) return "";
      if (p == fs::path(s)) return "'" + s + "' is a file: expected a folder, or a name for a new one";
      return "'" + p.string() + "' is a file, so '" + s + "' cannot be a folder in it";
    }
    if (p == p.parent_path()) break;
  }
  return "";
}

// An output folder (output_folder_problem). CLI11 does not check a default: the programs call
// output_folder_problem on it after parsing.
inline const CLI::Validator& output_folder() {
  static const CLI::Validator v([](std::string& s) { return output_folder_problem(s); }, "DIR");
  return v;
}

// After parsing: the --out in effect (a default too) as a usage error, as CLI11 prints one.
// True when it can be used.
inline bool output_folder_usable(const std::string& out) {
  const std::string problem = output_folder_problem(out);
  if (problem.empty()) return true;
  std::fprintf(stderr, "--out: %s\nRun with --help for more information.\n", problem.c_str());
  return false;
}

// The dataset folder a labels file names when given alone (--csv without --data): its own
// folder, "." for a bare file name. Its images are then DATA/images.
inline std::string dataset_folder_of(const std::string& csv) {
  const std::filesystem::path folder = std::filesystem::path(csv).parent_path();
  return folder.empty() ? "." : folder.string();
}

}  // namespace cudl::tools
