// CudaGraph (tensor/graph.h) and the caching allocator's graph pools: capture runs nothing,
// replays run the recorded kernels on the data then in the captured tensors, random draws are
// fresh at every replay and equal to eager draws, what would break a replay is refused with a
// clear error, and a graph's memory is never handed to other tensors while it lives. CUDA only:
// every test skips with its reason without a GPU. The CPU build's CudaGraph says it needs CUDA.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/graph.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

const Device kGpu = Device::cuda(0);

Tensor rnd(const Shape& s, uint64_t seed) {
  Generator g(seed);
  Tensor t = empty(s, kFloat32);
  return uniform_(t, -2, 2, &g);
}

TEST(CudaGraphCpu, NeedsACudaDevice) {
  EXPECT_ERROR_HAS(CudaGraph g(Device::cpu()), "CUDA");
  EXPECT_FALSE(is_capturing(Device::cpu()));
}

TEST(CudaGraph, ReplaysTheRecordedWorkOnNewInputs) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor x = rnd({1000}, 1).to(kGpu);
  Tensor y;
  CudaGraph g(kGpu);
  g.capture([&] { y = add(mul(x, x), full({}, 1.0, TensorOptions().device(kGpu))); });
  EXPECT_TRUE(g.captured());
  for (uint64_t seed : {2, 3, 4}) {
    Tensor xc = rnd({1000}, seed);
    x.copy_(xc);
    g.replay();
    EXPECT_TRUE(all_close(y.to(Device::cpu()), add(mul(xc, xc), full({}, 1.0)), 1e-6, 1e-6));
  }
}

TEST(CudaGraph, RandomDrawsAreFreshAtEveryReplayAndEqualEagerDraws) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Generator captured(7), eager(7);
  Tensor t = empty({4099}, TensorOptions().device(kGpu));
  CudaGraph g(kGpu);
  g.capture([&] { uniform_(t, -1, 1, &captured); }, {&captured});
  EXPECT_EQ(captured.offset(), 0u) << "a capture draws nothing";
  Tensor previous;
  for (int i = 0; i < 3; ++i) {
    g.replay();
    Tensor e = empty({4099}, TensorOptions().device(kGpu));
    uniform_(e, -1, 1, &eager);
    Tensor got = t.to(Device::cpu());
    EXPECT_TRUE(all_close(got, e.to(Device::cpu()), 0, 0)) << "replay " << i;
    if (previous.defined()) {
      EXPECT_FALSE(all_close(got, previous, 0, 0)) << "numbers repeat";
    }
    previous = got;
  }
  EXPECT_EQ(captured.offset(), eager.offset());
}

TEST(CudaGraph, DrawOnAGeneratorNotGivenIsRefused) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Generator other(1);
  Tensor t = empty({16}, TensorOptions().device(kGpu));
  CudaGraph g(kGpu);
  EXPECT_ERROR_HAS(g.capture([&] { uniform_(t, 0, 1, &other); }), "not given to CudaGraph::capture");
  EXPECT_FALSE(g.captured());
  EXPECT_FALSE(is_capturing(kGpu));
  EXPECT_EQ(sum(ones({10}, TensorOptions().device(kGpu))).item(), 10.0) << "the stream still works";
}

TEST(CudaGraph, WaitingForTheDeviceInsideACaptureFailsClearly) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor x = ones({8}, TensorOptions().device(kGpu));
  CudaGraph g(kGpu);
  EXPECT_THROW(g.capture([&] { (void)sum(x).item(); }), Error);
  EXPECT_FALSE(g.captured());
  EXPECT_FALSE(is_capturing(kGpu));
  EXPECT_EQ(sum(x).item(), 8.0) << "the stream still works after a failed capture";
}

TEST(CudaGraph, ItsMemoryIsNeverHandedToOtherTensors) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor x = rnd({1 << 20}, 5).to(kGpu);  // 4 MiB: the large-block path
  std::set<const void*> recorded;
  Tensor out;
  const int64_t reserved_before = memory_stats(kGpu).reserved_bytes;
  {
    CudaGraph g(kGpu);
    g.capture([&] {
      for (int i = 0; i < 4; ++i) {  // temporaries freed inside the capture, small and large
        Tensor a = mul(x, x), b = add(a, x), s = sum(b, {0});
        recorded.insert({a.data_ptr(), b.data_ptr(), s.data_ptr()});
      }
      out = add(x, x);
      recorded.insert(out.data_ptr());
    });
    // Eager tensors of the same sizes must land elsewhere.
    for (int i = 0; i < 8; ++i) {
      Tensor a = mul(x, x), s = sum(a, {0});
      EXPECT_EQ(recorded.count(a.data_ptr()), 0u);
      EXPECT_EQ(recorded.count(s.data_ptr()), 0u);
    }
    g.replay();
    EXPECT_TRUE(all_close(out.to(Device::cpu()), mul(x.to(Device::cpu()), full({}, 2.0)), 0, 0));
    EXPECT_GT(memory_stats(kGpu).reserved_bytes, reserved_before);
  }
  out = Tensor();  // the graph's last block: its pool is freed now
  empty_cache(kGpu);
  EXPECT_LE(memory_stats(kGpu).reserved_bytes, reserved_before);
}

TEST(CudaGraph, TensorsFreedDuringTheCaptureAreHeldBackUntilTheGraphGoes) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  Tensor x = rnd({1 << 20}, 6).to(kGpu);
  empty_cache(kGpu);
  const int64_t reserved_at_start = memory_stats(kGpu).reserved_bytes;
  Tensor before = mul(x, x);  // made eagerly, last used (and freed) inside the capture
  const void* held = before.data_ptr();
  Tensor out;
  {
    CudaGraph g(kGpu);
    g.capture([&] {
      out = add(before, x);
      before = Tensor();
    });
    for (int i = 0; i < 8; ++i) {
      Tensor t = mul(x, x);
      EXPECT_NE(t.data_ptr(), held) << "a block the graph reads was handed out again";
    }
    g.replay();
    Tensor xc = x.to(Device::cpu());
    EXPECT_TRUE(all_close(out.to(Device::cpu()), add(mul(xc, xc), xc), 1e-6, 1e-6));
  }
  out = Tensor();
  // The held-back block went back to the main cache with the graph: nothing stays reserved.
  empty_cache(kGpu);
  EXPECT_LE(memory_stats(kGpu).reserved_bytes, reserved_at_start);
}

// A pool reserved for the capture's peak: its large blocks are carved from one segment, so
// blocks freed during the capture merge and serve a larger request. With a segment per
// request, the joint block needs a fifth cudaMalloc.
TEST(CudaGraph, AReservedPoolHoldsTheCaptureInOneSegment) {
  CUDL_REQUIRE_CUDA_OR_SKIP();
  const TensorOptions on_gpu = TensorOptions().device(kGpu);
  for (size_t reserve : {size_t(0), size_t(24) << 20}) {
    empty_cache(kGpu);
    const int64_t allocs_before = memory_stats(kGpu).num_device_allocs;
    Tensor out;
    {
      CudaGraph g(kGpu);
      g.capture(
          [&] {
            std::vector<Tensor> parts;  // 4 x 6 MiB, freed inside the capture
            for (int i = 0; i < 4; ++i) parts.push_back(full({(6 << 20) / 4}, 1.0, on_gpu));
            parts.clear();
            out = full({(24 << 20) / 4}, 2.0, on_gpu);  // 24 MiB
          },
          {}, reserve);
      const int64_t allocs = memory_stats(kGpu).num_device_allocs - allocs_before;
      if (reserve) {
        EXPECT_EQ(allocs, 1) << "the reserved segment held all five blocks";
      } else {
        EXPECT_EQ(allocs, 5) << "a segment per request: the freed 6 MiB blocks cannot merge";
      }
      g.replay();
      EXPECT_EQ(sum(out).item(), 2.0 * (6 << 20));
    }
    out = Tensor();
  }
  empty_cache(kGpu);
}

}  // namespace
}  // namespace cudl
