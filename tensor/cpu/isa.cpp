#include "tensor/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "tensor/error.h"

namespace cudl::cpu {

namespace {

KernelIsa initial_isa() {
  const char* env = std::getenv("CUDL_CPU_KERNELS");
  if (env && std::strcmp(env, "baseline") == 0) return KernelIsa::kBaseline;
  return avx2_kernels_available() ? KernelIsa::kAvx2 : KernelIsa::kBaseline;
}

std::atomic<KernelIsa>& chosen() {
  static std::atomic<KernelIsa> isa{initial_isa()};
  return isa;
}

}  // namespace

const char* toString(KernelIsa isa) {
  return isa == KernelIsa::kAvx2 ? "avx2" : "baseline";
}

bool avx2_kernels_available() {
#if defined(CUDL_CPU_HAS_AVX2_COPY)
  static const bool available = __builtin_cpu_supports("avx2");
  return available;
#else
  return false;
#endif
}

KernelIsa kernel_isa() {
  return chosen().load(std::memory_order_relaxed);
}

void set_kernel_isa(KernelIsa isa) {
  CUDL_CHECK(isa != KernelIsa::kAvx2 || avx2_kernels_available(),
             "set_kernel_isa: no AVX2 kernels (this build has none, or the CPU lacks AVX2)");
  chosen().store(isa, std::memory_order_relaxed);
}

}  // namespace cudl::cpu
