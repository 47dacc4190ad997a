// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. Element i of a draw with (seed, offset) comes from counter block
// offset + i/4, lane i%4, on the CPU and on the GPU alike, so one seed gives bit-identical
// uniforms (and normals within rounding of the libm) on both backends, in any thread order.
#pragma once

#include <cstdint>

#include "tensor/macros.h"

namespace cudl::philox {

struct Uint4 {
  uint32_t x, y, z, w;
};

CUDL_HOST_DEVICE_INLINE uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// The 4 random words of counter block `block` in the stream of `seed`.
CUDL_HOST_DEVICE_INLINE Uint4 block(uint64_t seed, uint64_t block_index) {
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  Uint4 c{static_cast<uint32_t>(block_index), static_cast<uint32_t>(block_index >> 32), 0u, 0u};
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c.x, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c.z, &hi1);
    c = Uint4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Uniform float in [0, 1) from the top 24 bits.
CUDL_HOST_DEVICE_INLINE float to_unit(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

enum class Dist : int { kUniform, kNormal, kBernoulli };

// The 4 values of one block for a distribution with parameters (a, b):
// uniform on [a, b); normal with mean a and std b (Box-Muller on lane pairs, computed in double
// so both backends round to the same float almost always); bernoulli: 1 with probability a.
CUDL_HOST_DEVICE_INLINE void sample4(Dist dist, double a, double b, Uint4 r, double out[4]) {
  float u[4] = {to_unit(r.x), to_unit(r.y), to_unit(r.z), to_unit(r.w)};
  if (dist == Dist::kUniform) {
    // fma on both backends: nvcc would fuse a + (b - a) * u on its own, the host would not.
    for (int i = 0; i < 4; ++i) out[i] = ::fma(b - a, static_cast<double>(u[i]), a);
  } else if (dist == Dist::kBernoulli) {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<double>(u[i]) < a ? 1.0 : 0.0;
  } else {
    for (int p = 0; p < 2; ++p) {
      // 1 - u is in (0, 1], so the log is finite.
      double u1 = 1.0 - static_cast<double>(u[2 * p]);
      double u2 = static_cast<double>(u[2 * p + 1]);
      double rad = ::sqrt(-2.0 * ::log(u1));
      double th = 6.283185307179586 * u2;
      out[2 * p] = ::fma(b * rad, ::cos(th), a);
      out[2 * p + 1] = ::fma(b * rad, ::sin(th), a);
    }
  }
}

}  // namespace cudl::philox
