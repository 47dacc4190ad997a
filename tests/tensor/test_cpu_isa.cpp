// The CPU kernels' two compiled copies (tensor/cpu/isa.h): the baseline and the AVX2 one give
// the same bits for every op they hold (elementwise, batch norm with its epilogue, max and
// global max pooling, forward and backward), in float32, float64 and bfloat16, in both memory
// formats, on inputs with NaNs, ties and signed zeros; and the AVX2 copy is the default where
// the CPU has AVX2. The build property behind it (the AVX2 copies leave the headers' shared
// code compiled for the baseline) is checked on the library by check_avx2_objects.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/cpu/isa.h"
#include "tensor/ops.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/pool.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

// Restores the kernel copy a test chose.
struct IsaGuard {
  cpu::KernelIsa isa = cpu::kernel_isa();
  ~IsaGuard() { cpu::set_kernel_isa(isa); }
};

// Inputs with a few NaNs, exact ties, +0 and -0 among random values.
Tensor input(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  std::vector<double> v = testing::rand64(s, seed, lo, hi).to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) {
    if (i % 101 == 7) v[i] = NAN;
    if (i % 37 == 3) v[i] = 0.5;
    if (i % 53 == 11) v[i] = (i % 2) ? 0.0 : -0.0;
  }
  return from_vector(v, s, TensorOptions(kFloat64)).to(dt);
}

// Every result of the ops that have two copies, for one dtype, memory format and shape (with
// 6 channels and 13x11 maps most loops run their vector remainders; with 35 channels and 21x45
// maps whole 256-bit vectors, in both layouts).
std::vector<Tensor> workload(DType dt, MemoryFormat format, const Shape& s) {
  std::vector<Tensor> out;
  const int64_t c = s[1];
  Tensor x = input(s, 1, dt).contiguous(format).set_requires_grad();
  Tensor x2 = input(s, 2, dt).contiguous(format).set_requires_grad();
  const Tensor g = input(s, 3, dt, -2, 2).contiguous(format);
  // Elementwise, forward and backward (the backward passes are binary ops too).
  Tensor bc = input({1, c, 1, 1}, 13, dt).set_requires_grad();  // broadcast: the strided loops
  Tensor e = add(mul(relu(x), sigmoid(x2)), exp(mul(add(x, bc), 0.5)));
  e.backward(g);
  out.insert(out.end(), {e.detach(), x.grad(), x2.grad(), bc.grad(),
                         maximum(x.detach(), x2.detach())});
  // Batch norm (statistics, epilogue, running statistics, gradients), without NaNs, with a
  // mean far from zero.
  const DType pt = compute_dtype(dt);
  Tensor xb = (testing::rand64(s, 4, 3, 5).to(dt)).contiguous(format).set_requires_grad();
  Tensor res = testing::rand64(s, 5).to(dt).contiguous(format).set_requires_grad();
  Tensor w = testing::rand64({c}, 6, 0.5, 1.5).to(pt).set_requires_grad();
  Tensor b = testing::rand64({c}, 7).to(pt).set_requires_grad();
  for (bool training : {true, false}) {
    Tensor rm = testing::rand64({c}, 8).to(pt), rv = testing::rand64({c}, 9, 0.5, 2).to(pt);
    for (Tensor* t : {&xb, &res, &w, &b}) t->set_grad(Tensor());
    Tensor y = batch_norm_act(xb, w, b, rm, rv, training, 0.1, 1e-5, res, true);
    Tensor y2 = batch_norm(xb, w, b, rm, rv, training);
    add(y, y2).backward(g.detach().to(dt));
    out.insert(out.end(), {y.detach(), y2.detach(), rm, rv, xb.grad().clone(),
                           res.grad().clone(), w.grad().clone(), b.grad().clone()});
  }
  // Max pooling and the global max pool, forward and backward (ties and NaNs route the
  // gradient).
  Tensor xp = input(s, 10, dt).contiguous(format).set_requires_grad();
  Tensor p = max_pool2d(xp, 3, 2, 1);
  p.backward(input(p.shape(), 11, dt, -2, 2).contiguous(format));
  out.insert(out.end(), {p.detach(), xp.grad().clone()});
  xp.set_grad(Tensor());
  Tensor gm = global_max_pool2d(xp);
  gm.backward(input(gm.shape(), 12, dt, -2, 2));
  out.insert(out.end(), {gm.detach(), xp.grad()});
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * elementSize(ca.dtype())) == 0;
}

TEST(CpuKernelIsa, Avx2IsTheDefaultWhereTheCpuHasIt) {
#if defined(CUDL_CPU_HAS_AVX2_COPY)
  const bool cpu_avx2 = __builtin_cpu_supports("avx2");
  EXPECT_EQ(cpu::avx2_kernels_available(), cpu_avx2);
  if (!std::getenv("CUDL_CPU_KERNELS")) {
    EXPECT_EQ(cpu::kernel_isa(), cpu_avx2 ? cpu::KernelIsa::kAvx2 : cpu::KernelIsa::kBaseline);
  }
#else
  EXPECT_FALSE(cpu::avx2_kernels_available());
#endif
  IsaGuard guard;
  cpu::set_kernel_isa(cpu::KernelIsa::kBaseline);
  EXPECT_EQ(cpu::kernel_isa(), cpu::KernelIsa::kBaseline);
  if (!cpu::avx2_kernels_available()) {
    EXPECT_THROW(cpu::set_kernel_isa(cpu::KernelIsa::kAvx2), Error);
  }
}

TEST(CpuKernelIsa, BothCopiesGiveTheSameBits) {
  if (!cpu::avx2_kernels_available()) {
    GTEST_SKIP() << "no AVX2 copy to compare: "
                 << (
#if defined(CUDL_CPU_HAS_AVX2_COPY)
                        "this CPU has no AVX2"
#else
                        "built without it (not GCC on x86-64)"
#endif
                    );
  }
  IsaGuard guard;
  using cpu::KernelIsa;
  // Runs the workload on one copy: the launchers call that copy and not the other.
  auto run_on = [](KernelIsa isa, DType dt, MemoryFormat format, const Shape& s) {
    const KernelIsa other = isa == KernelIsa::kAvx2 ? KernelIsa::kBaseline : KernelIsa::kAvx2;
    cpu::set_kernel_isa(isa);
    const uint64_t mine = cpu::kernel_calls(isa), theirs = cpu::kernel_calls(other);
    std::vector<Tensor> r = workload(dt, format, s);
    EXPECT_GT(cpu::kernel_calls(isa), mine + 20) << toString(isa) << " copy not called";
    EXPECT_EQ(cpu::kernel_calls(other), theirs) << toString(other) << " copy called";
    return r;
  };
  for (const Shape& s : {Shape{4, 6, 13, 11}, Shape{3, 35, 21, 45}}) {
    for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
      for (MemoryFormat format : {MemoryFormat::kContiguous, MemoryFormat::kChannelsLast}) {
        SCOPED_TRACE(shape_str(s) + ", " + toString(dt) + ", " + toString(format));
        const std::vector<Tensor> base = run_on(KernelIsa::kBaseline, dt, format, s);
        const std::vector<Tensor> avx2 = run_on(KernelIsa::kAvx2, dt, format, s);
        ASSERT_EQ(base.size(), avx2.size());
        for (size_t i = 0; i < base.size(); ++i) {
          ASSERT_TRUE(base[i].defined() && avx2[i].defined()) << "result " << i;
          EXPECT_TRUE(same_bits(base[i], avx2[i])) << "result " << i << " differs";
        }
      }
    }
  }
}

}  // namespace
}  // namespace cudl
