#include "models/weights_import.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace cudl {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// A small non-negative index without leading zeros ("0", "1", "12").
bool is_index(const std::string& s) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_bn_field(const std::string& s) {
  return s == "weight" || s == "bias" || s == "running_mean" || s == "running_var" ||
         s == "num_batches_tracked";
}

// "convolution.weight" -> conv_name + ".weight"; "normalization.<field>" -> bn_name + "." + field.
std::string conv_or_bn(const std::string& kind, const std::string& field,
                       const std::string& conv_name, const std::string& bn_name) {
  if (kind == "convolution" && field == "weight") return conv_name + ".weight";
  if (kind == "normalization" && is_bn_field(field)) return bn_name + "." + field;
  return "";
}

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string r;
  char b[4];
  for (size_t k = 0; k < n; ++k) {
    std::snprintf(b, sizeof b, "%02x", p[k]);
    r += (k ? " " : "") + std::string(b);
  }
  return r;
}

bool is_torchvision_resnet(const NamedTensors& t) {
  bool conv1 = false, layer1 = false;
  for (const auto& [name, x] : t) {
    conv1 = conv1 || name == "conv1.weight";
    layer1 = layer1 || name == "layer1.0.conv1.weight";
  }
  return conv1 && layer1;
}

}  // namespace

std::string hf_resnet_to_torchvision(const std::string& hf_name) {
  std::vector<std::string> p = split_dots(hf_name);
  if (p.size() == 3 && p[0] == "classifier" && p[1] == "1" && (p[2] == "weight" || p[2] == "bias"))
    return "fc." + p[2];
  size_t i = !p.empty() && p[0] == "resnet" ? 1 : 0;
  const size_t n = p.size() - i;
  if (n == 4 && p[i] == "embedder" && p[i + 1] == "embedder")
    return conv_or_bn(p[i + 2], p[i + 3], "conv1", "bn1");
  if (n >= 8 && p[i] == "encoder" && p[i + 1] == "stages" && is_index(p[i + 2]) &&
      p[i + 3] == "layers" && is_index(p[i + 4])) {
    std::string block = "layer" + std::to_string(std::stoi(p[i + 2]) + 1) + "." + p[i + 4] + ".";
    if (n == 9 && p[i + 5] == "layer" && is_index(p[i + 6])) {
      std::string k = std::to_string(std::stoi(p[i + 6]) + 1);
      return conv_or_bn(p[i + 7], p[i + 8], block + "conv" + k, block + "bn" + k);
    }
    if (n == 8 && p[i + 5] == "shortcut")
      return conv_or_bn(p[i + 6], p[i + 7], block + "downsample.0", block + "downsample.1");
  }
  return "";
}

bool is_hf_resnet_naming(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors)
    if (starts_with(name, "resnet.embedder.embedder.") || starts_with(name, "embedder.embedder."))
      return true;
  return false;
}

WeightsFileFormat detect_weights_format(const uint8_t* head, size_t n, uint64_t file_size) {
  auto has = [&](size_t at, const char* magic, size_t len) {
    return n >= at + len && std::memcmp(head + at, magic, len) == 0;
  };
  if (has(0, "PK\x03\x04", 4) || has(0, "PK\x05\x06", 4)) return WeightsFileFormat::kTorchZip;
  if (has(0, "\x89HDF\r\n\x1a\n", 8)) return WeightsFileFormat::kCudlHdf5;
  if (n >= 9) {
    uint64_t len = 0;
    for (int k = 7; k >= 0; --k) len = (len << 8) | head[k];
    if (len >= 2 && len <= file_size - 8 && head[8] == '{') return WeightsFileFormat::kSafetensors;
  }
  // torch.save before 1.6 wrote bare pickle streams (protocol 2: 0x80 0x02); the oldest
  // versions wrote tar archives.
  if (n >= 1 && head[0] == 0x80) return WeightsFileFormat::kTorchLegacy;
  if (has(257, "ustar", 5)) return WeightsFileFormat::kTorchLegacy;
  return WeightsFileFormat::kUnknown;
}

const char* weights_format_name(WeightsFileFormat f) {
  switch (f) {
    case WeightsFileFormat::kTorchZip:
      return "PyTorch torch.save zip archive";
    case WeightsFileFormat::kSafetensors:
      return "safetensors";
    case WeightsFileFormat::kCudlHdf5:
      return "HDF5 (cudl weights layout)";
    case WeightsFileFormat::kTorchLegacy:
      return "legacy PyTorch (pre-1.6 torch.save)";
    case WeightsFileFormat::kUnknown:
      return "unknown";
  }
  return "unknown";
}

ImportedWeights import_weights(const std::string& path) {
  struct stat st {};
  CUDL_CHECK(::stat(path.c_str(), &st) == 0, "cannot open '", path, "': ", std::strerror(errno));
  CUDL_CHECK(S_ISREG(st.st_mode), "'", path, "' is not a regular file");
  CUDL_CHECK(st.st_size > 0, "'", path, "' is empty");
  uint8_t head[512];
  size_t n = 0;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    CUDL_CHECK(f, "cannot open '", path, "': ", std::strerror(errno));
    n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
  }
  ImportedWeights out;
  out.format = detect_weights_format(head, n, static_cast<uint64_t>(st.st_size));
  NamedTensors raw;
  switch (out.format) {
    case WeightsFileFormat::kTorchZip:
      raw = read_torch_zip(path, &out.note);
      break;
    case WeightsFileFormat::kSafetensors:
      raw = read_safetensors(path);
      break;
    case WeightsFileFormat::kCudlHdf5:
      raw = load_weights(path).tensors;
      break;
    case WeightsFileFormat::kTorchLegacy:
      CUDL_THROW(path,
                 ": this is a legacy PyTorch file (the torch.save format before PyTorch "
                 "1.6, a bare pickle stream), which is not read here. Re-save it with a "
                 "newer PyTorch: torch.save(torch.load('old.pth', weights_only=True), "
                 "'new.pth', _use_new_zipfile_serialization=True)");
    case WeightsFileFormat::kUnknown:
      CUDL_THROW(path,
                 ": not a recognised weights file (expected a PyTorch torch.save zip "
                 "archive, a .safetensors file or a cudl HDF5 file; it starts with ",
                 hex_bytes(head, std::min<size_t>(n, 8)), ")");
  }

  if (is_hf_resnet_naming(raw)) {
    std::vector<std::string> unmapped;
    std::set<std::string> seen;
    for (auto& [name, t] : raw) {
      std::string tv = hf_resnet_to_torchvision(name);
      if (tv.empty()) {
        unmapped.push_back(name);
        continue;
      }
      CUDL_CHECK(seen.insert(tv).second, path, ": two tensors map to '", tv, "'");
      out.stored_names.push_back(name);
      out.tensors.emplace_back(tv, t);
    }
    if (!unmapped.empty()) {
      std::string list;
      for (const auto& u : unmapped) list += "\n  " + u;
      CUDL_THROW(path, ": the names are Hugging Face transformers ResNet names, but ",
                 unmapped.size(), " of them have no torchvision equivalent:", list);
    }
    out.naming = "Hugging Face transformers ResNet, renamed to torchvision's";
  } else {
    for (auto& [name, t] : raw) {
      out.stored_names.push_back(name);
      out.tensors.emplace_back(name, t);
    }
    out.naming = is_torchvision_resnet(out.tensors) ? "torchvision ResNet"
                                                    : "as stored (not a recognised ResNet naming)";
  }
  return out;
}

}  // namespace cudl
