// Level 2 of DESIGN.md for bfloat16: every CUDA op that takes bfloat16 against the CPU's
// bfloat16 result of the same op on the same inputs (the CPU is the reference). Each test skips
// with the reason when no GPU is present.
//
// Semantics on both sides: operands load as float, the op computes in float (statistics and the
// bias gradient in double), and the result rounds to bfloat16 once. Tolerances follow from that:
// - casts, copies, fills, uniform/Bernoulli draws, max pooling (forward and the gradient sums,
//   same formula in the same order) are exact;
// - elementwise ops and sums round a float result that may differ in its last float bits
//   (CUDA's libm vs glibc, another summation order): at most one bfloat16 ulp apart, i.e.
//   |gpu - cpu| <= 1e-2 * |cpu| (one ulp is 2^-8..2^-7 of the value) plus a small absolute term;
// - convolutions, matrix products and batch norm's dx sum many products (in float on tensor
//   cores vs OpenBLAS/oneDNN) and may cancel: |gpu - cpu| <= 1e-2 * (max|cpu| + |cpu|);
// - float32 outputs (batch norm's parameter gradients and running statistics) come from double
//   sums on both sides: 1e-4 of the scale.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/pool.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

const Device kGpu = Device::cuda(0);

// Uniform on [lo, hi), drawn in float32 and rounded to `dt` (bfloat16 by default) on the CPU, so
// the CPU and GPU copies of an input hold the same values.
Tensor rnd(const Shape& s, uint64_t seed, double lo = -1, double hi = 1, DType dt = kBFloat16) {
  Generator g(seed);
  Tensor t = empty(s, kFloat32);
  uniform_(t, lo, hi, &g);
  return t.to(dt);
}

double scale_of(const Tensor& t) {
  return max(abs(t.detach().to(Device::cpu()).to(kFloat64))).item();
}

// |gpu - cpu| <= rtol * |cpu| + atol_frac * max|cpu|, and the result must be on the GPU with the
// CPU result's dtype.
::testing::AssertionResult close(const Tensor& gpu, const Tensor& cpu, double rtol,
                                 double atol_frac) {
  if (!gpu.defined() || !cpu.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (!gpu.device().is_cuda()) return ::testing::AssertionFailure() << "result not on the GPU";
  if (gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << "dtype " << toString(gpu.dtype()) << " on the GPU, "
                                         << toString(cpu.dtype()) << " on the CPU";
  return all_close(gpu.to(Device::cpu()), cpu, atol_frac * scale_of(cpu), rtol);
}

// The bits of a bfloat16 tensor (any device), in row-major order.
std::vector<uint16_t> bits_of(const Tensor& t) {
  EXPECT_EQ(t.dtype(), kBFloat16);
  const Tensor h = t.detach().to(Device::cpu()).contiguous();
  const bfloat16* p = h.data<bfloat16>();
  std::vector<uint16_t> out(static_cast<size_t>(h.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = p[i].bits;
  return out;
}

std::vector<uint32_t> float_bits_of(const Tensor& t) {
  const std::vector<float> v = t.detach().to(Device::cpu()).contiguous().to_vector<float>();
  std::vector<uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

Tensor floats_from_bits(const std::vector<uint32_t>& bits) {
  std::vector<float> v(bits.size());
  std::memcpy(v.data(), bits.data(), bits.size() * sizeof(float));
  return from_vector(v, {static_cast<int64_t>(v.size())});
}

bool is_nan_bits(uint32_t u) {
  return (u & 0x7fffffffu) > 0x7f800000u;
}
bool is_nan_bf16(uint16_t b) {
  return (b & 0x7fffu) > 0x7f80u;
}

// Round to nearest, ties to even, written independently of bfloat16.h: keep the upper 16 bits,
// add one when the dropped half is above 0x8000, or equal to it with an odd kept part. For a
// NaN only NaN-ness is specified (which NaN is bfloat16.h's choice; GPU and CPU must agree).
bool rounds_correctly(uint32_t u, uint16_t result) {
  if (is_nan_bits(u)) return is_nan_bf16(result);
  const uint32_t upper = u >> 16, lower = u & 0xffffu;
  const bool up = lower > 0x8000u || (lower == 0x8000u && (upper & 1u));
  return result == static_cast<uint16_t>(upper + (up ? 1u : 0u));
}

// Runs f on CPU and GPU copies of the inputs (all requiring grad), compares the outputs and
// every input gradient for a fixed random upstream gradient of the output's dtype.
void compare_devices(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                     const std::vector<Tensor>& inputs, double rtol, double atol_frac,
                     const std::string& what) {
  SCOPED_TRACE(what);
  auto [cpu_in, gpu_in] = testing::leaf_copies(inputs, kGpu);
  Tensor yc = f(cpu_in), yg = f(gpu_in);
  ASSERT_EQ(yc.dtype(), kBFloat16) << "the op is meant to run in bfloat16";
  EXPECT_TRUE(close(yg, yc, rtol, atol_frac)) << "forward";
  const Tensor g = rnd(yc.shape(), 99, 0.5, 1.5);
  yc.backward(g);
  yg.backward(g.to(kGpu));
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_TRUE(close(gpu_in[i].grad(), cpu_in[i].grad(), rtol, atol_frac))
        << "gradient of input " << i;
}

TEST(CudaBf16, CastRoundsToNearestEvenExactly) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // float bits -> expected bfloat16 bits (for NaNs: some NaN, the same on both devices).
  const std::vector<std::pair<uint32_t, uint16_t>> cases = {
      {0x3f800000u, 0x3f80u},                          // 1
      {0x3f808000u, 0x3f80u},                          // tie, kept part even: down
      {0x3f818000u, 0x3f82u},                          // tie, kept part odd: up
      {0x3f808001u, 0x3f81u},                          // just above the tie
      {0x3f807fffu, 0x3f80u},                          // just below the tie
      {0x3f80ffffu, 0x3f81u}, {0xbf818000u, 0xbf82u},  // negative tie, odd: away from zero
      {0x40490fdbu, 0x4049u},                          // pi
      {0x3eaaaaabu, 0x3eabu},                          // 1/3
      {0x7f7fffffu, 0x7f80u},                          // FLT_MAX rounds to +inf
      {0x7f7f7fffu, 0x7f7fu},                          // the largest value that stays finite
      {0x7f800000u, 0x7f80u},                          // +inf
      {0xff800000u, 0xff80u},                          // -inf
      {0x7fc00000u, 0x7fc0u},                          // quiet NaN
      {0x7f800001u, 0x7fc0u},  // NaN whose payload lies only in the dropped half: still NaN
      {0xffc00000u, 0x7fc0u},  // negative NaN
      {0x00018000u, 0x0002u},  // subnormal tie, odd: up
      {0x00008000u, 0x0000u},  // subnormal tie, even: down to +0
      {0x80000000u, 0x8000u},  // -0
  };
  std::vector<uint32_t> in;
  for (const auto& c : cases) in.push_back(c.first);
  const Tensor f = floats_from_bits(in);
  const std::vector<uint16_t> gpu = bits_of(f.to(kGpu).to(kBFloat16));
  const std::vector<uint16_t> cpu = bits_of(f.to(kBFloat16));
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(gpu[i], cpu[i]) << std::hex << "float 0x" << cases[i].first << ": GPU vs CPU";
    if (is_nan_bits(cases[i].first)) {
      EXPECT_TRUE(is_nan_bf16(gpu[i])) << std::hex << "float 0x" << cases[i].first;
    } else {
      EXPECT_EQ(gpu[i], cases[i].second) << std::hex << "float 0x" << cases[i].first;
    }
  }

  // A million random float bit patterns (every exponent, NaNs and infinities included).
  std::vector<uint32_t> random_bits(1 << 20);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint32_t& b : random_bits) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<uint32_t>(state >> 32);
  }
  const Tensor r = floats_from_bits(random_bits);
  const std::vector<uint16_t> rg = bits_of(r.to(kGpu).to(kBFloat16));
  const std::vector<uint16_t> rc = bits_of(r.to(kBFloat16));
  int64_t bad_ref = 0, bad_cpu = 0;
  for (size_t i = 0; i < random_bits.size(); ++i) {
    bad_ref += !rounds_correctly(random_bits[i], rg[i]);
    bad_cpu += rg[i] != rc[i];
  }
  EXPECT_EQ(bad_ref, 0) << "GPU casts that differ from round-to-nearest-even";
  EXPECT_EQ(bad_cpu, 0) << "GPU casts that differ from the CPU's";

  // float64 -> bfloat16 goes through float on both backends.
  Tensor d = rnd({4099}, 1, -1e6, 1e6, kFloat64) * 1.000000123;
  EXPECT_EQ(bits_of(d.to(kGpu).to(kBFloat16)), bits_of(d.to(kBFloat16)));
}

TEST(CudaBf16, WideningCastsAreExact) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Every bfloat16 bit pattern, to float32 (exact: the bits shifted up) and to float64.
  Tensor all = empty({65536}, kBFloat16);
  bfloat16* p = all.data<bfloat16>();
  for (uint32_t b = 0; b < 65536u; ++b) p[b] = bfloat16::from_bits(static_cast<uint16_t>(b));
  const Tensor g = all.to(kGpu);
  const std::vector<uint32_t> f = float_bits_of(g.to(kFloat32));
  int64_t bad = 0;
  for (uint32_t b = 0; b < 65536u; ++b) bad += f[b] != (b << 16);
  EXPECT_EQ(bad, 0) << "bfloat16 -> float32 must shift the bits";
  const std::vector<double> dg = g.to(kFloat64).to(Device::cpu()).to_vector<double>();
  const std::vector<double> dc = all.to(kFloat64).to_vector<double>();
  ASSERT_EQ(dg.size(), dc.size());
  bad = 0;
  for (size_t i = 0; i < dg.size(); ++i)
    bad += !(dg[i] == dc[i] || (std::isnan(dg[i]) && std::isnan(dc[i])));
  EXPECT_EQ(bad, 0) << "bfloat16 -> float64";
  // bfloat16 -> float32 -> bfloat16: identical bits (NaNs: as the CPU makes them).
  const std::vector<uint16_t> trip = bits_of(g.to(kFloat32).to(kBFloat16));
  EXPECT_EQ(trip, bits_of(all.to(kFloat32).to(kBFloat16)));
  bad = 0;
  for (uint32_t b = 0; b < 65536u; ++b)
    bad += is_nan_bf16(static_cast<uint16_t>(b)) ? !is_nan_bf16(trip[b]) : trip[b] != b;
  EXPECT_EQ(bad, 0) << "round trip through float32";
}

TEST(CudaBf16, IntegerCastsMatchCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Integers up to 2^8 are exact in bfloat16; larger ones round.
  const Tensor i64 = arange(-70000, 70000, 37, TensorOptions(kInt64));
  EXPECT_EQ(bits_of(i64.to(kGpu).to(kBFloat16)), bits_of(i64.to(kBFloat16)));
  const Tensor u8 = arange(0, 256, 1, TensorOptions(kUInt8));
  EXPECT_EQ(bits_of(u8.to(kGpu).to(kBFloat16)), bits_of(u8.to(kBFloat16)));
  const Tensor b = rnd({1000}, 2, -300, 300);
  EXPECT_EQ(b.to(kGpu).to(kInt64).to(Device::cpu()).to_vector<int64_t>(),
            b.to(kInt64).to_vector<int64_t>());
  const Tensor bu = rnd({1000}, 3, 0, 255);
  EXPECT_EQ(bu.to(kGpu).to(kUInt8).to(Device::cpu()).to_vector<uint8_t>(),
            bu.to(kUInt8).to_vector<uint8_t>());
}

TEST(CudaBf16, CopiesFillsAndViews) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const TensorOptions o = TensorOptions(kBFloat16).device(kGpu);
  EXPECT_EQ(bits_of(full({5}, 1.7, o)), bits_of(full({5}, 1.7, TensorOptions(kBFloat16))));
  EXPECT_EQ(bits_of(full({3}, -1e30, o)), bits_of(full({3}, -1e30, TensorOptions(kBFloat16))));
  const Tensor x = rnd({3, 5, 7}, 4, -3, 3);
  const Tensor g = x.to(kGpu);
  EXPECT_EQ(bits_of(g), bits_of(x));
  // Strided copies of 2-byte elements.
  EXPECT_EQ(bits_of(g.permute({2, 0, 1}).contiguous()), bits_of(x.permute({2, 0, 1}).contiguous()));
  EXPECT_EQ(bits_of(g.slice(2, 1, 7, 3).contiguous()), bits_of(x.slice(2, 1, 7, 3).contiguous()));
  EXPECT_EQ(bits_of(g.transpose(0, 1).contiguous()), bits_of(x.transpose(0, 1).contiguous()));
  Tensor dst = zeros({4, 7}, o);
  dst.copy_(rnd({7}, 5));  // CPU -> GPU with broadcasting
  EXPECT_EQ(bits_of(dst.select(0, 2)), bits_of(rnd({7}, 5)));
  Tensor dst2 = zeros({7, 4}, o);
  dst2.t().copy_(dst);  // GPU -> GPU into a transposed view
  EXPECT_EQ(bits_of(dst2.t().contiguous()), bits_of(dst));
}

TEST(CudaBf16, RandomMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const TensorOptions oc = TensorOptions(kBFloat16), og = oc.device(kGpu);
  Generator gc(2024), gg(2024);
  EXPECT_EQ(bits_of(rand({1001}, og, &gg)), bits_of(rand({1001}, oc, &gc))) << "uniform";
  Tensor rc = empty({1001}, oc), rg = empty({1001}, og);
  uniform_(rc, -0.1, 0.3, &gc);
  uniform_(rg, -0.1, 0.3, &gg);
  EXPECT_EQ(bits_of(rg), bits_of(rc)) << "uniform on [-0.1, 0.3)";
  // Normal values are equal in float up to libm rounding: one bfloat16 ulp at most.
  EXPECT_TRUE(close(randn({1001}, og, &gg), randn({1001}, oc, &gc), 1e-2, 0.0)) << "normal";
  Tensor bc = empty({999}, oc), bg = empty({999}, og);
  bernoulli_(bc, 0.3, &gc);
  bernoulli_(bg, 0.3, &gg);
  EXPECT_EQ(bits_of(bg), bits_of(bc)) << "bernoulli";
}

TEST(CudaBf16, ElementwiseMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const double rt = 1e-2, at = 1e-3;
  const Tensor a = rnd({3, 1, 4}, 6, -2, 2), b = rnd({5, 1}, 7, -2, 2),
               bpos = rnd({5, 1}, 8, 0.5, 2);
  compare_devices([](auto& v) { return add(v[0], v[1]); }, {a, b}, rt, at, "add");
  compare_devices([](auto& v) { return sub(v[0], v[1]); }, {a, b}, rt, at, "sub");
  compare_devices([](auto& v) { return mul(v[0], v[1]); }, {a, b}, rt, at, "mul");
  compare_devices([](auto& v) { return div(v[0], v[1]); }, {a, bpos}, rt, at, "div");
  const Tensor x = rnd({1000}, 9, -5, 5), pos = rnd({1000}, 10, 0.1, 5);
  compare_devices([](auto& v) { return neg(v[0]); }, {x}, rt, at, "neg");
  compare_devices([](auto& v) { return exp(v[0]); }, {x}, rt, at, "exp");
  compare_devices([](auto& v) { return log(v[0]); }, {pos}, rt, at, "log");
  // sigmoid on [-3, 3]: in saturation y(1 - y) would turn a one-ulp difference of y (expf
  // differs by an ulp or two between the devices) into a large one of the gradient.
  compare_devices([](auto& v) { return sigmoid(v[0]); }, {rnd({1000}, 11, -3, 3)}, rt, at,
                  "sigmoid");
  compare_devices([](auto& v) { return relu(v[0]); }, {x}, rt, at, "relu");
  compare_devices([](auto& v) { return pow(v[0], 3.0); }, {x}, rt, at, "pow 3");
  compare_devices([](auto& v) { return pow(v[0], 0.5); }, {pos}, rt, at, "pow 0.5");
  compare_devices([](auto& v) { return sqrt(v[0]); }, {pos}, rt, at, "sqrt");
  compare_devices([](auto& v) { return abs(v[0]); }, {x}, rt, at, "abs");
  compare_devices([](auto& v) { return 3.0 - v[0] * 2.0 + 1.0; }, {x}, rt, at, "scalars");
  compare_devices([](auto& v) { return 2.0 / v[0]; }, {pos}, rt, at, "rdiv");
  EXPECT_EQ(bits_of(maximum(a.to(kGpu), b.to(kGpu))), bits_of(maximum(a, b))) << "maximum";
  // Strided (non-contiguous) inputs take the indexed kernels.
  const Tensor m = rnd({6, 7}, 11, -2, 2);
  compare_devices([](auto& v) { return exp(v[0].t()); }, {m}, rt, at, "strided unary");
  compare_devices([](auto& v) { return v[0].t() * v[0].t(); }, {m}, rt, at, "strided binary");
  // Every op stores bfloat16: 1 + 2^-9 rounds to 1 (an ulp at 1 is 2^-7), so (1 + d) - 1 with
  // d = 2^-9 (both exact) is 0 on both devices, not 2^-9 as a fused float computation would give.
  const TensorOptions ob(kBFloat16);
  const Tensor one = full({4}, 1.0, ob), d = full({4}, 1.0 / 512, ob);
  const Tensor r = sub(add(one.to(kGpu), d.to(kGpu)), one.to(kGpu));
  EXPECT_EQ(bits_of(r), bits_of(sub(add(one, d), one)));
  EXPECT_EQ(r.to(Device::cpu()).to(kFloat32).to_vector<float>(), std::vector<float>(4, 0.0f));
}

TEST(CudaBf16, ReductionsMatchCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const double rt = 1e-2, at = 1e-3;
  const Tensor x = rnd({7, 33, 65}, 12, -2, 2);
  compare_devices([](auto& v) { return sum(v[0]); }, {x}, rt, at, "sum all");
  compare_devices([](auto& v) { return sum(v[0], {1}); }, {x}, rt, at, "sum middle (columns)");
  compare_devices([](auto& v) { return sum(v[0], {2}); }, {x}, rt, at, "sum last (rows)");
  compare_devices([](auto& v) { return sum(v[0], {0, 2}, true); }, {x}, rt, at, "sum 0, 2");
  compare_devices([](auto& v) { return mean(v[0], {2}); }, {x}, rt, at, "mean");
  // Maxima are exact; their gradients go through the op layer's tie split (bfloat16 ops).
  const Tensor xg = x.to(kGpu);
  EXPECT_EQ(bits_of(max(xg)), bits_of(max(x))) << "max all";
  EXPECT_EQ(bits_of(max(xg, {0})), bits_of(max(x, {0}))) << "max 0";
  EXPECT_EQ(bits_of(max(xg, {2})), bits_of(max(x, {2}))) << "max 2 (rows)";
  compare_devices([](auto& v) { return max(v[0]); }, {x}, rt, 0.0, "max all");
  compare_devices([](auto& v) { return max(v[0], {0}); }, {x}, rt, 0.0, "max 0");
  compare_devices([](auto& v) { return max(v[0], {1, 2}, true); }, {x}, rt, 0.0, "max 1, 2");
  // A long row: double accumulation on both devices, in different orders, one rounding.
  compare_devices([](auto& v) { return sum(v[0]); }, {rnd({1 << 20}, 13, -1, 1)}, rt, at,
                  "long sum");
  compare_devices([](auto& v) { return sum(v[0]); }, {rnd({1 << 16}, 14, 0, 1)}, rt, 0.0,
                  "long positive sum");
  // Sums of bfloat16 values that are not bfloat16 themselves round once: 256 + 1 + 1 in float is
  // 258 (exact in bfloat16); adding in bfloat16 would round 257 to 256 twice.
  const Tensor v = from_vector(std::vector<float>{256, 1, 1}, {3}).to(kBFloat16);
  EXPECT_EQ(sum(v.to(kGpu)).item(), 258.0);
  // Max propagates NaN.
  const Tensor withnan = from_vector(std::vector<float>{1, NAN, 3, 2}, {2, 2}).to(kBFloat16);
  EXPECT_TRUE(std::isnan(max(withnan.to(kGpu)).item()));
}

TEST(CudaBf16, MaxPoolMatchesCpuExactly) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  compare_devices([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, {rnd({2, 16, 33, 33}, 15)},
                  0.0, 0.0, "max_pool2d 3x3 s2 p1");
  // Ties at zero in most windows; bfloat16's coarse values tie often anyway.
  compare_devices([](auto& v) { return max_pool2d(relu(v[0]), 3, 2, 1); },
                  {rnd({2, 8, 19, 19}, 16)}, 0.0, 0.0, "ties");
  compare_devices(
      [](auto& v) {
        return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1});
      },
      {rnd({2, 3, 9, 10}, 17)}, 0.0, 0.0, "dilated, non-square");
  compare_devices([](auto& v) { return global_max_pool2d(v[0]); }, {rnd({2, 64, 10, 10}, 18)}, 0.0,
                  0.0, "global max");
}

TEST(CudaBf16, BatchNormMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // x in bfloat16; weight, bias and the running statistics in float32 (compute_dtype).
  for (const Shape& shape : {Shape{4, 6, 9, 11}, Shape{16, 5}, Shape{3, 4, 7}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t c = shape[1];
    const Tensor rm = rnd({c}, 20, -1, 1, kFloat32), rv = rnd({c}, 21, 0.5, 2.0, kFloat32);
    Tensor rm_c = rm.clone(), rv_c = rv.clone(), rm_g = rm.to(kGpu), rv_g = rv.to(kGpu);
    // A mean far from zero (7..9, where bfloat16's spacing is 1/16) tests the shifted sums.
    const Tensor x = rnd(shape, 22, 7, 9);
    const Tensor w = rnd({c}, 23, 0.5, 1.5, kFloat32), b = rnd({c}, 24, -1, 1, kFloat32);
    for (const bool training : {true, false}) {
      SCOPED_TRACE(training ? "train" : "eval");
      Tensor xc = x.clone().set_requires_grad(), xg = x.to(kGpu).set_requires_grad();
      Tensor wc = w.clone().set_requires_grad(), wg = w.to(kGpu).set_requires_grad();
      Tensor bc = b.clone().set_requires_grad(), bg = b.to(kGpu).set_requires_grad();
      Tensor yc = batch_norm(xc, wc, bc, rm_c, rv_c, training);
      Tensor yg = batch_norm(xg, wg, bg, rm_g, rv_g, training);
      ASSERT_EQ(yc.dtype(), kBFloat16);
      EXPECT_TRUE(close(yg, yc, 1e-2, 1e-2)) << "y";
      EXPECT_TRUE(close(rm_g, rm_c, 1e-4, 1e-4)) << "running_mean";
      EXPECT_TRUE(close(rv_g, rv_c, 1e-4, 1e-4)) << "running_var";
      const Tensor g = rnd(shape, 25, -1, 1);
      yc.backward(g);
      yg.backward(g.to(kGpu));
      EXPECT_TRUE(close(xg.grad(), xc.grad(), 1e-2, 1e-2)) << "dx";
      EXPECT_TRUE(close(wg.grad(), wc.grad(), 1e-4, 1e-4)) << "dweight";
      EXPECT_TRUE(close(bg.grad(), bc.grad(), 1e-4, 1e-4)) << "dbias";
    }
  }
  // Without running statistics and without affine parameters.
  const Tensor x = rnd({8, 3, 5, 5}, 26, -2, 2);
  compare_devices(
      [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, {x},
      1e-2, 1e-2, "no running statistics, no affine");
}

TEST(CudaBf16, Conv2dMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto conv = [](Size2 s, Size2 p, Size2 d = 1, int64_t groups = 1) {
    return [=](const std::vector<Tensor>& v) {
      return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), s, p, d, groups);
    };
  };
  const double rt = 1e-2, at = 1e-2;
  compare_devices(conv(2, 3), {rnd({2, 3, 40, 40}, 30), rnd({16, 3, 7, 7}, 31)}, rt, at,
                  "7x7 s2 p3");
  compare_devices(conv(1, 1), {rnd({2, 32, 12, 12}, 32), rnd({32, 32, 3, 3}, 33)}, rt, at,
                  "3x3 s1");
  compare_devices(conv(2, 0), {rnd({2, 32, 12, 12}, 34), rnd({64, 32, 1, 1}, 35)}, rt, at,
                  "1x1 s2");
  compare_devices(conv(1, 1), {rnd({2, 8, 10, 10}, 36), rnd({12, 8, 3, 3}, 37), rnd({12}, 38)}, rt,
                  at, "bias");
  compare_devices(conv({2, 1}, {1, 2}, {2, 1}, 2),
                  {rnd({3, 4, 11, 9}, 39), rnd({6, 2, 2, 3}, 40), rnd({6}, 41)}, rt, at,
                  "groups, dilation, bias");
  // Benchmarked algorithms (cudnnFind*Ex) compute the same convolution; the bias is added after
  // the benchmark wrote y.
  {
    struct BenchmarkOn {  // off again even when the comparison throws
      BenchmarkOn() { set_conv_benchmark(true); }
      ~BenchmarkOn() { set_conv_benchmark(false); }
    } on;
    compare_devices(conv(1, 1), {rnd({4, 16, 16, 16}, 42), rnd({16, 16, 3, 3}, 43), rnd({16}, 44)},
                    rt, at, "benchmark mode");
  }
  // The same shape in float32 after bfloat16: its own cached plan, full fp32 precision.
  const Tensor x = rnd({2, 32, 12, 12}, 32, -1, 1, kFloat32),
               w = rnd({32, 32, 3, 3}, 33, -1, 1, kFloat32);
  const Tensor yc = conv2d(x, w, Tensor(), 1, 1),
               yg = conv2d(x.to(kGpu), w.to(kGpu), Tensor(), 1, 1);
  EXPECT_TRUE(close(yg, yc, 1e-4, 1e-4)) << "float32 after bfloat16";
}

TEST(CudaBf16, MatmulMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const double rt = 1e-2, at = 1e-2;
  compare_devices([](auto& v) { return matmul(v[0], v[1]); },
                  {rnd({17, 300}, 50), rnd({300, 9}, 51)}, rt, at, "2-D, k = 300");
  compare_devices([](auto& v) { return matmul(v[0], v[1]); },
                  {rnd({3, 8, 16}, 52), rnd({3, 16, 5}, 53)}, rt, at, "batched");
  compare_devices([](auto& v) { return matmul(v[0], v[1]); },
                  {rnd({3, 8, 16}, 54), rnd({16, 5}, 55)}, rt, at, "batched, shared b");
  compare_devices([](auto& v) { return matmul(v[0].t(), v[1].t()); },
                  {rnd({16, 8}, 56), rnd({5, 16}, 57)}, rt, at, "transposed views");
  // A long, skinny dot product (a split-K candidate): 4096 * (1 + 2^-7) = 4128 is exact in
  // float and in bfloat16, but partial sums such as 1365 * (1 + 2^-7) are not bfloat16 values:
  // split-K slices must be added in float (no reduced-precision reduction), then rounded once.
  const TensorOptions ob(kBFloat16);
  const Tensor a = full({1, 4096}, 1.0, ob), b = full({4096, 1}, 1.0 + 1.0 / 128, ob);
  const Tensor ab = matmul(a.to(kGpu), b.to(kGpu));
  EXPECT_EQ(ab.item(), 4128.0);
  EXPECT_EQ(bits_of(ab), bits_of(matmul(a, b)));
}

}  // namespace
}  // namespace cudl
