// Element types. Float32 is the working type; Float64 exists on both backends for gradient
// checks; BFloat16 stores activations under mixed precision (computed in float, see
// bfloat16.h); Int64 for counters and indices; UInt8 for decoded image caches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/bfloat16.h"

namespace cudl {

enum class DType : int8_t { kFloat32, kFloat64, kInt64, kUInt8, kBFloat16 };

constexpr DType kFloat32 = DType::kFloat32;
constexpr DType kFloat64 = DType::kFloat64;
constexpr DType kInt64 = DType::kInt64;
constexpr DType kUInt8 = DType::kUInt8;
constexpr DType kBFloat16 = DType::kBFloat16;

size_t elementSize(DType t);
const char* toString(DType t);
bool isFloating(DType t);
// The dtype a floating dtype computes in (float32 for bfloat16, itself otherwise); also the
// dtype of batch norm's parameters for inputs of that dtype.
DType compute_dtype(DType t);

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = kFloat64;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = kInt64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = kUInt8;
};
template <>
struct DTypeOf<bfloat16> {
  static constexpr DType value = kBFloat16;
};

}  // namespace cudl

// One case of the dispatch macros below: scalar_t bound to Type for DType::Enum.
#define CUDL_DTYPE_CASE(Enum, Type, ...) \
  case ::cudl::DType::Enum: {            \
    using scalar_t = Type;               \
    return __VA_ARGS__();                \
  }

// Runs the statement with `scalar_t` bound to the C++ type of a floating dtype.
#define CUDL_DISPATCH_FLOATING(dtype, name, ...)                                           \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      CUDL_DTYPE_CASE(kFloat32, float, __VA_ARGS__)                                        \
      CUDL_DTYPE_CASE(kFloat64, double, __VA_ARGS__)                                       \
      default:                                                                             \
        CUDL_THROW(name, ": dtype ", ::cudl::toString(dtype), " not supported (float32 or " \
                   "float64 expected)");                                                   \
    }                                                                                      \
  }()

// Same with bfloat16 as well, for kernels that load it, compute in compute_t<scalar_t> (float)
// and round once on store.
#define CUDL_DISPATCH_FLOATING_BF16(dtype, name, ...)                                      \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      CUDL_DTYPE_CASE(kFloat32, float, __VA_ARGS__)                                        \
      CUDL_DTYPE_CASE(kFloat64, double, __VA_ARGS__)                                       \
      CUDL_DTYPE_CASE(kBFloat16, ::cudl::bfloat16, __VA_ARGS__)                            \
      default:                                                                             \
        CUDL_THROW(name, ": dtype ", ::cudl::toString(dtype), " not supported (float32, "  \
                   "float64 or bfloat16 expected)");                                       \
    }                                                                                      \
  }()

// Same for every dtype.
#define CUDL_DISPATCH_ALL(dtype, name, ...)                         \
  [&] {                                                             \
    switch (dtype) {                                                \
      CUDL_DTYPE_CASE(kFloat32, float, __VA_ARGS__)                 \
      CUDL_DTYPE_CASE(kFloat64, double, __VA_ARGS__)                \
      CUDL_DTYPE_CASE(kInt64, int64_t, __VA_ARGS__)                 \
      CUDL_DTYPE_CASE(kUInt8, uint8_t, __VA_ARGS__)                 \
      CUDL_DTYPE_CASE(kBFloat16, ::cudl::bfloat16, __VA_ARGS__)     \
    }                                                               \
    CUDL_THROW(name, ": unknown dtype");                            \
  }()
