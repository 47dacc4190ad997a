// CPU (and, with a GPU, CUDA) float32 matmul throughput of cudl: C = A @ B with n x n x n.
// Usage: bench_matmul [--n 1024] [--threads T] [--reps 15] [--device cpu|cuda]
// Prints one JSON line: {"impl":"cudl","n":...,"threads":...,"median_s":...,"gflops":...}.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_util.h"

int main(int argc, char** argv) {
  using namespace cudl;
  int64_t n = 1024;
  int threads = get_num_threads(), reps = 15;
  std::string device = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--n") n = std::atoll(argv[i + 1]);
    else if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--reps") reps = std::atoi(argv[i + 1]);
    else if (k == "--device") device = argv[i + 1];
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    set_num_threads(threads);
    Device d = Device::parse(device);
    Generator g(1);
    Tensor a = rand({n, n}, TensorOptions().device(d), &g);
    Tensor b = rand({n, n}, TensorOptions().device(d), &g);
    double s = bench::median_seconds(d, 3, reps, [&] { Tensor c = matmul(a, b); });
    double gflops = 2.0 * n * n * n / s / 1e9;
    nlohmann::json j = {{"impl", "cudl"}, {"device", d.str()}, {"n", n}, {"threads", threads},
                        {"reps", reps}, {"median_s", s}, {"gflops", gflops}};
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_matmul: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
