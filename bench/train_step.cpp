// One training step of the notebook's model (models::notebook_model(resnet18, 4 classes): the
// ResNet-18 body and fastai's head) in train mode: forward, BCE-with-logits (mean), backward,
// AdamW (lr 1e-4, betas (0.9, 0.99), eps 1e-8, weight decay 1e-2 decoupled), on random input
// and random 0/1 targets. The same step as bench/train_step_torch.py, which PyTorch runs.
//
// Gradients are zeroed in place before each step (zero_grad(set_to_none = false)), as the
// PyTorch twin does. `warmup` untimed steps, then the median of `steps` timed steps. The step
// is train::TrainStep, what fridge_train runs: on CUDA it is replayed from a captured CUDA graph
// after its own two eager warm-up calls (counted in `warmup`), unless --cuda-graph 0; cuDNN
// convolutions may use TF32 (PyTorch's default) unless --tf32 0. --precision bf16 runs the
// forward and loss under autocast (bfloat16 mixed precision, tensor/autocast.h), as the twin
// does with torch.autocast. --channels-last 1 feeds the model channels-last images (every
// activation then stays NHWC: train::TrainStepOptions::channels_last), as the twin's
// --channels-last does with model.to(memory_format=torch.channels_last). On the CPU the 3x3
// stride-1 convolutions run by Winograd's F(4x4, 3x3) (CpuConvPath::kWinograd), as fridge_train's
// do by default; --winograd 0 runs the direct kernels (CpuConvPath::kAuto, fridge_train
// --no-winograd; the row is named "cudl direct"), as PyTorch's CPU convolutions are.
//
// Usage: bench_train_step [--batch 16] [--size 300] [--device cpu|cuda] [--threads T]
//                         [--warmup 3] [--steps 5] [--cuda-graph 1] [--tf32 1] [--profile 0]
//                         [--precision fp32|bf16] [--channels-last 0] [--winograd 1]
// --profile N runs N more eager steps under the profiler (tensor/profiler.h) after the timed
// ones, prints the table of where they spent their time to stderr and adds it to the JSON.
// Prints one JSON line: images_per_s, median_step_s, the CPU time of the timed steps
// (getrusage, user + system, per step) and the peak memory: on the CPU the process's max RSS
// (what the PyTorch twin reports) and cudl's own peak of allocated tensor bytes; on CUDA the
// caching allocator's peak of allocated bytes (torch.cuda.max_memory_allocated's analogue).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "models/resnet.h"
#include "optim/optim.h"
#include "tensor/ops/conv.h"
#include "tensor/parallel.h"
#include "tensor/profiler.h"
#include "train/outputs.h"
#include "train/train_step.h"

#ifdef CUDL_WITH_CUDA
#include "tensor/cuda/context.h"
#endif

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int64_t max_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

void usage(std::ostream& os) {
  os << "usage: bench_train_step [--batch 16] [--size 300] [--device cpu|cuda] [--threads T]\n"
        "                        [--warmup 3] [--steps 5] [--cuda-graph 1] [--tf32 1] [--profile 0]\n"
        "                        [--precision fp32|bf16] [--channels-last 0] [--winograd 1]\n"
        "One training step (forward, BCE-with-logits, backward, AdamW) of the notebook's\n"
        "ResNet-18 model; prints one JSON line.\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cudl;
  int64_t batch = 16, size = 300;
  int threads = get_num_threads(), warmup = 3, steps = 5, graph = 1, tf32 = 1, profile = 0,
      channels_last = 0, winograd = 1;
  std::string device = "cpu", precision = "fp32";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      usage(std::cout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "bench_train_step: " << k << " needs a value\n";
      usage(std::cerr);
      return 2;
    }
    const char* v = argv[++i];
    if (k == "--batch")
      batch = std::atoll(v);
    else if (k == "--size")
      size = std::atoll(v);
    else if (k == "--device")
      device = v;
    else if (k == "--threads")
      threads = std::atoi(v);
    else if (k == "--warmup")
      warmup = std::atoi(v);
    else if (k == "--steps")
      steps = std::atoi(v);
    else if (k == "--cuda-graph")
      graph = std::atoi(v);
    else if (k == "--tf32")
      tf32 = std::atoi(v);
    else if (k == "--profile")
      profile = std::atoi(v);
    else if (k == "--precision")
      precision = v;
    else if (k == "--channels-last")
      channels_last = std::atoi(v);
    else if (k == "--winograd")
      winograd = std::atoi(v);
    else {
      std::cerr << "bench_train_step: unknown option " << k << "\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (batch < 2 || size < 32 || threads < 1 || warmup < 0 || steps < 1 ||
      (precision != "fp32" && precision != "bf16")) {
    std::cerr << "bench_train_step: need --batch >= 2 (BatchNorm), --size >= 32, --threads >= 1, "
                 "--warmup >= 0, --steps >= 1, --precision fp32 or bf16\n";
    return 2;
  }
  try {
    set_num_threads(threads);
    const Device d = Device::parse(device);
    Generator gen(0);
    auto model = models::notebook_model(models::Arch::kResNet18, 4, &gen);
    model->to(d);
    model->train();
    AdamWOptions o;  // betas (0.9, 0.99), eps 1e-8, weight decay 1e-2, decoupled
    o.lr = 1e-4;
    AdamW opt(model->parameters(), o);
    const TensorOptions to = TensorOptions().device(d);
    Tensor x = randn({batch, 3, size, size}, to, &gen);
    Tensor y = gt(rand({batch, 4}, to, &gen), full({}, 0.5, to));

    set_conv_allow_tf32(tf32 != 0);
    set_cpu_conv_path(winograd != 0 ? CpuConvPath::kWinograd : CpuConvPath::kAuto);
    train::TrainStepOptions so;
    so.cuda_graph = graph != 0;
    so.mixed_precision = precision == "bf16";
    so.channels_last = channels_last != 0;
    const train::TrainStep::LossFn bce = [](const Tensor& logits, const Tensor& targets) {
      return binary_cross_entropy_with_logits(logits, targets);
    };
    train::TrainStep train_step(*model, opt, bce, {&gen}, d, so);
    auto step = [&] { train_step.run(x, y); };
    // With a graph, the warm-up also covers TrainStep's eager calls and the capture.
    const int untimed = d.is_cuda() && graph != 0 ? std::max(warmup, so.warmup + 1) : warmup;
    for (int i = 0; i < untimed; ++i) step();
    bench::sync(d);
    reset_peak_memory_stats(d);
    std::vector<double> times;
    const double cpu0 = cpu_seconds();
    for (int i = 0; i < steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      bench::sync(d);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double cpu_per_step = (cpu_seconds() - cpu0) / steps;
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const double med = sorted[sorted.size() / 2];
    const MemoryStats ms = memory_stats(d);
    nlohmann::json prof = nlohmann::json::array();
    if (profile > 0) {
      train::TrainStepOptions eager_opts;
      eager_opts.cuda_graph = false;  // a replayed graph runs no host code to time
      eager_opts.mixed_precision = so.mixed_precision;
      eager_opts.channels_last = so.channels_last;
      train::TrainStep eager(*model, opt, bce, {&gen}, d, eager_opts);
      eager.run(x, y);  // untimed: the first eager step after a graph may allocate
      bench::sync(d);
      profiler_start(d);
      for (int i = 0; i < profile; ++i) eager.run(x, y);
      const std::vector<ProfileEntry> entries = profiler_stop();
      std::cerr << format_profile(entries, profile);
      for (const ProfileEntry& e : entries)
        prof.push_back({{"name", e.name},
                        {"calls_per_step", static_cast<double>(e.calls) / profile},
                        {"ms_per_step", 1e3 * e.seconds / profile}});
    }
    const bool graphed = train_step.graphed();
    // A capture that failed leaves TrainStep eager: named so, not passed off as the graph's row.
    const bool fell_back = d.is_cuda() && graph != 0 && !graphed;
    // As fridge_train names them (bfloat16 convolutions on oneDNN's bfloat16 kernels, where
    // --winograd changes nothing, are "onednn_bf16").
    const std::string cpu_convolutions =
        train::ComputeMode::of(d, so.mixed_precision, so.channels_last, winograd != 0)
            .cpu_convolutions();
    if (fell_back)
      std::cerr << "bench_train_step: no CUDA graph, the steps ran eagerly: " << train_step.reason()
                << "\n";
    const std::string impl = std::string(d.is_cuda() && graph == 0 ? "cudl eager"
                                         : fell_back              ? "cudl eager-fallback"
                                                                  : "cudl") +
                             (precision == "bf16" ? " bf16" : "") +
                             (so.channels_last ? " channels_last" : "") +
                             (winograd == 0 && d.is_cpu() ? " direct" : "");
    nlohmann::json j = {{"impl", impl},
                        {"train_step", graphed ? "cuda graph" : "eager (" + train_step.reason() + ")"},
                        {"tf32", d.is_cuda() && tf32 != 0},
                        // what "cudl" ran: before cb10eec the CPU default was "direct"
                        {"cpu_convolutions", d.is_cpu() ? cpu_convolutions : "cudnn"},
                        {"device", d.str()},
                        {"batch", batch},
                        {"size", size},
                        {"precision", precision},
                        {"memory_format", so.channels_last ? "channels_last" : "contiguous"},
                        {"threads", threads},
                        {"steps", steps},
                        {"median_step_s", med},
                        {"step_s", times},
                        {"cpu_s_per_step", cpu_per_step},
                        {"images_per_s", static_cast<double>(batch) / med},
                        {"blas", blas_info()},
                        {"onednn", onednn_version()}};
    if (profile > 0) {
      j["profile"] = prof;
      j["profile_steps"] = profile;
    }
    if (d.is_cuda()) {
      // What the step holds on the device: the caching allocator's peak reservation (a graph's
      // pool included) plus cuBLAS's workspace, which is outside it (PyTorch's is inside its
      // allocator). The peak of live tensor bytes alone flatters a graph: blocks its capture
      // freed stay reserved for it but are not "allocated".
#ifdef CUDL_WITH_CUDA
      const int64_t cublas_ws = static_cast<int64_t>(cuda::cublas_workspace_size(d.index));
#else
      const int64_t cublas_ws = 0;
#endif
      j["peak_bytes"] = ms.peak_reserved_bytes + cublas_ws;
      j["peak_kind"] = "device reserved";
      j["peak_allocated_bytes"] = ms.peak_allocated_bytes;
    } else {
      j["peak_bytes"] = max_rss_bytes();
      j["peak_kind"] = "process max RSS";
      j["peak_allocated_bytes"] = ms.peak_allocated_bytes;
      j["peak_reserved_bytes"] = ms.peak_reserved_bytes;  // including cudl's CPU block cache
    }
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_train_step: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
