// .safetensors files -> named tensors (declared in models/weights_import.h).
//
// Layout: an unsigned 64-bit little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the data; offsets are relative to the first byte after the header, and each tensor is
// dense and row-major.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "models/raw_tensor.h"
#include "models/weights_import.h"
#include "models/zip_archive.h"

namespace cudl {

namespace {

// The format's own limit; it also bounds what a hostile header can make us parse.
constexpr uint64_t kMaxHeader = 100ull << 20;

RawType parse_dtype(const std::string& path, const std::string& name, const std::string& d) {
  static const std::pair<const char*, RawType> kTypes[] = {
      {"F32", RawType::kF32},  {"F16", RawType::kF16}, {"BF16", RawType::kBF16},
      {"F64", RawType::kF64},  {"I64", RawType::kI64}, {"I32", RawType::kI32},
      {"I16", RawType::kI16},  {"I8", RawType::kI8},   {"U8", RawType::kU8},
      {"BOOL", RawType::kBool}};
  for (const auto& [n, t] : kTypes)
    if (d == n) return t;
  CUDL_THROW(path, ": tensor '", name, "' has dtype '", d,
             "', which is not supported (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
}

uint64_t get_uint(const nlohmann::ordered_json& v, const std::string& what) {
  CUDL_CHECK(v.is_number_unsigned(), what, " should be a non-negative integer, found ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

NamedTensors read_safetensors(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  CUDL_CHECK(bytes.size() >= 8, path, ": too short for a safetensors file (", bytes.size(),
             " bytes; truncated?)");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | bytes[k];
  CUDL_CHECK(header_len <= kMaxHeader, path, ": the safetensors header claims ", header_len,
             " bytes (at most ", kMaxHeader, " allowed; corrupt?)");
  CUDL_CHECK(header_len <= bytes.size() - 8, path, ": the safetensors header claims ", header_len,
             " bytes but the file has only ", bytes.size() - 8, " after the length (truncated?)");
  const char* hdr = reinterpret_cast<const char*>(bytes.data() + 8);
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(hdr, hdr + header_len);
  } catch (const nlohmann::json::exception& e) {
    CUDL_THROW(path, ": the safetensors header is not valid JSON (", e.what(), ")");
  }
  CUDL_CHECK(header.is_object(), path, ": the safetensors header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;
  NamedTensors out;
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;  // (begin, end, name)
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;  // free-form strings about the file
    const std::string what = str(path, ": tensor '", name, "'");
    CUDL_CHECK(info.is_object() && info.contains("dtype") && info.contains("shape") &&
                   info.contains("data_offsets"),
               what, ": expected an object with dtype, shape and data_offsets, found ",
               info.dump().substr(0, 200));
    CUDL_CHECK(info["dtype"].is_string(), what, ": dtype is not a string");
    RawType type = parse_dtype(path, name, info["dtype"].get<std::string>());
    const auto& shape_json = info["shape"];
    CUDL_CHECK(shape_json.is_array(), what, ": shape is not an array");
    Shape shape;
    uint64_t numel = 1;
    for (const auto& d : shape_json) {
      uint64_t n = get_uint(d, what + ": a shape entry");
      CUDL_CHECK(n <= (1ull << 62) && !__builtin_mul_overflow(numel, n, &numel), what,
                 ": shape overflows");
      shape.push_back(static_cast<int64_t>(n));
    }
    const auto& offsets = info["data_offsets"];
    CUDL_CHECK(offsets.is_array() && offsets.size() == 2, what,
               ": data_offsets should be [begin, end]");
    uint64_t begin = get_uint(offsets[0], what + ": data_offsets[0]");
    uint64_t end = get_uint(offsets[1], what + ": data_offsets[1]");
    CUDL_CHECK(begin <= end && end <= data_size, what, ": data_offsets [", begin, ", ", end,
               "] point past the end of the data (", data_size, " bytes; truncated or corrupt)");
    uint64_t need = 0;
    CUDL_CHECK(!__builtin_mul_overflow(numel, raw_element_size(type), &need) && need == end - begin,
               what, ": shape ", shape_str(shape), " of ", raw_type_name(type), " needs ", need,
               " bytes but data_offsets give ", end - begin);
    out.emplace_back(name, gather_raw(type, bytes.data() + data_start + begin, shape,
                                      contiguous_strides(shape), 0));
    if (end > begin) ranges.emplace_back(begin, end, name);
  }
  // Each byte of the data belongs to one tensor at most (the format's rule): overlapping ranges
  // mean a corrupt or crafted header, whose tensors would silently share values.
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k) {
    const auto& [b0, e0, n0] = ranges[k - 1];
    const auto& [b1, e1, n1] = ranges[k];
    CUDL_CHECK(b1 >= e0, path, ": tensors '", n0, "' (bytes ", b0, " to ", e0, ") and '", n1,
               "' (bytes ", b1, " to ", e1, ") overlap in the data (corrupt header?)");
  }
  CUDL_CHECK(!out.empty(), path, ": the safetensors file holds no tensors");
  return out;
}

}  // namespace cudl
