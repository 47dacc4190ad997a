// No allocation churn on the CPU: after one warm-up step, repeated forward+backward steps of a
// conv-BN-ReLU stack free everything they allocate (live bytes return to the same value after
// every step) and need no more memory at their peak than the second step did. The CUDA twin of
// this test (no new cudaMalloc after warm-up) is in test_cuda.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

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

// The CPU allocator (large blocks carved from its reused arena) reaches a steady state after one
// warm-up step: no growth and the same reserved bytes at the end of every later step, with
// activations well above the 1 MiB where segments start (the same stack as the CUDA twin, on
// inputs of 8 x 3 x 64x64: 2 MiB per 16-channel map).
TEST(Memory, CpuStepsNeedNoNewSystemMemory) {
  if (const char* env = std::getenv("CUDL_CPU_CACHE"); env && std::string(env) == "0")
    GTEST_SKIP() << "CUDL_CPU_CACHE=0 turns the CPU cache off";
  const Device cpu = Device::cpu();
  empty_cache(cpu);
  auto m = stack();
  Tensor x = rand({8, 3, 64, 64});
  auto step = [&] {
    m->zero_grad();
    sum((*m)(x)).backward();
  };
  step();  // warm-up
  const MemoryStats before = memory_stats(cpu);
  for (int i = 0; i < 5; ++i) {
    step();
    EXPECT_EQ(memory_stats(cpu).reserved_bytes, before.reserved_bytes) << "step " << i;
  }
  const MemoryStats after = memory_stats(cpu);
  // Small blocks (< 1 MiB) go to malloc and back every step, so num_device_allocs grows; large
  // ones are only ever given back by empty_cache, so equal reserved bytes at the end of every
  // step mean the arena did not grow and no segment was mapped.
  EXPECT_GT(before.reserved_bytes, 4 << 20) << "the activations must come from the arena";
  EXPECT_GT(after.num_alloc_requests, before.num_alloc_requests) << "the steps must allocate";
}

}  // namespace
}  // namespace cudl
