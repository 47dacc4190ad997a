// Every convolution of ResNet-18 at one input size and batch, forward and backward, timed one
// by one: where the CPU training step spends its convolution time. The twin
// bench/conv_torch.py times the same convolutions in PyTorch; bench/conv.sh prints both.
//
// Layers (torchvision names, 300x300 input): conv1 7x7/2 3->64; layer1 3x3 64 (4 in the
// model); layer2.0.conv1 3x3/2 64->128, layer2 3x3 128 (3), layer2.0.downsample 1x1/2;
// likewise layer3 (256) and layer4 (512). backward computes dx and dw, except for conv1,
// whose input (the image) needs no gradient, as in training.
//
// Usage: bench_conv [--batch 16] [--size 300] [--threads T] [--reps 3] [--device cpu|cuda]
//                   [--layer NAME]   (only that layer)
//                   [--path auto|onednn|im2col-parallel|im2col-blas|winograd]   (CpuConvPath)
//                   [--weights-grad-only 1]   (backward computes dw only)
//                   [--channels-last 1]   (channels-last input, output and gradients)
// Prints one JSON line per layer: name, count (how many such convolutions the model has),
// fwd_s, bwd_s (medians), gflop (forward multiply-adds x 2).
#include "tensor/ops/conv.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "tensor/random.h"

namespace {

struct Layer {
  std::string name;
  int count;
  int64_t cin, cout, k, stride, in_size;
};

// The input side of each stage for a square image of `size`.
std::vector<Layer> resnet18_convs(int64_t size) {
  auto out = [](int64_t n, int64_t k, int64_t s, int64_t p) { return (n + 2 * p - k) / s + 1; };
  const int64_t s1 = out(out(size, 7, 2, 3), 3, 2, 1);  // after conv1 and the max pool
  const int64_t s2 = out(s1, 3, 2, 1), s3 = out(s2, 3, 2, 1);
  return {{"conv1", 1, 3, 64, 7, 2, size},
          {"layer1.conv", 4, 64, 64, 3, 1, s1},
          {"layer2.0.conv1", 1, 64, 128, 3, 2, s1},
          {"layer2.conv", 3, 128, 128, 3, 1, s2},
          {"layer2.0.downsample", 1, 64, 128, 1, 2, s1},
          {"layer3.0.conv1", 1, 128, 256, 3, 2, s2},
          {"layer3.conv", 3, 256, 256, 3, 1, s3},
          {"layer3.0.downsample", 1, 128, 256, 1, 2, s2},
          {"layer4.0.conv1", 1, 256, 512, 3, 2, s3},
          {"layer4.conv", 3, 512, 512, 3, 1, out(s3, 3, 2, 1)},
          {"layer4.0.downsample", 1, 256, 512, 1, 2, s3}};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cudl;
  int64_t batch = 16, size = 300;
  int threads = get_num_threads(), reps = 3;
  std::string device = "cpu", only, path = "auto";
  bool weights_only = false, channels_last = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--batch")
      batch = std::atoll(v);
    else if (k == "--size")
      size = std::atoll(v);
    else if (k == "--threads")
      threads = std::atoi(v);
    else if (k == "--reps")
      reps = std::atoi(v);
    else if (k == "--device")
      device = v;
    else if (k == "--layer")
      only = v;
    else if (k == "--path")
      path = v;
    else if (k == "--weights-grad-only")
      weights_only = std::string(v) == "1";
    else if (k == "--channels-last")
      channels_last = std::string(v) == "1";
    else {
      std::cerr
          << "bench_conv: unknown option " << k
          << "\nusage: bench_conv [--batch 16] [--size 300] [--threads T] [--reps 3] "
             "[--device cpu|cuda] [--layer NAME]\n"
             "       [--path auto|onednn|im2col-parallel|im2col-blas|winograd] [--weights-grad-only 0|1]\n"
             "       [--channels-last 0|1]\n";
      return 2;
    }
  }
  try {
    set_num_threads(threads);
    if (path == "onednn")
      set_cpu_conv_path(CpuConvPath::kOneDnn);
    else if (path == "im2col-parallel")
      set_cpu_conv_path(CpuConvPath::kIm2colSampleParallel);
    else if (path == "im2col-blas")
      set_cpu_conv_path(CpuConvPath::kIm2colBlasThreads);
    else if (path == "winograd")
      set_cpu_conv_path(CpuConvPath::kWinograd);
    else if (path != "auto")
      throw std::runtime_error("unknown --path " + path);
    const Device d = Device::parse(device);
    const TensorOptions o = TensorOptions().device(d);
    Generator gen(0);
    for (const Layer& l : resnet18_convs(size)) {
      if (!only.empty() && l.name != only) continue;
      const int64_t pad = l.k / 2;
      Tensor x = randn({batch, l.cin, l.in_size, l.in_size}, o, &gen);
      if (channels_last) x = x.contiguous(MemoryFormat::kChannelsLast);
      Tensor w = mul(randn({l.cout, l.cin, l.k, l.k}, o, &gen), 0.05).set_requires_grad();
      if (l.name != "conv1" && !weights_only) x.set_requires_grad();
      Tensor y;
      const double fwd = bench::median_seconds(d, 1, reps, [&] {
        NoGradGuard ng;
        y = conv2d(x, w, Tensor(), l.stride, pad);
      });
      Tensor dy = randn(y.shape(), o, &gen);
      if (channels_last) dy = dy.contiguous(MemoryFormat::kChannelsLast);
      std::vector<double> t;
      for (int r = 0; r <= reps; ++r) {  // the first run is a warm-up
        x.set_grad(Tensor());
        w.set_grad(Tensor());
        Tensor out = conv2d(x, w, Tensor(), l.stride, pad);
        bench::sync(d);
        const auto t0 = std::chrono::steady_clock::now();
        out.backward(dy);
        bench::sync(d);
        if (r > 0)
          t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(t.begin(), t.end());
      const double bwd = t[t.size() / 2];
      const double gflop = 2.0 * static_cast<double>(y.numel()) * l.cin * l.k * l.k / 1e9;
      nlohmann::json j = {{"impl", channels_last ? "cudl channels_last" : "cudl"},
                          {"path", path},
                          {"layer", l.name},
                          {"count", l.count},   {"batch", batch},        {"size", size},
                          {"threads", threads}, {"fwd_s", fwd},          {"bwd_s", bwd},
                          {"gflop", gflop},     {"out_shape", y.shape()}};
      std::cout << j.dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_conv: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
