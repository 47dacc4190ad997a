// bfloat16: the upper 16 bits of an IEEE float32 (8 exponent bits, 7 mantissa bits). Storage
// type of mixed precision; arithmetic happens in float (compute_t), so every kernel that takes
// bfloat16 loads, computes in float and rounds once when it stores. Conversion from float rounds
// to nearest, ties to even, as PyTorch's c10::BFloat16 and CUDA's __float2bfloat16 do; every NaN
// becomes the positive quiet NaN 0x7fc0, as in PyTorch. The same code runs on host and device.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tensor/macros.h"

namespace cudl {

struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  // Implicit from float (like c10::BFloat16): a computed float is stored by rounding it.
  CUDL_HOST_DEVICE_INLINE bfloat16(float f) : bits(round_bits(f)) {}
  // From any arithmetic type through float (as static_cast<c10::BFloat16>(x) does).
  template <class T, class = std::enable_if_t<std::is_arithmetic<T>::value &&
                                              !std::is_same<T, float>::value>>
  CUDL_HOST_DEVICE_INLINE explicit bfloat16(T v) : bfloat16(static_cast<float>(v)) {}

  CUDL_HOST_DEVICE_INLINE operator float() const { return to_float(bits); }

  static CUDL_HOST_DEVICE_INLINE bfloat16 from_bits(uint16_t b) {
    bfloat16 r;
    r.bits = b;
    return r;
  }

  static CUDL_HOST_DEVICE_INLINE uint16_t round_bits(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;  // every NaN: the quiet NaN, as PyTorch
    // Round to nearest even: add 0x7fff plus the lowest kept bit, then truncate. Overflow of
    // the largest finite values carries into the exponent and gives inf, as it should.
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }

  static CUDL_HOST_DEVICE_INLINE float to_float(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
  }

 private:
  static CUDL_HOST_DEVICE_INLINE uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
#endif
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 must be 2 bytes");

// The type kernels compute in: float for bfloat16, the type itself otherwise. Parameters of a
// layer fed bfloat16 activations (batch norm's weight, bias and running statistics) have it too.
template <class T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<bfloat16> {
  using type = float;
};
template <class T>
using compute_t = typename ComputeType<T>::type;

}  // namespace cudl
