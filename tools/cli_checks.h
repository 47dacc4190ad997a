// Command-line checks shared by the programs (CLI11 validators).
#pragma once

#include <CLI/CLI.hpp>
#include <cmath>
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

// An output folder: a non-empty name, of a folder or of nothing yet (created then), not of a file.
inline const CLI::Validator& output_folder() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        if (s.empty()) return "must not be empty";
        std::error_code ec;
        const auto st = std::filesystem::status(s, ec);
        if (std::filesystem::exists(st) && !std::filesystem::is_directory(st))
          return "'" + s + "' is a file: expected a folder, or a name for a new one";
        return "";
      },
      "DIR");
  return v;
}

// The dataset folder a labels file names when given alone (--csv without --data): its own
// folder, "." for a bare file name. Its images are then DATA/images.
inline std::string dataset_folder_of(const std::string& csv) {
  const std::filesystem::path folder = std::filesystem::path(csv).parent_path();
  return folder.empty() ? "." : folder.string();
}

}  // namespace cudl::tools
