// No allocation churn on the CPU: after one warm-up step, repeated forward+backward steps of a
// conv-BN-ReLU stack free everything they allocate (live bytes return to the same value after
// every step) and need no more memory at their peak than the second step did. The CUDA twin of
// this test (no new cudaMalloc after warm-up) is in test_cuda.cpp.
#include <gtest/gtest.h>

#include "layers/layers.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

std::shared_ptr<Sequential> stack() {
  return sequential({std::make_shared<Conv2d>(3, 16, 3, Conv2dOptions().padding(1).bias(false)),
                     std::make_shared<BatchNorm2d>(16), std::make_shared<ReLU>(),
                     std::make_shared<Conv2d>(16, 16, 3, Conv2dOptions().stride(2).padding(1)),
                     std::make_shared<BatchNorm2d>(16), std::make_shared<ReLU>(),
                     std::make_shared<MaxPool2d>(3, 2, 1)});
}

TEST(Memory, CpuStepsDoNotGrow) {
  const Device cpu = Device::cpu();
  auto m = stack();
  Tensor x = rand({4, 3, 32, 32});
  auto step = [&] {
    m->zero_grad();
    Tensor y = (*m)(x);
    sum(y).backward();
  };
  step();  // warm-up: gradients now exist
  const int64_t live = memory_stats(cpu).allocated_bytes;
  reset_peak_memory_stats(cpu);
  step();
  const int64_t peak = memory_stats(cpu).peak_allocated_bytes;
  EXPECT_EQ(memory_stats(cpu).allocated_bytes, live);
  EXPECT_GT(peak, live) << "a step must allocate activations";
  for (int i = 0; i < 5; ++i) {
    reset_peak_memory_stats(cpu);
    step();
    EXPECT_EQ(memory_stats(cpu).allocated_bytes, live) << "step " << i << " leaked";
    EXPECT_EQ(memory_stats(cpu).peak_allocated_bytes, peak) << "step " << i << " peak grew";
  }
}

}  // namespace
}  // namespace cudl
