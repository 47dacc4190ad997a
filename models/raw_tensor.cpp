#include "models/raw_tensor.h"

#include <cstring>

#include "models/float16.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the weights readers assume a little-endian host"
#endif

namespace cudl {

size_t raw_element_size(RawType t) {
  switch (t) {
    case RawType::kF64:
    case RawType::kI64:
      return 8;
    case RawType::kF32:
    case RawType::kI32:
      return 4;
    case RawType::kF16:
    case RawType::kBF16:
    case RawType::kI16:
      return 2;
    case RawType::kI8:
    case RawType::kU8:
    case RawType::kBool:
      return 1;
  }
  return 1;
}

bool raw_is_floating(RawType t) {
  return t == RawType::kF32 || t == RawType::kF16 || t == RawType::kBF16 || t == RawType::kF64;
}

const char* raw_type_name(RawType t) {
  switch (t) {
    case RawType::kF32:
      return "float32";
    case RawType::kF16:
      return "float16";
    case RawType::kBF16:
      return "bfloat16";
    case RawType::kF64:
      return "float64";
    case RawType::kI64:
      return "int64";
    case RawType::kI32:
      return "int32";
    case RawType::kI16:
      return "int16";
    case RawType::kI8:
      return "int8";
    case RawType::kU8:
      return "uint8";
    case RawType::kBool:
      return "bool";
  }
  return "?";
}

namespace {

template <class T>
T load(const uint8_t* base, int64_t i) {
  T v;
  std::memcpy(&v, base + sizeof(T) * i, sizeof(T));  // storages need not be aligned
  return v;
}

float load_float(RawType t, const uint8_t* base, int64_t i) {
  switch (t) {
    case RawType::kF32:
      return load<float>(base, i);
    case RawType::kF16:
      return half_to_float(load<uint16_t>(base, i));
    case RawType::kBF16:
      return bf16_to_float(load<uint16_t>(base, i));
    case RawType::kF64:
      return static_cast<float>(load<double>(base, i));
    default:
      return 0.0f;
  }
}

int64_t load_int(RawType t, const uint8_t* base, int64_t i) {
  switch (t) {
    case RawType::kI64:
      return load<int64_t>(base, i);
    case RawType::kI32:
      return load<int32_t>(base, i);
    case RawType::kI16:
      return load<int16_t>(base, i);
    case RawType::kI8:
      return load<int8_t>(base, i);
    case RawType::kU8:
      return load<uint8_t>(base, i);
    case RawType::kBool:
      return load<uint8_t>(base, i) != 0;
    default:
      return 0;
  }
}

}  // namespace

Tensor gather_raw(RawType type, const uint8_t* base, const Shape& sizes,
                  const std::vector<int64_t>& strides, int64_t offset) {
  Tensor out = empty(sizes, raw_is_floating(type) ? kFloat32 : kInt64);
  const int64_t numel = out.numel();
  const bool dense = Shape(strides.begin(), strides.end()) == contiguous_strides(sizes);
  if (dense && (type == RawType::kF32 || type == RawType::kI64)) {
    if (numel > 0)
      std::memcpy(out.data_ptr(), base + offset * raw_element_size(type),
                  static_cast<size_t>(numel) * raw_element_size(type));
    return out;
  }
  // Walk the view in row-major order with an odometer over the dimensions.
  float* of = out.dtype() == kFloat32 ? out.data<float>() : nullptr;
  int64_t* oi = out.dtype() == kInt64 ? out.data<int64_t>() : nullptr;
  std::vector<int64_t> idx(sizes.size(), 0);
  int64_t src = offset;
  for (int64_t i = 0; i < numel; ++i) {
    if (of)
      of[i] = load_float(type, base, src);
    else
      oi[i] = load_int(type, base, src);
    for (int d = static_cast<int>(sizes.size()) - 1; d >= 0; --d) {
      if (++idx[d] < sizes[d]) {
        src += strides[d];
        break;
      }
      src -= (sizes[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace cudl
