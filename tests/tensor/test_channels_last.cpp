// Channels-last memory format on the CPU: the layout queries and conversions, elementwise ops
// that keep a dense layout, and every op of the ResNet path (conv2d, batch norm with its
// epilogue, max pooling, the global pools) giving the values and gradients of the row-major
// input, with the output in the input's layout.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/ops/batch_norm.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/pool.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

const MemoryFormat kCL = MemoryFormat::kChannelsLast;

Tensor rnd(const Shape& s, uint64_t seed, DType dt = kFloat32, double lo = -1, double hi = 1) {
  return testing::rand64(s, seed, lo, hi).to(dt);
}

// Element-for-element equality in row-major order (the memory layouts may differ).
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  const std::vector<double> va = a.detach().to(kFloat64).to_vector<double>();
  const std::vector<double> vb = b.detach().to(kFloat64).to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i)
    if (!(va[i] == vb[i]) && !(va[i] != va[i] && vb[i] != vb[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << va[i] << " vs " << vb[i];
  return ::testing::AssertionSuccess();
}

TEST(ChannelsLast, StridesAndQueries) {
  const Shape s{2, 3, 4, 5};
  EXPECT_EQ(memory_format_strides(s, kCL), (Shape{60, 1, 15, 3}));
  EXPECT_EQ(memory_format_strides(s, MemoryFormat::kContiguous), (Shape{60, 20, 5, 1}));
  const Tensor x = rnd(s, 1);
  EXPECT_TRUE(x.is_contiguous(MemoryFormat::kContiguous));
  EXPECT_FALSE(x.is_contiguous(kCL));
  EXPECT_EQ(suggest_memory_format(x), MemoryFormat::kContiguous);
  const Tensor y = x.contiguous(kCL);
  EXPECT_EQ(y.strides(), (Shape{60, 1, 15, 3}));
  EXPECT_TRUE(y.is_contiguous(kCL));
  EXPECT_FALSE(y.is_contiguous());
  EXPECT_TRUE(y.is_dense());
  EXPECT_EQ(suggest_memory_format(y), kCL);
  EXPECT_TRUE(same_values(y, x));
  EXPECT_TRUE(y.contiguous(kCL).is_same(y)) << "already channels-last: no copy";
  const Tensor back = y.contiguous();
  EXPECT_TRUE(back.is_contiguous());
  EXPECT_TRUE(same_values(back, x));
  // The memory itself is (N, H, W, C): element (n, c, h, w) at n*60 + h*15 + w*3 + c.
  const std::vector<float> mem(y.data<float>(), y.data<float>() + y.numel());
  const std::vector<float> v = x.to_vector<float>();
  EXPECT_EQ(mem[1 * 60 + 2 * 15 + 3 * 3 + 1], v[((1 * 3 + 1) * 4 + 2) * 5 + 3]);

  // C == 1 or H == W == 1: both layouts at once, and row-major is what is suggested.
  for (const Shape& amb : {Shape{2, 1, 4, 5}, Shape{2, 3, 1, 1}}) {
    const Tensor t = rnd(amb, 2);
    EXPECT_TRUE(t.is_contiguous(kCL)) << shape_str(amb);
    EXPECT_EQ(suggest_memory_format(t), MemoryFormat::kContiguous) << shape_str(amb);
  }
  // Not 4-D: never channels-last.
  EXPECT_FALSE(rnd({3, 4}, 3).is_contiguous(kCL));
  EXPECT_ERROR_HAS(rnd({3, 4}, 3).contiguous(kCL), "4-D");

  // Dense: any permutation of a row-major layout; not a slice with gaps or a broadcast.
  const Tensor m = rnd({4, 6}, 4);
  EXPECT_TRUE(m.t().is_dense());
  EXPECT_FALSE(m.slice(1, 0, 3).is_dense());
  EXPECT_FALSE(m.slice(0, 0, 4, 2).is_dense());
  EXPECT_FALSE(rnd({1, 6}, 5).expand({4, 6}).is_dense());
  EXPECT_TRUE(empty({0, 3}).is_dense());
  EXPECT_ERROR_HAS(empty_strided({4, 6}, {12, 1}), "not a dense layout");
  EXPECT_ERROR_HAS(empty_strided({4, 6}, {6}), "strides");
  EXPECT_EQ(empty_like(y, MemoryFormat::kPreserve).strides(), y.strides());
  EXPECT_TRUE(empty_like(m.slice(1, 0, 3), MemoryFormat::kPreserve).is_contiguous());
}

TEST(ChannelsLast, ConversionIsDifferentiable) {
  Tensor x = rnd({2, 3, 4, 5}, 6).set_requires_grad();
  const Tensor r = rnd({2, 3, 4, 5}, 7);
  sum(x.contiguous(kCL) * r).backward();
  EXPECT_TRUE(same_values(x.grad(), r));
  // And back from channels-last.
  Tensor z = rnd({2, 3, 4, 5}, 8).contiguous(kCL).set_requires_grad();
  sum(z.contiguous() * r).backward();
  EXPECT_TRUE(same_values(z.grad(), r));
}

TEST(ChannelsLast, ElementwiseKeepsADenseLayout) {
  const Tensor a = rnd({2, 3, 4, 5}, 9), b = rnd({2, 3, 4, 5}, 10);
  const Tensor ac = a.contiguous(kCL), bc = b.contiguous(kCL);
  // Unary, binary of one layout, scalar ops: the result is channels-last with the same values.
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&, const Tensor&)>>>
      ops = {{"relu", [](const Tensor& p, const Tensor&) { return relu(p); }},
             {"exp", [](const Tensor& p, const Tensor&) { return exp(p); }},
             {"add", [](const Tensor& p, const Tensor& q) { return p + q; }},
             {"mul", [](const Tensor& p, const Tensor& q) { return p * q; }},
             {"sub scalar", [](const Tensor& p, const Tensor&) { return p - 0.25; }}};
  for (const auto& [name, f] : ops) {
    SCOPED_TRACE(name);
    const Tensor y = f(ac, bc);
    EXPECT_TRUE(y.is_contiguous(kCL));
    EXPECT_TRUE(same_values(y, f(a, b)));
  }
  // Mixed layouts and broadcasting: correct values, row-major result.
  const Tensor mixed = ac + b;
  EXPECT_TRUE(mixed.is_contiguous());
  EXPECT_TRUE(same_values(mixed, a + b));
  const Tensor bias = rnd({1, 3, 1, 1}, 11);
  EXPECT_TRUE(same_values(ac + bias, a + bias));
  // In place on a channels-last tensor.
  Tensor t = ac.clone().contiguous(kCL);
  mul_(t, 2.0);
  add_(t, bc);
  EXPECT_TRUE(t.is_contiguous(kCL));
  EXPECT_TRUE(same_values(t, a * 2.0 + b));
  // Casts keep the layout (autocast's cast of a channels-last activation) and round the same.
  const Tensor h = ac.to(kBFloat16);
  EXPECT_TRUE(h.is_contiguous(kCL));
  EXPECT_TRUE(same_values(h, a.to(kBFloat16)));
  Tensor dst = empty_like(ac, MemoryFormat::kPreserve).to(kFloat64);
  dst.copy_(ac);
  EXPECT_TRUE(dst.is_contiguous(kCL));
  EXPECT_TRUE(same_values(dst, a.to(kFloat64)));
  // The gradient of an elementwise op reaches a channels-last leaf with the right values.
  Tensor l = ac.clone().contiguous(kCL).set_requires_grad();
  sum(relu(l) * b).backward();
  EXPECT_TRUE(same_values(l.grad(), b * gt(a, zeros_like(a))));
}

// Runs f on row-major and channels-last copies of x (and the same other inputs, all leaves
// requiring grad), checks the output's layout, and compares outputs and every gradient:
// exactly (tol 0) or within `tol` of the scale.
void compare_layouts(const std::function<Tensor(const std::vector<Tensor>&)>& f, const Tensor& x,
                     const std::vector<Tensor>& others, bool expect_cl_output, double tol,
                     const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(suggest_memory_format(x), MemoryFormat::kContiguous);
  std::vector<Tensor> rm{x.clone().set_requires_grad()}, cl{x.contiguous(kCL)};  // a copy
  ASSERT_EQ(suggest_memory_format(cl[0]), kCL);
  cl[0].set_requires_grad();
  for (const Tensor& o : others) {
    rm.push_back(o.clone().set_requires_grad());
    cl.push_back(o.clone().set_requires_grad());
  }
  const Tensor y_rm = f(rm), y_cl = f(cl);
  if (expect_cl_output) {
    EXPECT_TRUE(y_cl.is_contiguous(kCL)) << "strides " << shape_str(y_cl.strides());
  }
  auto check = [&](const Tensor& got, const Tensor& want, const std::string& name) {
    if (tol == 0) {
      EXPECT_TRUE(same_values(got, want)) << name;
    } else {
      const double scale = max(abs(want.detach().to(kFloat64))).item();
      EXPECT_TRUE(all_close(got.detach().to(kFloat64), want.detach().to(kFloat64), tol * scale,
                            tol))
          << name;
    }
  };
  check(y_cl, y_rm, "output");
  const Tensor g = rnd(y_rm.shape(), 77, y_rm.dtype());
  y_rm.backward(g);
  y_cl.backward(g);
  ASSERT_TRUE(cl[0].grad().defined());
  check(cl[0].grad(), rm[0].grad(), "input gradient");
  for (size_t i = 1; i < rm.size(); ++i) check(cl[i].grad(), rm[i].grad(), "gradient " + std::to_string(i));
}

TEST(ChannelsLast, Conv2dMatchesRowMajor) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    const Tensor x = rnd({2, 4, 9, 7}, 12, dt);
    const Tensor w = rnd({6, 4, 3, 3}, 13, dt), b = rnd({6}, 14, dt);
    const Tensor wg = rnd({6, 2, 3, 3}, 15, dt);
    compare_layouts([](auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); }, x, {w, b}, true, 0,
                    "3x3 stride 1 pad 1 bias");
    compare_layouts([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2, 1); }, x, {w}, true, 0,
                    "3x3 stride 2 pad 1");
    compare_layouts([](auto& v) { return conv2d(v[0], v[1], Tensor(), 1, 0, 1, 2); }, x, {wg},
                    true, 0, "groups 2");
    compare_layouts([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2); }, x,
                    {rnd({6, 4, 1, 1}, 16, dt)}, true, 0, "1x1 stride 2 (downsample)");
  }
}

TEST(ChannelsLast, BatchNormMatchesRowMajor) {
  // The channels-last kernels sum the same elements in another grouping (double sums), so the
  // float statistics may differ in their last bit: a tolerance of float rounding (bfloat16:
  // one bfloat16 rounding) instead of bit equality.
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    const DType pt = compute_dtype(dt);
    const double tol = dt == kBFloat16 ? 8e-3 : dt == kFloat32 ? 2e-6 : 1e-12;
    const Shape s{3, 5, 6, 4};
    const Tensor x = rnd(s, 17, dt, 3, 5);  // a mean far from 0 tests the shifted sums
    const Tensor w = rnd({5}, 18, pt, 0.5, 1.5), b = rnd({5}, 19, pt);
    const Tensor res = rnd(s, 20, dt);
    for (const bool training : {true, false}) {
      SCOPED_TRACE(training ? "train" : "eval");
      Tensor rm_a = rnd({5}, 21, pt), rv_a = rnd({5}, 22, pt, 0.5, 2);
      Tensor rm_b = rm_a.clone(), rv_b = rv_a.clone();
      int call = 0;
      // Each layout gets its own running statistics (updated in place), compared afterwards.
      auto bn = [&](const std::vector<Tensor>& v) {
        const bool first = call++ == 0;
        return batch_norm(v[0], v[1], v[2], first ? rm_a : rm_b, first ? rv_a : rv_b, training);
      };
      compare_layouts(bn, x, {w, b}, true, tol, "batch_norm");
      EXPECT_TRUE(all_close(rm_b, rm_a, 1e-6, 1e-6)) << "running_mean";
      EXPECT_TRUE(all_close(rv_b, rv_a, 1e-6, 1e-6)) << "running_var";
      Tensor rm2 = rnd({5}, 21, pt), rv2 = rnd({5}, 22, pt, 0.5, 2);
      compare_layouts(
          [&](auto& v) {
            return batch_norm_act(v[0], v[1], v[2], rm2, rv2, training, 0.0, 1e-5, v[3], true);
          },
          x, {w, b, res}, true, tol, "batch_norm + residual + relu");
    }
  }
}

TEST(ChannelsLast, PoolsMatchRowMajor) {
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    const Tensor x = rnd({2, 5, 11, 9}, 23, dt);
    compare_layouts([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, x, {}, true, 0,
                    "max_pool2d 3x3 stride 2 pad 1");
    compare_layouts([](auto& v) { return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1}); }, x,
                    {}, true, 0, "max_pool2d dilated");
    compare_layouts([](auto& v) { return global_max_pool2d(v[0]); }, x, {}, false, 0,
                    "global_max_pool2d");
    compare_layouts([](auto& v) { return global_avg_pool2d(v[0]); }, x, {}, false, 0,
                    "global_avg_pool2d");
  }
  // Ties and NaNs route like the row-major kernels (the first maximum wins; NaN propagates).
  Tensor t = zeros({1, 3, 4, 4});
  t.fill_(1.0);
  std::vector<float> v = t.to_vector<float>();
  v[5] = std::nanf("");
  const Tensor tn = from_vector(v, {1, 3, 4, 4});
  compare_layouts([](auto& p) { return max_pool2d(p[0], 2, 2); }, tn, {}, true, 0, "ties, NaN");
  compare_layouts([](auto& p) { return global_max_pool2d(p[0]); }, tn, {}, false, 0,
                  "global ties, NaN");
}

}  // namespace
}  // namespace cudl
