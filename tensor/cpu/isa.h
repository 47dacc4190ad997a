// CPU kernels compiled twice: for the x86-64 baseline (SSE2, what Debian's compiler targets by
// default) and for AVX2, the copy chosen at run time by the CPU. The elementwise, batch norm
// and pooling loops are written so the compiler vectorises them; with AVX2 its vectors are
// twice as wide and bfloat16 widens eight values at a time. In a bfloat16 training step of the
// notebook's ResNet-18 those ops took 19% less time, the step 4% less; in float32 they are
// limited by memory and gained 2% (bench/results/cpu-2026-12-01-avx2).
//
// A kernel file (tensor/cpu/elementwise.cpp, batch_norm.cpp, pool.cpp) includes its headers,
// then puts its code between CUDL_CPU_KERNELS_BEGIN and CUDL_CPU_KERNELS_END: namespace
// cpu::baseline, or in its AVX2 copy (the file `<name>_avx2.cpp`, which defines
// CUDL_CPU_AVX2_COPY and includes the kernel file) namespace cpu::avx2 under
// `#pragma GCC target("avx2")`. The pragma, unlike -mavx2 on the command line, leaves the code
// of the headers included before it (inline functions, templates, the standard library)
// compiled for the baseline in both copies: the linker keeps one copy of each, and it must run
// on any x86-64 CPU. The kernel file's functions outside the two macros (its baseline
// compilation only) are the launchers ops call (cpu:: in tensor/ops/*_kernels.h); each calls
// one copy through CUDL_CPU_KERNEL_CALL. Each kernel of a copy counts its calls
// (detail::count_kernel_call(kThisCopy)), so tests see which copy ran.
//
// The Winograd transforms (conv_winograd.cpp) have AVX2 clones of their own, chosen by the
// loader (target_clones) where these copies are built; CUDL_CPU_KERNELS does not reach them.
//
// Not FMA: fused and separate multiply-adds round differently. Both copies give the same bits
// (tests/tensor/test_cpu_isa.cpp).
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CUDL_CPU_HAS_AVX2_COPY 1
#endif

namespace cudl::cpu {

enum class KernelIsa { kBaseline, kAvx2 };
const char* toString(KernelIsa isa);

// Whether this build has the AVX2 copy and the CPU runs it.
bool avx2_kernels_available();
// The copy the launchers call: kAvx2 where available, unless the environment says
// CUDL_CPU_KERNELS=baseline (read once) or set_kernel_isa chose otherwise.
KernelIsa kernel_isa();
// For tests and benchmarks; kAvx2 where it is not available is an error.
void set_kernel_isa(KernelIsa isa);
namespace detail {
inline thread_local uint64_t kernel_call_count[2] = {0, 0};
// Counts a call for kernel_calls: each kernel of a copy calls it with the copy's kThisCopy.
inline void count_kernel_call(KernelIsa isa) {
  ++kernel_call_count[isa == KernelIsa::kAvx2];
}
}  // namespace detail

// How many calls each copy's kernels have served on the calling thread (for tests; the
// launchers run on the thread that calls the op).
inline uint64_t kernel_calls(KernelIsa isa) {
  return detail::kernel_call_count[isa == KernelIsa::kAvx2];
}

}  // namespace cudl::cpu

#if defined(CUDL_CPU_AVX2_COPY)
#define CUDL_CPU_KERNELS_BEGIN                                \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2\")") \
  namespace cudl::cpu::avx2 {                                 \
  [[maybe_unused]] constexpr KernelIsa kThisCopy = KernelIsa::kAvx2;
#define CUDL_CPU_KERNELS_END \
  }                          \
  _Pragma("GCC pop_options")
#else
#define CUDL_CPU_KERNELS_BEGIN  \
  namespace cudl::cpu::baseline { \
  [[maybe_unused]] constexpr KernelIsa kThisCopy = KernelIsa::kBaseline;
#define CUDL_CPU_KERNELS_END }
#endif

// cpu::avx2::fn(args) or cpu::baseline::fn(args), as kernel_isa() says.
#if defined(CUDL_CPU_HAS_AVX2_COPY)
#define CUDL_CPU_KERNEL_CALL(fn, ...)                                    \
  (::cudl::cpu::kernel_isa() == ::cudl::cpu::KernelIsa::kAvx2            \
       ? ::cudl::cpu::avx2::fn(__VA_ARGS__)                             \
       : ::cudl::cpu::baseline::fn(__VA_ARGS__))
#else
#define CUDL_CPU_KERNEL_CALL(fn, ...) ::cudl::cpu::baseline::fn(__VA_ARGS__)
#endif
