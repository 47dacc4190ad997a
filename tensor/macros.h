// Portability macros shared by host (g++) and device (nvcc) code.
#pragma once

#if defined(__CUDACC__)
#define CUDL_HD __host__ __device__
#define CUDL_HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#else
#define CUDL_HD
#define CUDL_HOST_DEVICE_INLINE inline
#endif
