// IEEE 754 binary16 ("half") and bfloat16 <-> float32 conversions on raw bits, used by the
// weights readers (PyTorch HalfStorage/BFloat16Storage, safetensors F16/BF16) and by the
// optional float16 datasets of the HDF5 weights file. cudl computes in float32: these types
// only exist on disk.
#pragma once

#include <cstdint>
#include <cstring>

namespace cudl {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Exact: every binary16 value (subnormals, infinities, NaN payloads) is a float32 value.
inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);  // +-0
  // Subnormal: value = mant * 2^-24; normalise it for float32.
  int shift = 0;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    ++shift;
  }
  mant &= 0x3ffu;
  return bits_to_float(sign | (static_cast<uint32_t>(113 - shift) << 23) | (mant << 13));
}

// Round to nearest, ties to even (as numpy and PyTorch do). Values beyond the largest half
// (65504) become infinity; NaN stays NaN (quiet).
inline uint16_t float_to_half(float f) {
  uint32_t u = float_to_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): mantissa = round(|f| * 2^24).
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: rounds to 0
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14 + (112 - exp) ... bits dropped from the 24-bit mantissa
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits (a carry into the
  // exponent is the correct result, up to infinity).
  uint32_t v = abs - 0x38000000u;  // exponent bias 127 -> 15
  uint32_t q = v >> 13;
  uint32_t rem = v & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

// Exact: bfloat16 is the upper half of a float32.
inline float bf16_to_float(uint16_t b) {
  return bits_to_float(static_cast<uint32_t>(b) << 16);
}

}  // namespace cudl
