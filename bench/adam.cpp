// CPU (and, with a GPU, CUDA) Adam/AdamW step over ResNet-18's 11,689,512 parameters, split
// into its 62 tensors (conv, BatchNorm and fc shapes of torchvision's resnet18), or one flat
// tensor (--layout flat). Beside it, the memory bandwidth of the same machine measured by the
// same program with the same threads: STREAM's triad a[i] = b[i] + s * c[i] over three arrays
// far larger than the caches.
//
// Bytes counted per step: the update reads p, g, m, v and writes p, m, v: 7 x 4 bytes per
// float32 parameter (every written line was read first, so this is the real traffic). The
// triad counts 3 x 4 bytes per element, STREAM's convention (reading b and c, writing a; the
// hidden read of a's lines before writing them is not counted, so the triad figure is a
// conservative 3/4 of the bus traffic).
//
// Usage: bench_adam [--threads T] [--reps 20] [--optimizer adamw|adam] [--layout resnet18|flat]
//                   [--device cpu|cuda] [--triad-mib 256]
// Prints one JSON line.
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_util.h"
#include "optim/optim.h"

namespace {

using cudl::Shape;

// torchvision resnet18's parameters, in order: 62 tensors, 11,689,512 values.
std::vector<Shape> resnet18_shapes() {
  std::vector<Shape> s = {{64, 3, 7, 7}, {64}, {64}};
  auto block = [&](int64_t in, int64_t out, bool down) {
    s.insert(s.end(), {{out, in, 3, 3}, {out}, {out}, {out, out, 3, 3}, {out}, {out}});
    if (down) s.insert(s.end(), {{out, in, 1, 1}, {out}, {out}});
  };
  int64_t in = 64;
  for (int64_t out : {64, 128, 256, 512}) {
    block(in, out, out != in);
    block(out, out, false);
    in = out;
  }
  s.insert(s.end(), {{1000, 512}, {1000}});
  return s;
}

double triad_gbps(int64_t n, int reps) {
  using namespace cudl;
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  const float s = 3.0f;
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  double t = bench::median_seconds(Device::cpu(), 2, reps, [&] {
    parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) pa[i] = pb[i] + s * pc[i];
    });
  });
  if (a[n / 2] != 7.0f) std::cerr << "triad: wrong result\n";
  return 3.0 * 4.0 * static_cast<double>(n) / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cudl;
  int threads = get_num_threads(), reps = 20;
  int64_t triad_mib = 256;
  std::string optimizer = "adamw", layout = "resnet18", device = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--reps") reps = std::atoi(argv[i + 1]);
    else if (k == "--optimizer") optimizer = argv[i + 1];
    else if (k == "--layout") layout = argv[i + 1];
    else if (k == "--device") device = argv[i + 1];
    else if (k == "--triad-mib") triad_mib = std::atoll(argv[i + 1]);
    else {
      std::cerr << "bench_adam: unknown option " << k << "\n";
      return 2;
    }
  }
  if ((optimizer != "adamw" && optimizer != "adam") || (layout != "resnet18" && layout != "flat")) {
    std::cerr << "bench_adam: --optimizer adamw|adam, --layout resnet18|flat\n";
    return 2;
  }
  try {
    set_num_threads(threads);
    Device d = Device::parse(device);
    std::vector<Shape> shapes = resnet18_shapes();
    int64_t total = 0;
    for (const Shape& s : shapes) total += numel_of(s);
    if (total != 11689512) throw std::runtime_error("resnet18 shapes do not add up");
    if (layout == "flat") shapes = {{total}};
    Generator gen(1);
    std::vector<Tensor> params;
    for (const Shape& s : shapes) {
      Tensor p = randn(s, TensorOptions().device(d), &gen).set_requires_grad();
      p.set_grad(mul(randn(s, TensorOptions().device(d), &gen), 1e-2));
      params.push_back(p);
    }
    std::unique_ptr<Optimizer> opt;
    if (optimizer == "adamw") {
      AdamWOptions o;  // the recipe's: betas (0.9, 0.99), eps 1e-8, wd 0.01
      o.lr = 1e-4;
      opt = std::make_unique<AdamW>(params, o);
    } else {
      AdamOptions o;
      o.lr = 1e-4;
      opt = std::make_unique<Adam>(params, o);
    }
    const double s = bench::median_seconds(d, 3, reps, [&] { opt->step(); });
    const double gbps = 7.0 * 4.0 * static_cast<double>(total) / s / 1e9;
    const double triad = triad_gbps(triad_mib * 1024 * 1024 / 4, 10);
    nlohmann::json j = {{"impl", "cudl"}, {"optimizer", optimizer}, {"device", d.str()},
                        {"layout", layout}, {"tensors", shapes.size()}, {"params", total},
                        {"threads", threads}, {"reps", reps}, {"median_s", s}, {"gbps", gbps},
                        {"bytes_per_param", 28}, {"triad_gbps", triad},
                        {"fraction_of_triad", gbps / triad}};
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_adam: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
