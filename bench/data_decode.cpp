// Decode + resize + centre crop + normalise throughput (images/s) of cudl's image pipeline on
// 499x666 portrait JPEGs (the notebook's photo size) to 300x300 float CHW, on one thread and on
// all threads. The JPEGs are the demo data generator's photo-like images (textured backgrounds,
// objects, noise) at quality 90, deterministic; --out DIR writes them for the PyTorch twin
// (bench/data_decode_torch.py), which times PIL + torchvision on the same files.
// Usage: bench_data_decode [--images 32] [--seconds 3] [--threads T] [--out DIR]
// Prints one JSON line per thread count: {"impl":"cudl","threads":...,"images_per_s":...,
// "cpu_ms_per_image":...}: wall-clock throughput and the working threads' CPU time per image.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "data/demo_data.h"
#include "data/load.h"

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Result {
  double images_per_s;      // wall clock
  double cpu_ms_per_image;  // CPU time of the working threads per image (robust to a busy machine)
};

// Images per second of `threads` threads each decoding images in turn, for about `seconds`.
Result throughput(const std::vector<std::vector<uint8_t>>& jpegs, int threads, double seconds) {
  using namespace cudl::data;
  LoadOptions o;
  o.size = 300;
  const size_t per_image = 3 * 300 * 300;
  std::vector<double> cpu(static_cast<size_t>(threads));
  auto run = [&](double secs, std::atomic<int64_t>& done) {
    std::vector<std::thread> pool;
    std::atomic<bool> stop{false};
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        std::vector<float> out(per_image);
        const double c0 = thread_cpu_seconds();
        for (size_t i = static_cast<size_t>(t); !stop.load(std::memory_order_relaxed);
             i += threads) {
          const auto& j = jpegs[i % jpegs.size()];
          load_normalised(j.data(), j.size(), "bench.jpg", out.data(), o);
          done.fetch_add(1, std::memory_order_relaxed);
        }
        cpu[static_cast<size_t>(t)] = thread_cpu_seconds() - c0;
      });
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    stop = true;
    for (auto& th : pool) th.join();
  };
  std::atomic<int64_t> warm{0};
  run(std::min(0.5, seconds / 4), warm);  // warm up caches and the allocator
  std::atomic<int64_t> done{0};
  const auto start = Clock::now();
  run(seconds, done);
  // Images finished after the stop flag still count: divide by the real elapsed time.
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu_total = 0;
  for (double c : cpu) cpu_total += c;
  const auto n = static_cast<double>(done.load());
  return {n / elapsed, 1e3 * cpu_total / n};
}

}  // namespace

int main(int argc, char** argv) {
  int images = 32, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double seconds = 3;
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--images")
      images = std::atoi(argv[i + 1]);
    else if (k == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (k == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (k == "--out")
      out = argv[i + 1];
    else {
      std::cerr << "bench_data_decode: unknown option " << k << "\n";
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || images < 1 || threads < 1 || seconds <= 0) {
    std::cerr << "usage: bench_data_decode [--images N] [--seconds S] [--threads T] [--out DIR]\n";
    return 2;
  }
  try {
    using namespace cudl::data;
    DemoDataOptions d;
    d.height = 666;
    d.width = 499;
    d.seed = 2024;
    std::vector<std::vector<uint8_t>> jpegs;
    size_t bytes = 0;
    for (int i = 0; i < images; ++i) {
      JpegEncodeOptions jo;
      jo.quality = 90;
      jpegs.push_back(encode_jpeg(render_demo_image(d, i, nullptr), jo));
      bytes += jpegs.back().size();
      if (!out.empty()) write_file(out + "/" + std::to_string(i) + ".jpg", jpegs.back());
    }
    for (int t : {1, threads}) {
      const Result r = throughput(jpegs, t, seconds);
      nlohmann::json j = {{"impl", "cudl"},
                          {"threads", t},
                          {"images", images},
                          {"mean_jpeg_bytes", bytes / images},
                          {"size", "499x666 -> 300x300"},
                          {"images_per_s", r.images_per_s},
                          {"cpu_ms_per_image", r.cpu_ms_per_image}};
      std::cout << j.dump() << std::endl;
      if (threads == 1) break;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_data_decode: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
