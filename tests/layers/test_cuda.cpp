// Level 2 of DESIGN.md for the layers: every CUDA layer op (cuDNN convolution and batch norm,
// cudl's pooling kernels, cuBLAS linear, Philox dropout) against its CPU twin on the same
// inputs, plus Module::to(cuda), the device error and the no-churn property of the caching
// allocator. Each test skips with the reason when no GPU is present.
//
// Tolerances: comparisons are |gpu - cpu| <= tol * max|cpu| + tol * |cpu| (the scale term
// covers near-zero results of long sums). Float32 sums in another order (cuDNN's algorithms,
// cuBLAS) differ by ~1e-6 of the scale per ~100 terms: tol 1e-4 for convolutions and linear
// layers (sums up to ~20000 terms here; cudl keeps cuDNN in FMA math, no TF32), 1e-5 for batch
// norm outputs (our CPU statistics are in double, cuDNN's in float), 1e-4 for its gradients
// (a cancellation: dy - mean(dy) - xhat * mean(dy * xhat)). Max pooling runs the same formula in
// the same order on both sides: exact. Dropout masks come from the same Philox stream: exact.
// Float64 cases: 1e-10.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/layers.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

const Device kGpu = Device::cuda(0);

Tensor rnd(const Shape& s, uint64_t seed, DType dt = kFloat32, double lo = -1, double hi = 1) {
  Generator g(seed);
  Tensor t = empty(s, dt);
  return uniform_(t, lo, hi, &g);
}

double scale_of(const Tensor& t) {
  return max(abs(t.detach().to(Device::cpu()).to(kFloat64))).item();
}

::testing::AssertionResult close(const Tensor& gpu, const Tensor& cpu, double tol) {
  if (!gpu.defined() || !cpu.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (!gpu.device().is_cuda()) return ::testing::AssertionFailure() << "result not on the GPU";
  return all_close(gpu.to(Device::cpu()), cpu, tol * scale_of(cpu), tol);
}

// Runs f on CPU and GPU copies of the inputs (all requiring grad), compares the outputs and
// every input gradient for a fixed random upstream gradient.
void compare_devices(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                     const std::vector<Tensor>& inputs, double tol, const std::string& what) {
  SCOPED_TRACE(what);
  auto [cpu_in, gpu_in] = testing::leaf_copies(inputs, kGpu);
  Tensor yc = f(cpu_in), yg = f(gpu_in);
  EXPECT_TRUE(close(yg, yc, tol)) << "forward";
  Tensor g = rnd(yc.shape(), 99, yc.dtype());
  yc.backward(g);
  yg.backward(g.to(kGpu));
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_TRUE(close(gpu_in[i].grad(), cpu_in[i].grad(), tol)) << "gradient of input " << i;
}

TEST(LayersCuda, Conv2dMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto conv = [](Size2 s, Size2 p, Size2 d = 1, int64_t groups = 1) {
    return [=](const std::vector<Tensor>& v) {
      return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), s, p, d, groups);
    };
  };
  // ResNet-18's stem at its real size, and its other convolution kinds on smaller maps.
  compare_devices(conv(2, 3), {rnd({2, 3, 300, 300}, 1), rnd({64, 3, 7, 7}, 2)}, 1e-4, "7x7 s2 p3");
  compare_devices(conv(1, 1), {rnd({2, 64, 20, 20}, 3), rnd({64, 64, 3, 3}, 4)}, 1e-4, "3x3 s1");
  compare_devices(conv(2, 1), {rnd({2, 64, 20, 20}, 5), rnd({128, 64, 3, 3}, 6)}, 1e-4, "3x3 s2");
  compare_devices(conv(2, 0), {rnd({2, 64, 20, 20}, 7), rnd({128, 64, 1, 1}, 8)}, 1e-4, "1x1 s2");
  compare_devices(conv({2, 1}, {1, 2}, {2, 1}, 2),
                  {rnd({3, 4, 11, 9}, 9), rnd({6, 2, 2, 3}, 10), rnd({6}, 11)}, 1e-4,
                  "groups, dilation, bias");
  compare_devices(
      conv(1, 1),
      {rnd({2, 3, 9, 9}, 12, kFloat64), rnd({4, 3, 3, 3}, 13, kFloat64), rnd({4}, 14, kFloat64)},
      1e-10, "float64");
  // Benchmarked algorithms (cudnnFind*Ex) compute the same convolution.
  set_conv_benchmark(true);
  compare_devices(conv(1, 1), {rnd({4, 32, 16, 16}, 15), rnd({32, 32, 3, 3}, 16)}, 1e-4,
                  "benchmark mode");
  set_conv_benchmark(false);
}

// set_conv_deterministic: the weight and input gradients of a convolution whose sums run over
// many positions (where cuDNN's fastest backward algorithms add partial sums with atomics) come
// out bit for bit the same on every run, heuristics and benchmark mode alike, and agree with
// the CPU.
TEST(LayersCuda, DeterministicConvolutionsRepeatBitForBit) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  struct Restore {
    ~Restore() {
      set_conv_deterministic(false);
      set_conv_benchmark(false);
    }
  } restore;
  set_conv_deterministic(true);
  const Tensor x = rnd({16, 64, 56, 56}, 17), w = rnd({64, 64, 3, 3}, 18);
  const Tensor dy = rnd({16, 64, 56, 56}, 19);
  for (const bool benchmark : {false, true}) {
    SCOPED_TRACE(benchmark ? "benchmark mode" : "heuristics");
    set_conv_benchmark(benchmark);
    std::vector<Tensor> dx, dw;
    for (int run = 0; run < 3; ++run) {
      auto [cpu_in, gpu_in] = testing::leaf_copies({x, w}, kGpu);
      conv2d(gpu_in[0], gpu_in[1], Tensor(), 1, 1).backward(dy.to(kGpu));
      dx.push_back(gpu_in[0].grad().to(Device::cpu()));
      dw.push_back(gpu_in[1].grad().to(Device::cpu()));
    }
    for (int run = 1; run < 3; ++run) {
      EXPECT_TRUE(all_close(dx[run], dx[0], 0.0, 0.0)) << "input gradient, run " << run;
      EXPECT_TRUE(all_close(dw[run], dw[0], 0.0, 0.0)) << "weight gradient, run " << run;
    }
  }
  compare_devices([](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], Tensor(), 1, 1); },
                  {rnd({4, 32, 16, 16}, 20), rnd({32, 32, 3, 3}, 21)}, 1e-4, "deterministic");
}

TEST(LayersCuda, BatchNormMatchesCpuIncludingRunningStatistics) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  for (const Shape& shape : {Shape{2, 64, 150, 150}, Shape{16, 1024}, Shape{4, 8, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t c = shape[1];
    Tensor rm = rnd({c}, 20), rv = rnd({c}, 21, kFloat32, 0.5, 2.0);
    Tensor rm_c = rm.clone(), rv_c = rv.clone(), rm_g = rm.to(kGpu), rv_g = rv.to(kGpu);
    Tensor x = rnd(shape, 22, kFloat32, -2, 3);
    compare_devices(
        [&](const std::vector<Tensor>& v) {
          const bool gpu = v[0].device().is_cuda();
          return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm_c, gpu ? rv_g : rv_c, true);
        },
        {x, rnd({c}, 23, kFloat32, 0.5, 1.5), rnd({c}, 24)}, 1e-4, "train");
    // cuDNN updates the running statistics with the unbiased variance, as the CPU does.
    EXPECT_TRUE(close(rm_g, rm_c, 1e-5)) << "running_mean";
    EXPECT_TRUE(close(rv_g, rv_c, 1e-5)) << "running_var";
    compare_devices(
        [&](const std::vector<Tensor>& v) {
          const bool gpu = v[0].device().is_cuda();
          return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm_c, gpu ? rv_g : rv_c, false);
        },
        {x, rnd({c}, 25, kFloat32, 0.5, 1.5), rnd({c}, 26)}, 1e-5, "eval");
  }
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  Tensor rm_g = rm.to(kGpu), rv_g = rv.to(kGpu);
  compare_devices(
      [&](const std::vector<Tensor>& v) {
        const bool gpu = v[0].device().is_cuda();
        return batch_norm(v[0], v[1], v[2], gpu ? rm_g : rm, gpu ? rv_g : rv, true);
      },
      {rnd({4, 3, 4, 4}, 27, kFloat64), rnd({3}, 28, kFloat64), rnd({3}, 29, kFloat64)}, 1e-10,
      "float64");
  // An empty batch in eval mode gives an empty result, as on the CPU.
  for (const DType dt : {kFloat32, kBFloat16}) {
    Tensor w = ones({3}, TensorOptions().device(kGpu)), b = zeros({3}, TensorOptions().device(kGpu));
    Tensor m = zeros({3}, TensorOptions().device(kGpu)), v = ones({3}, TensorOptions().device(kGpu));
    Tensor y = batch_norm(empty({0, 3, 4, 4}, TensorOptions(dt).device(kGpu)), w, b, m, v, false);
    EXPECT_EQ(y.shape(), (Shape{0, 3, 4, 4})) << toString(dt);
  }
}

TEST(LayersCuda, PoolingMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  // Exact: the same per-element formulas run on both sides, gradients added in the same order.
  compare_devices([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, {rnd({2, 64, 150, 150}, 30)},
                  0.0, "max_pool2d 3x3 s2 p1");
  Tensor tied = relu(rnd({2, 8, 19, 19}, 31));  // ties at zero in most windows
  compare_devices([](auto& v) { return max_pool2d(v[0], 3, 2, 1); }, {tied}, 0.0, "ties");
  compare_devices(
      [](auto& v) {
        return max_pool2d(v[0], {2, 3}, {1, 2}, {1, 1}, {2, 1});
      },
      {rnd({2, 3, 9, 10}, 32)}, 0.0, "dilated, non-square");
  compare_devices([](auto& v) { return global_max_pool2d(v[0]); }, {rnd({2, 512, 10, 10}, 33)}, 0.0,
                  "global max");
  compare_devices([](auto& v) { return global_avg_pool2d(v[0]); }, {rnd({2, 512, 10, 10}, 34)},
                  1e-6, "global avg");
  AdaptiveConcatPool2d concat;
  compare_devices([&](auto& v) { return concat(v[0]); }, {rnd({2, 512, 10, 10}, 35)}, 1e-6,
                  "concat pool");
}

TEST(LayersCuda, LinearMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  compare_devices([](auto& v) { return linear(v[0], v[1], v[2]); },
                  {rnd({16, 1024}, 40), rnd({512, 1024}, 41), rnd({512}, 42)}, 1e-4, "1024->512");
  compare_devices([](auto& v) { return linear(v[0], v[1]); }, {rnd({2, 3, 8}, 43), rnd({5, 8}, 44)},
                  1e-4, "3-D input, no bias");
}

TEST(LayersCuda, DropoutDrawsTheSameMaskOnBothDevices) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  compare_devices(
      [](auto& v) {
        Generator g(45);
        return dropout(v[0], 0.25, true, &g);
      },
      {rnd({64, 256}, 46)}, 0.0, "p = 0.25");
}

std::shared_ptr<Sequential> small_model() {
  return sequential(
      {std::make_shared<Conv2d>(3, 8, 3, Conv2dOptions().stride(2).padding(1).bias(false)),
       std::make_shared<BatchNorm2d>(8), std::make_shared<ReLU>(),
       std::make_shared<MaxPool2d>(3, 2, 1), std::make_shared<AdaptiveConcatPool2d>(),
       std::make_shared<Flatten>(), std::make_shared<BatchNorm1d>(16),
       std::make_shared<Dropout>(0.0), std::make_shared<Linear>(16, 4)});
}

TEST(LayersCuda, ModuleToCudaKeepsIdentityAndMatchesCpu) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto cpu_model = small_model();
  auto gpu_model = small_model();
  gpu_model->load_state_dict(cpu_model->state_dict());
  std::vector<Tensor> params = gpu_model->parameters();
  gpu_model->to(kGpu);
  EXPECT_EQ(gpu_model->device(), kGpu);
  EXPECT_TRUE(params[0].device().is_cuda()) << "parameters taken before to() follow the move";
  EXPECT_TRUE(params[0].is_same(gpu_model->parameters()[0]));
  for (auto& [name, b] : gpu_model->named_buffers()) EXPECT_TRUE(b.device().is_cuda()) << name;
  Tensor x = rnd({4, 3, 32, 32}, 50);
  Tensor yc = (*cpu_model)(x), yg = (*gpu_model)(x.to(kGpu));
  EXPECT_TRUE(close(yg, yc, 1e-4));
  sum(yc).backward();
  sum(yg).backward();
  auto pc = cpu_model->named_parameters(), pg = gpu_model->named_parameters();
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(close(pg[i].second.grad(), pc[i].second.grad(), 1e-4)) << pc[i].first;
  auto bc = cpu_model->named_buffers(), bg = gpu_model->named_buffers();
  for (size_t i = 0; i < bc.size(); ++i)
    EXPECT_TRUE(all_close(bg[i].second.to(Device::cpu()), bc[i].second, 1e-5, 1e-5)) << bc[i].first;
  // And back: gradients move with their parameters.
  gpu_model->to(Device::cpu());
  EXPECT_TRUE(params[0].device().is_cpu());
  EXPECT_TRUE(params[0].grad().device().is_cpu());
}

TEST(LayersCuda, WrongDeviceNamesTheLayer) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto model = std::make_shared<Sequential>();
  model->push_back(
      "layer1",
      sequential({std::make_shared<Conv2d>(64, 64, 3, Conv2dOptions().padding(1).bias(false))}));
  try {
    (*model)(rnd({2, 64, 56, 56}, 51).to(kGpu));
    FAIL() << "a CUDA input to a CPU model was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(),
              "layer1.0 (Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
              "bias=False)): expected input (N, 64, H, W) on cpu, got (2, 64, 56, 56) on cuda:0 "
              "(move the input, or the model with to(device))");
  }
}

TEST(LayersCuda, NoAllocationChurnAfterWarmUp) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  auto model =
      sequential({std::make_shared<Conv2d>(3, 16, 3, Conv2dOptions().padding(1).bias(false)),
                  std::make_shared<BatchNorm2d>(16), std::make_shared<ReLU>(),
                  std::make_shared<Conv2d>(16, 16, 3, Conv2dOptions().stride(2).padding(1)),
                  std::make_shared<BatchNorm2d>(16), std::make_shared<ReLU>(),
                  std::make_shared<MaxPool2d>(3, 2, 1)});
  model->to(kGpu);
  Tensor x = rnd({8, 3, 64, 64}, 52).to(kGpu);
  auto step = [&] {
    model->zero_grad();
    sum((*model)(x)).backward();
  };
  step();  // warm-up: cuDNN plans, workspaces and gradients get their memory
  step();  // and the free blocks settle into the layout every later step reuses
  const MemoryStats before = memory_stats(kGpu);
  for (int i = 0; i < 5; ++i) step();
  const MemoryStats after = memory_stats(kGpu);
  EXPECT_EQ(after.num_device_allocs, before.num_device_allocs) << "cudaMalloc after warm-up";
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes) << "live memory grew";
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes) << "the cache grew";
  EXPECT_GT(after.num_alloc_requests, before.num_alloc_requests) << "the steps must allocate";
}

}  // namespace
}  // namespace cudl
