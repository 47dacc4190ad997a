// Raw little-endian tensor data as stored in weights files (PyTorch storages, safetensors
// buffers) -> cudl tensors. cudl computes in float32 and counts in int64, so floating types
// widen or narrow to float32 (float16 and bfloat16 exactly, float64 rounded) and integer and
// bool types become int64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace cudl {

enum class RawType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

size_t raw_element_size(RawType t);
bool raw_is_floating(RawType t);
const char* raw_type_name(RawType t);  // "float32", "float16", ...

// A new contiguous CPU tensor (float32 or int64) holding the view (sizes, strides and offset in
// elements) of `base`. The caller has checked that every element the view reaches is inside
// the buffer.
Tensor gather_raw(RawType type, const uint8_t* base, const Shape& sizes,
                  const std::vector<int64_t>& strides, int64_t offset);

}  // namespace cudl
