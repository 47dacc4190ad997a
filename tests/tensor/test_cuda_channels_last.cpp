// Channels-last on the GPU: conv2d (cuDNN NHWC descriptors, KRSC filters), batch norm (cuDNN
// with NHWC descriptors for float32, cudl's channels-last kernels for bfloat16), max pooling and
// the global pools, each fed a channels-last GPU tensor and compared with the CPU's row-major
// result of the same op on the same values (the CPU is the reference): outputs, every gradient,
// the running statistics, and the output's layout. Each test skips with the reason when no GPU
// is present.
//
// Tolerances (of the reference's largest magnitude): float32 convolutions without TF32 and
// batch norm sum in another order than the CPU: 1e-4; bfloat16 results round once from float on
// both sides, and may land one bfloat16 ulp apart: 1e-2 (tensor/test_cuda_bf16.cpp explains
// both); max pooling picks and routes exact values: equal.
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

const Device kGpu = Device::cuda(0);
const MemoryFormat kCL = MemoryFormat::kChannelsLast;

Tensor rnd(const Shape& s, uint64_t seed, DType dt = kFloat32, double lo = -1, double hi = 1) {
  return testing::rand64(s, seed, lo, hi).to(dt);
}

::testing::AssertionResult close_to(const Tensor& gpu, const Tensor& cpu, double tol) {
  if (!gpu.defined() || !cpu.defined()) return ::testing::AssertionFailure() << "undefined";
  if (!gpu.device().is_cuda()) return ::testing::AssertionFailure() << "not on the GPU";
  if (gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << toString(gpu.dtype()) << " vs " << toString(cpu.dtype());
  const Tensor c = cpu.detach().to(kFloat64);
  const double scale = c.numel() ? max(abs(c)).item() : 0.0;
  return all_close(gpu.detach().to(Device::cpu()).to(kFloat64), c, tol * scale, tol);
}

// f on CPU row-major leaves and on GPU leaves whose first input is channels-last; outputs and
// gradients compared.
void compare(const std::function<Tensor(const std::vector<Tensor>&)>& f, const Tensor& x,
             const std::vector<Tensor>& others, bool expect_cl_output, double tol,
             const std::string& what) {
  SCOPED_TRACE(what);
  std::vector<Tensor> cpu{x.clone().set_requires_grad()};
  std::vector<Tensor> gpu{x.to(kGpu).contiguous(kCL)};
  ASSERT_EQ(suggest_memory_format(gpu[0]), kCL);
  gpu[0].set_requires_grad();
  for (const Tensor& o : others) {
    cpu.push_back(o.clone().set_requires_grad());
    gpu.push_back(o.to(kGpu).set_requires_grad());
  }
  const Tensor yc = f(cpu), yg = f(gpu);
  if (expect_cl_output) {
    EXPECT_TRUE(yg.is_contiguous(kCL)) << "strides " << shape_str(yg.strides());
  }
  EXPECT_TRUE(close_to(yg, yc, tol)) << "output";
  const Tensor g = rnd(yc.shape(), 91, yc.dtype());
  yc.backward(g);
  yg.backward(g.to(kGpu));
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(close_to(gpu[i].grad(), cpu[i].grad(), tol)) << "gradient of input " << i;
}

TEST(CudaChannelsLast, Conv2dMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  set_conv_allow_tf32(false);
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    const double tol = dt == kBFloat16 ? 1e-2 : 1e-4;
    const Tensor x = rnd({4, 16, 19, 17}, 1, dt);
    const Tensor w = rnd({32, 16, 3, 3}, 2, dt, -0.3, 0.3), b = rnd({32}, 3, dt);
    compare([](auto& v) { return conv2d(v[0], v[1], v[2], 1, 1); }, x, {w, b}, true, tol,
            "3x3 stride 1 pad 1 with bias");
    compare([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2, 1); }, x, {w}, true, tol,
            "3x3 stride 2 pad 1");
    compare([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2); }, x,
            {rnd({32, 16, 1, 1}, 4, dt)}, true, tol, "1x1 stride 2");
    compare([](auto& v) { return conv2d(v[0], v[1], Tensor(), 1, 1, 1, 2); }, x,
            {rnd({32, 8, 3, 3}, 5, dt, -0.3, 0.3)}, true, tol, "groups 2");
    compare([](auto& v) { return conv2d(v[0], v[1], Tensor(), 2, 3); }, rnd({2, 3, 33, 33}, 6, dt),
            {rnd({16, 3, 7, 7}, 7, dt, -0.2, 0.2)}, true, tol, "the stem: 7x7 stride 2, 3 channels");
  }
}

TEST(CudaChannelsLast, BatchNormMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Channel counts below, at and above a block of threads, and enough rows for many chunks.
  for (const Shape& shape : {Shape{3, 5, 7, 6}, Shape{8, 64, 32, 32}, Shape{2, 300, 9, 9}}) {
    for (DType dt : {kFloat32, kBFloat16}) {
      SCOPED_TRACE(shape_str(shape) + " " + toString(dt));
      const DType pt = compute_dtype(dt);
      const double tol = dt == kBFloat16 ? 1e-2 : 1e-4;
      const int64_t c = shape[1];
      const Tensor x = rnd(shape, 8, dt, 3, 5);  // a mean far from 0 tests the shifted sums
      const Tensor w = rnd({c}, 9, pt, 0.5, 1.5), b = rnd({c}, 10, pt), res = rnd(shape, 11, dt);
      for (const bool training : {true, false}) {
        SCOPED_TRACE(training ? "train" : "eval");
        const Tensor rm = rnd({c}, 12, pt, 3, 5), rv = rnd({c}, 13, pt, 0.5, 2);
        Tensor rm_c = rm.clone(), rv_c = rv.clone(), rm_g = rm.to(kGpu), rv_g = rv.to(kGpu);
        compare(
            [&](auto& v) {
              const bool on_gpu = v[0].device().is_cuda();
              return batch_norm(v[0], v[1], v[2], on_gpu ? rm_g : rm_c, on_gpu ? rv_g : rv_c,
                                training);
            },
            x, {w, b}, true, tol, "batch_norm");
        EXPECT_TRUE(close_to(rm_g, rm_c, 1e-5)) << "running_mean";
        EXPECT_TRUE(close_to(rv_g, rv_c, 1e-5)) << "running_var";
        const Tensor rm2 = rm.to(kGpu), rv2 = rv.to(kGpu);
        compare(
            [&](auto& v) {
              const bool on_gpu = v[0].device().is_cuda();
              return batch_norm_act(v[0], v[1], v[2], on_gpu ? rm2 : rm, on_gpu ? rv2 : rv,
                                    training, 0.0, 1e-5, v[3], true);
            },
            x, {w, b, res}, true, tol, "batch_norm + residual + relu");
      }
    }
  }
}

TEST(CudaChannelsLast, PoolsMatchCpuExactly) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(toString(dt));
    const Tensor x = rnd({3, 40, 23, 21}, 14, dt);
    compare([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, x, {}, true, 0,
            "max_pool2d 3x3 stride 2 pad 1");
    compare([](auto& v) { return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1}); }, x, {}, true,
            0, "max_pool2d dilated");
    compare([](auto& v) { return global_max_pool2d(v[0]); }, x, {}, false, 0, "global_max_pool2d");
    // A mean: the GPU sums in another order (one rounding of float apart at most).
    compare([](auto& v) { return global_avg_pool2d(v[0]); }, x, {}, false,
            dt == kBFloat16 ? 1e-2 : 1e-6, "global_avg_pool2d");
  }
}

}  // namespace
}  // namespace cudl
