// pool.cpp compiled for AVX2 (tensor/cpu/isa.h); nothing where there is no AVX2 copy.
#define CUDL_CPU_AVX2_COPY 1
#include "tensor/cpu/isa.h"
#if defined(CUDL_CPU_HAS_AVX2_COPY)
#include "tensor/cpu/pool.cpp"
#endif
