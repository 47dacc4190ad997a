#include "tensor/dtype.h"

#include "tensor/error.h"

namespace cudl {

size_t elementSize(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kBFloat16: return 2;
  }
  CUDL_THROW("unknown dtype ", static_cast<int>(t));
}

const char* toString(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

bool isFloating(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kBFloat16;
}

DType compute_dtype(DType t) { return t == DType::kBFloat16 ? DType::kFloat32 : t; }

}  // namespace cudl
