// Scalar math shared by host and device code. The CPU loops and the CUDA kernels both call
// these, so the CPU tests cover the formulas the GPU runs ("one source of truth").
#pragma once

#include <cmath>

#include "tensor/macros.h"

namespace cudl::math {

CUDL_HOST_DEVICE_INLINE float exp(float x) { return ::expf(x); }
CUDL_HOST_DEVICE_INLINE double exp(double x) { return ::exp(x); }
CUDL_HOST_DEVICE_INLINE float log(float x) { return ::logf(x); }
CUDL_HOST_DEVICE_INLINE double log(double x) { return ::log(x); }
CUDL_HOST_DEVICE_INLINE float log1p(float x) { return ::log1pf(x); }
CUDL_HOST_DEVICE_INLINE double log1p(double x) { return ::log1p(x); }
CUDL_HOST_DEVICE_INLINE float pow(float x, float p) { return ::powf(x, p); }
CUDL_HOST_DEVICE_INLINE double pow(double x, double p) { return ::pow(x, p); }
CUDL_HOST_DEVICE_INLINE float sqrt(float x) { return ::sqrtf(x); }
CUDL_HOST_DEVICE_INLINE double sqrt(double x) { return ::sqrt(x); }
CUDL_HOST_DEVICE_INLINE float abs(float x) { return ::fabsf(x); }
CUDL_HOST_DEVICE_INLINE double abs(double x) { return ::fabs(x); }

// 1 / (1 + e^-x), without overflow for any x: e^-|x| is always <= 1.
template <class T>
CUDL_HOST_DEVICE_INLINE T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  T z = exp(x);
  return z / (T(1) + z);
}

// log(1 + e^x) for any x: max(x, 0) + log1p(e^-|x|).
template <class T>
CUDL_HOST_DEVICE_INLINE T softplus(T x) {
  return (x > T(0) ? x : T(0)) + log1p(exp(-abs(x)));
}

}  // namespace cudl::math
