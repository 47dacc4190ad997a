// weights_import: published ResNet weights (PyTorch torch.save files, safetensors, Hugging Face
// transformers ResNet names) -> cudl's HDF5 weights file. A thin main over
// models/weights_import.h and models/weights_io.h.
//
// Exit codes: 0 ok, 1 the input could not be converted (unreadable, corrupt, hostile, wrong
// shapes for --arch), 2 usage error. Nothing is written unless every check passed, and the
// output appears atomically (never half-written).
#include "models/weights_import.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "models/resnet_spec.h"
#include "models/weights_io.h"

namespace {

using namespace cudl;

std::string default_output(const std::string& input) {
  std::filesystem::path p(input);
  return p.replace_extension(".h5").string();
}

std::string with_thousands(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

int64_t total_values(const NamedTensors& t) {
  int64_t n = 0;
  for (const auto& [name, x] : t) n += x.numel();
  return n;
}

void print_list(const std::string& input, const ImportedWeights& w) {
  std::printf("%s: %s, %zu tensors, %s values\n", input.c_str(), weights_format_name(w.format),
              w.tensors.size(), with_thousands(total_values(w.tensors)).c_str());
  std::printf("naming: %s\n", w.naming.c_str());
  if (!w.note.empty()) std::printf("note: %s\n", w.note.c_str());
  size_t width = 0;
  for (const auto& [name, t] : w.tensors) width = std::max(width, name.size());
  for (size_t i = 0; i < w.tensors.size(); ++i) {
    const auto& [name, t] = w.tensors[i];
    std::string dtype = toString(t.dtype());
    std::string line = "  " + name + std::string(width - name.size() + 2, ' ') + dtype +
                       std::string(9 - std::min<size_t>(dtype.size(), 8), ' ') +
                       shape_str(t.shape());
    if (w.stored_names[i] != name) line += "  <- " + w.stored_names[i];
    std::printf("%s\n", line.c_str());
  }
}

bool excluded(const std::vector<std::string>& patterns, const std::string& name) {
  for (const std::string& p : patterns)
    if (name_matches(p, name)) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Converts published ResNet weights to a cudl HDF5 weights file.\n"
      "Reads PyTorch torch.save files (.pth/.pt, the zip format of PyTorch >= 1.6), .safetensors "
      "files and cudl HDF5 files; the format is recognised from the content, not the name. "
      "Hugging Face transformers ResNet names (microsoft/resnet-18, ...) are renamed to "
      "torchvision's. Pickled data is read by a restricted reader that refuses anything but "
      "tensors and never runs code from the file.",
      "weights_import"};
  app.footer(
      "Examples:\n"
      "  weights_import resnet18-f37072fd.pth --arch resnet18 -o weights/resnet18_imagenet.h5\n"
      "  weights_import model.safetensors --list\n"
      "  weights_import resnet18-f37072fd.pth --arch resnet18 --prefix body. --exclude 'fc.*'\n"
      "Exit codes: 0 ok, 1 the input could not be converted, 2 usage error.\n"
      "See weights/README.md for the file format and where to get the ImageNet weights.");
  std::string input, output, arch, prefix, strip;
  int64_t num_classes = 1000;
  bool list = false, fp16 = false;
  std::vector<std::string> excludes;
  app.add_option("INPUT", input, "Weights file to read (.pth/.pt, .safetensors or .h5)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-o,--output", output,
                 "HDF5 file to write (default: INPUT with the extension .h5; with --list and "
                 "no -o nothing is written). An existing file is replaced atomically.");
  auto* arch_opt = app.add_option("--arch", arch,
                                  "Check every tensor name and shape against torchvision's "
                                  "resnet18, resnet34 or resnet50 before writing; all "
                                  "mismatches are listed and nothing is written")
                       ->check(CLI::IsMember(resnet_architectures()));
  app.add_option("--num-classes", num_classes,
                 "Outputs of the fc layer expected by --arch (default 1000, ImageNet)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->needs(arch_opt);
  app.add_flag("--list", list,
               "Print every tensor (name, dtype, shape), the detected format and naming; "
               "Hugging Face names are shown next to their torchvision names");
  app.add_flag("--fp16", fp16,
               "Store float32 tensors as float16 datasets (half the size, about 3 significant "
               "digits); loading converts them back to float32. Off by default.");
  app.add_option("--prefix", prefix,
                 "Prepend this to every tensor name in the output, e.g. 'body.' stores a "
                 "torchvision backbone under the notebook model's body names (a trailing '.' "
                 "is added if missing)");
  app.add_option("--strip-prefix", strip,
                 "Remove this from the start of the tensor names that have it before anything "
                 "else, e.g. 'module.' of a model saved from DataParallel (a trailing '.' is "
                 "added if missing)");
  app.add_option("--exclude", excludes,
                 "Leave out tensors whose (torchvision) name matches this pattern ('*' matches "
                 "any characters), e.g. 'fc.*'; may be repeated. --arch then skips them too.")
      ->allow_extra_args(false);  // one pattern per --exclude, so INPUT may follow it

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!prefix.empty() && prefix.back() != '.') prefix += '.';
  if (!strip.empty() && strip.back() != '.') strip += '.';
  const bool write = !output.empty() || !list;
  if (write && output.empty()) output = default_output(input);
  if (write) {
    std::error_code ec1, ec2;
    auto in_path = std::filesystem::weakly_canonical(input, ec1);
    auto out_path = std::filesystem::weakly_canonical(output, ec2);
    if (!ec1 && !ec2 && in_path == out_path) {
      std::fprintf(stderr,
                   "weights_import: the output '%s' is the input file; choose another with -o\n",
                   output.c_str());
      return 2;
    }
  }

  try {
    ImportedWeights w = import_weights(input);
    if (list) print_list(input, w);

    if (!strip.empty()) {
      size_t stripped = 0;
      for (auto& [name, t] : w.tensors) {
        if (name.rfind(strip, 0) != 0) continue;
        name = name.substr(strip.size());
        ++stripped;
      }
      CUDL_CHECK(stripped > 0, input, ": no tensor name starts with '", strip, "' (--strip-prefix)");
    }
    NamedTensors tensors;
    for (auto& [name, t] : w.tensors)
      if (!excluded(excludes, name)) tensors.emplace_back(name, t);
    CUDL_CHECK(!tensors.empty(), input, ": every tensor is excluded; nothing to write");
    for (const std::string& p : excludes) {
      const bool used = std::any_of(w.tensors.begin(), w.tensors.end(),
                                    [&](const auto& nt) { return name_matches(p, nt.first); });
      if (!used) log_warning(str("--exclude '", p, "' matches no tensor of ", input));
    }
    // Weights with NaN or infinite values would train to NaN (or predict nothing): said, not
    // refused (they may be meant).
    for (const auto& [name, t] : tensors) {
      if (!isFloating(t.dtype())) continue;
      int64_t bad = 0;
      for (double v : t.to(kFloat64).contiguous().to_vector<double>()) bad += !std::isfinite(v);
      if (bad > 0) log_warning(str(input, ": ", name, " has ", bad, " NaN or infinite values"));
    }

    if (!arch.empty()) {
      std::vector<TensorSpec> spec;
      for (const TensorSpec& s : torchvision_resnet_spec(arch, num_classes))
        if (!excluded(excludes, s.name)) spec.push_back(s);
      tensors = match_weights(
          tensors, spec, {},
          str("'", input, "' checked against --arch ", arch, " with ", num_classes, " classes"));
      std::printf("%s: all %zu tensors match %s\n", input.c_str(), tensors.size(), arch.c_str());
    }
    if (!write) return 0;

    if (!prefix.empty())
      for (auto& [name, t] : tensors) name = prefix + name;
    WeightsMeta meta;
    // The architecture names the whole file only when it holds that model's tensors as is.
    if (!arch.empty() && prefix.empty() && excludes.empty()) meta.architecture = arch;
    meta.source = str(std::filesystem::path(input).filename().string(), " (",
                      weights_format_name(w.format), ", naming: ", w.naming, ")");
    SaveOptions options;
    options.fp16 = fp16;
    save_weights(output, tensors, meta, options);
    std::printf("wrote %s: %zu tensors, %s values, %s\n", output.c_str(), tensors.size(),
                with_thousands(total_values(tensors)).c_str(),
                fp16 ? "float16 (int64 counters kept)" : "float32 (int64 counters)");
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const Error*>(&e);
    std::fprintf(stderr, "weights_import: error: %s\n", ce ? ce->message().c_str() : e.what());
    return 1;
  }
  return 0;
}
