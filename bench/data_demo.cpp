// Writes the demo dataset (data/demo_data.h) and times it: DIR/labels.csv + DIR/images/*.jpg.
// bench/data_demo_torch.py then trains a small CNN from scratch on it in PyTorch, the check that
// the data is learnable at a small image size within about a minute on two CPU cores.
// Usage: bench_data_demo --out DIR [--images 128] [--seed 0] [--height 333] [--width 250]
// Prints one JSON line: {"impl":"cudl","images":...,"seconds":...,"class_counts":[...]}.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "data/demo_data.h"

int main(int argc, char** argv) {
  cudl::data::DemoDataOptions o;
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--out")
      out = argv[i + 1];
    else if (k == "--images")
      o.num_images = std::atoll(argv[i + 1]);
    else if (k == "--seed")
      o.seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (k == "--height")
      o.height = std::atoi(argv[i + 1]);
    else if (k == "--width")
      o.width = std::atoi(argv[i + 1]);
    else {
      std::cerr << "bench_data_demo: unknown option " << k << "\n";
      return 2;
    }
  }
  if (out.empty() || (argc - 1) % 2 != 0) {
    std::cerr
        << "usage: bench_data_demo --out DIR [--images N] [--seed S] [--height H] [--width W]\n";
    return 2;
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    const cudl::data::DemoDataSummary s = cudl::data::write_demo_data(out, o);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json j = {
        {"impl", "cudl"},       {"images", s.num_images},         {"seconds", secs},
        {"classes", s.classes}, {"class_counts", s.class_counts}, {"csv", s.csv_path}};
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_data_demo: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
