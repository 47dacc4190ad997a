// Level 2 of DESIGN.md: every CUDA op against its CPU twin on the same inputs, plus the CUDA
// memory system. Each test skips with the reason when no GPU is present.
//
// Tolerances: elementwise ops use the same formulas on both sides; exp/log/pow may differ by a
// few ulp between CUDA's libm and glibc (atol 1e-6, rtol 1e-5 in float32). Sums accumulate in
// double on both devices, in different orders, and round once: rtol 1e-5 relative to the
// magnitude. Matmul in
// float32 with k <= 300 (no TF32: cudl keeps full fp32 by default): atol 1e-4, rtol 1e-4.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }

Tensor rnd(const Shape& s, uint64_t seed, double lo = -2, double hi = 2, DType dt = kFloat32) {
  Generator g(seed);
  Tensor t = empty(s, dt);
  return uniform_(t, lo, hi, &g);
}

// Runs f on CPU copies and GPU copies of the inputs (with requires_grad), compares outputs and
// every input gradient.
void compare_devices(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                     const std::vector<Tensor>& inputs, double atol = 1e-6, double rtol = 1e-5) {
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& t : inputs) {
    cpu_in.push_back(t.clone().set_requires_grad());
    gpu_in.push_back(on_gpu(t).set_requires_grad());
  }
  Tensor yc = f(cpu_in), yg = f(gpu_in);
  ASSERT_TRUE(yg.device().is_cuda());
  EXPECT_TRUE(all_close(yg, yc, atol, rtol)) << "forward";
  Tensor w = rnd(yc.shape(), 99, 0.5, 1.5, yc.dtype());
  sum(yc * w).backward();
  sum(yg * on_gpu(w)).backward();
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_TRUE(all_close(gpu_in[i].grad(), cpu_in[i].grad(), atol, rtol)) << "gradient of input " << i;
}

TEST(Cuda, TransfersRoundTrip) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor x = rnd({3, 5}, 1);
  Tensor g = on_gpu(x);
  EXPECT_EQ(g.device(), Device::cuda(0));
  EXPECT_TRUE(all_close(g.to(Device::cpu()), x, 0, 0));
  EXPECT_TRUE(all_close(on_gpu(x.t()).to(Device::cpu()), x.t().contiguous(), 0, 0));
  EXPECT_FLOAT_EQ(g.select(0, 1).select(0, 2).item<float>(), x.select(0, 1).select(0, 2).item<float>());
  Tensor pinned = empty({4}, TensorOptions().pinned());
  pinned.fill_(3);
  EXPECT_EQ(on_gpu(pinned).to_vector<float>(), (std::vector<float>{3, 3, 3, 3}));
}

TEST(Cuda, FillCastCopyAndViews) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  TensorOptions o = TensorOptions().device(Device::cuda(0));
  EXPECT_EQ(full({3}, 1.5, o).to_vector<float>(), (std::vector<float>{1.5f, 1.5f, 1.5f}));
  EXPECT_EQ(arange(4, o.dtype(kInt64)).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  Tensor x = rnd({2, 3, 4}, 2);
  Tensor g = on_gpu(x);
  EXPECT_TRUE(all_close(g.to(kFloat64), x.to(kFloat64), 0, 0));
  EXPECT_TRUE(all_close(g.permute({2, 0, 1}).contiguous(), x.permute({2, 0, 1}).contiguous(), 0, 0));
  EXPECT_TRUE(all_close(g.slice(2, 1, 4, 2).contiguous(), x.slice(2, 1, 4, 2).contiguous(), 0, 0));
  Tensor dst = zeros({2, 3}, o);
  dst.copy_(rnd({3}, 3));  // CPU -> GPU with broadcasting
  EXPECT_TRUE(all_close(dst.to(Device::cpu()).select(0, 1), rnd({3}, 3), 0, 0));
}

TEST(Cuda, RandomMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  for (DType dt : {kFloat32, kFloat64}) {
    Generator gc(2024), gg(2024);
    Tensor uc = rand({1001}, dt, &gc);
    Tensor ug = rand({1001}, TensorOptions(dt).device(Device::cuda(0)), &gg);
    EXPECT_TRUE(all_close(ug, uc, 0, 0)) << "uniform must be bit-identical";
    // A range where (b - a) * u is inexact: both backends must round a + (b - a) * u once.
    Tensor rc = empty({1001}, dt), rg = empty({1001}, TensorOptions(dt).device(Device::cuda(0)));
    uniform_(rc, -0.1, 0.3, &gc);
    uniform_(rg, -0.1, 0.3, &gg);
    EXPECT_TRUE(all_close(rg, rc, 0, 0)) << "uniform on [-0.1, 0.3) must be bit-identical";
    Tensor nc = randn({1001}, dt, &gc);
    Tensor ng = randn({1001}, TensorOptions(dt).device(Device::cuda(0)), &gg);
    EXPECT_TRUE(all_close(ng, nc, 1e-6, 1e-6)) << "normal within libm rounding";
    Tensor bc = empty({999}, dt), bg = empty({999}, TensorOptions(dt).device(Device::cuda(0)));
    bernoulli_(bc, 0.3, &gc);
    bernoulli_(bg, 0.3, &gg);
    EXPECT_TRUE(all_close(bg, bc, 0, 0));
  }
}

TEST(Cuda, ElementwiseMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto a = rnd({3, 1, 4}, 4), b = rnd({5, 1}, 5), bpos = rnd({5, 1}, 6, 0.5, 2);
  compare_devices([](auto& v) { return add(v[0], v[1]); }, {a, b});
  compare_devices([](auto& v) { return sub(v[0], v[1]); }, {a, b});
  compare_devices([](auto& v) { return mul(v[0], v[1]); }, {a, b});
  compare_devices([](auto& v) { return div(v[0], v[1]); }, {a, bpos});
  auto x = rnd({1000}, 7, -5, 5), pos = rnd({1000}, 8, 0.1, 5);
  compare_devices([](auto& v) { return neg(v[0]); }, {x});
  compare_devices([](auto& v) { return exp(v[0]); }, {x});
  compare_devices([](auto& v) { return log(v[0]); }, {pos});
  compare_devices([](auto& v) { return sigmoid(v[0]); }, {x});
  compare_devices([](auto& v) { return relu(v[0]); }, {x});
  compare_devices([](auto& v) { return pow(v[0], 3.0); }, {x});
  compare_devices([](auto& v) { return pow(v[0], 0.5); }, {pos});
  compare_devices([](auto& v) { return sqrt(v[0]); }, {pos});
  compare_devices([](auto& v) { return abs(v[0]); }, {x});
  compare_devices([](auto& v) { return 3.0 - v[0] * 2.0 + 1.0; }, {x});
  compare_devices([](auto& v) { return 2.0 / v[0]; }, {pos});
  // Strided (non-contiguous) inputs take the indexed kernels.
  auto m = rnd({6, 7}, 9);
  compare_devices([](auto& v) { return exp(v[0].t()); }, {m});
  compare_devices([](auto& v) { return v[0].t() * v[0].t(); }, {m});
  // float64 too
  compare_devices([](auto& v) { return sigmoid(v[0]) * v[1]; },
                  {rnd({4, 4}, 10, -3, 3, kFloat64), rnd({4}, 11, -3, 3, kFloat64)}, 1e-12, 1e-12);
}

TEST(Cuda, ReductionsMatchCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto x = rnd({7, 33, 65}, 12);
  compare_devices([](auto& v) { return sum(v[0]); }, {x}, 1e-4, 1e-5);
  compare_devices([](auto& v) { return sum(v[0], {1}); }, {x}, 1e-5, 1e-5);
  compare_devices([](auto& v) { return sum(v[0], {0, 2}, true); }, {x}, 1e-4, 1e-5);
  compare_devices([](auto& v) { return mean(v[0], {2}); }, {x}, 1e-6, 1e-5);
  compare_devices([](auto& v) { return mean(v[0]); }, {x}, 1e-6, 1e-5);
  compare_devices([](auto& v) { return max(v[0]); }, {x});
  compare_devices([](auto& v) { return max(v[0], {0}); }, {x});
  compare_devices([](auto& v) { return max(v[0], {1, 2}, true); }, {x});
  auto big = rnd({1 << 20}, 13);
  compare_devices([](auto& v) { return sum(v[0]); }, {big}, 1e-2, 1e-5);
  // More rows than a grid dimension holds (65535): the global average pool of a large batch.
  auto planes = rnd({300, 256, 2, 2}, 14);
  compare_devices([](auto& v) { return mean(v[0], {2, 3}); }, {planes}, 1e-6, 1e-5);
}

// Few outputs over long reductions are split into segments across blocks, and the partials
// reduced again (the column sums below take four passes). Sums accumulate in double as the
// CPU's do, so both round the same total: the bounds are a float's or a bfloat16's last bit.
TEST(Cuda, LongReductionsSplitAcrossBlocks) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto rows = rnd({3, 200003}, 21);  // whole rows split into segments of blocks
  compare_devices([](auto& v) { return sum(v[0], {1}); }, {rows}, 1e-4, 1e-6);
  compare_devices([](auto& v) { return sum(v[0]); }, {rows}, 1e-4, 1e-6);
  compare_devices([](auto& v) { return mean(v[0], {1}); }, {rows}, 1e-9, 1e-6);
  compare_devices([](auto& v) { return max(v[0], {1}); }, {rows}, 0, 0);
  auto cols = rnd({65537, 3}, 22);  // columns split into segments of threads
  compare_devices([](auto& v) { return sum(v[0], {0}); }, {cols}, 1e-4, 1e-6);
  compare_devices([](auto& v) { return max(v[0], {0}); }, {cols}, 0, 0);
  auto middle = rnd({2, 40000, 5}, 23);  // outer > 1 and inner > 1
  compare_devices([](auto& v) { return sum(v[0], {1}); }, {middle}, 1e-4, 1e-6);
  compare_devices([](auto& v) { return sum(v[0], {1}); }, {middle.to(kFloat64)}, 1e-12, 1e-12);
  compare_devices([](auto& v) { return max(v[0], {1}); }, {middle.to(kFloat64)}, 0, 0);
  Tensor half = rnd({70001, 2}, 24, -1, 1, kBFloat16);
  Tensor hc = sum(half, {0}), hg = sum(on_gpu(half), {0});
  EXPECT_TRUE(all_close(hg, hc, 1e-3, 8e-3)) << "bfloat16 column sums";
  EXPECT_TRUE(all_close(max(on_gpu(half)), max(half), 0, 0)) << "bfloat16 max";
  // A NaN in one segment reaches the result through both passes.
  Tensor with_nan = rnd({1, 300000}, 25);
  with_nan.data<float>()[123457] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(max(on_gpu(with_nan)).item()));
  EXPECT_TRUE(std::isnan(sum(on_gpu(with_nan)).item()));
  Tensor cols_nan = rnd({300000, 2}, 26);  // the column path: split, then the partials' pass
  cols_nan.data<float>()[2 * 123457 + 1] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> col_max = max(on_gpu(cols_nan), {0}).to(Device::cpu()).to_vector<float>();
  const std::vector<float> col_sum = sum(on_gpu(cols_nan), {0}).to(Device::cpu()).to_vector<float>();
  EXPECT_FALSE(std::isnan(col_max[0]));
  EXPECT_TRUE(std::isnan(col_max[1]));
  EXPECT_FALSE(std::isnan(col_sum[0]));
  EXPECT_TRUE(std::isnan(col_sum[1]));
  // A long sum that float accumulation in one serial walk gets wrong: 2^24 + 1 ones then
  // -2^24 is 1 exactly in double.
  Tensor ones_then = ones({(int64_t(1) << 24) + 2});
  ones_then.data<float>()[(int64_t(1) << 24) + 1] = -16777216.0f;
  EXPECT_EQ(sum(on_gpu(ones_then)).item(), 1.0);
  EXPECT_EQ(sum(ones_then).item(), 1.0);
}

TEST(Cuda, MatmulMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  compare_devices([](auto& v) { return matmul(v[0], v[1]); }, {rnd({17, 300}, 14), rnd({300, 9}, 15)},
                  1e-4, 1e-4);
  compare_devices([](auto& v) { return matmul(v[0], v[1]); },
                  {rnd({3, 8, 16}, 16), rnd({3, 16, 5}, 17)}, 1e-4, 1e-4);
  compare_devices([](auto& v) { return matmul(v[0], v[1]); }, {rnd({3, 8, 16}, 18), rnd({16, 5}, 19)},
                  1e-4, 1e-4);
  compare_devices([](auto& v) { return matmul(v[0].t(), v[1].t()); }, {rnd({16, 8}, 20), rnd({5, 16}, 21)},
                  1e-4, 1e-4);
}

TEST(Cuda, ConcatMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  compare_devices([](auto& v) { return cat({v[0], v[1]}, 1); }, {rnd({2, 3, 4}, 22), rnd({2, 5, 4}, 23)});
  compare_devices([](auto& v) { return stack({v[0], v[1]}, 0); }, {rnd({3, 4}, 24), rnd({3, 4}, 25)});
}

TEST(Cuda, CachingAllocatorReusesBlocks) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Device d = Device::cuda(0);
  auto step = [&] {
    Tensor a = rand({256, 256}, d), b = rand({256, 256}, d);
    Tensor c = matmul(a, b) + a;
    return sum(c).item();
  };
  step();  // warm-up
  int64_t before = memory_stats(d).num_device_allocs;
  for (int i = 0; i < 10; ++i) step();
  EXPECT_EQ(memory_stats(d).num_device_allocs, before) << "cudaMalloc after warm-up";
  MemoryStats s = memory_stats(d);
  EXPECT_GE(s.peak_allocated_bytes, 3 * 256 * 256 * 4);
  EXPECT_GT(s.reserved_bytes, 0);
  empty_cache(d);
  EXPECT_EQ(memory_stats(d).reserved_bytes, memory_stats(d).allocated_bytes);
}

TEST(Cuda, OutOfMemoryIsOneClearError) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  try {
    Tensor huge = empty({int64_t(1) << 45}, TensorOptions().device(Device::cuda(0)));  // 128 TiB
    FAIL() << "allocation of 128 TiB succeeded?";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("CUDA out of memory"), std::string::npos) << m;
    EXPECT_NE(m.find("tried to allocate"), std::string::npos) << m;
    EXPECT_NE(m.find("cudl holds"), std::string::npos) << m;
  }
  // The device is still usable afterwards.
  EXPECT_EQ(sum(ones({10}, TensorOptions().device(Device::cuda(0)))).item(), 10.0);
}

}  // namespace
}  // namespace cudl
