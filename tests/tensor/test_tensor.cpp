// Tensor core on the CPU: creation, views, copies, printing, errors, memory statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

TEST(Tensor, FactoriesAndItem) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_TRUE(z.device().is_cpu());
  EXPECT_EQ(sum(z).item(), 0.0);
  EXPECT_EQ(sum(ones({4, 5}, kFloat64)).item(), 20.0);
  EXPECT_EQ(full({3}, 2.5).to_vector<float>(), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_EQ(arange(5, kInt64).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1, 2, 0.25).to_vector<float>(), (std::vector<float>{1, 1.25f, 1.5f, 1.75f}));
  EXPECT_EQ(scalar_tensor(7).dim(), 0);
  EXPECT_EQ(scalar_tensor(7).item<int>(), 7);
  EXPECT_THROW(zeros({2}).item(), Error);
  EXPECT_THROW(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
}

TEST(Tensor, ContiguousStridesAndViews) {
  Tensor x = arange(24).reshape({2, 3, 4});
  EXPECT_EQ(x.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(x.is_contiguous());

  Tensor t = x.transpose(0, 2);  // (4, 3, 2)
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage().get(), x.storage().get());  // a view shares the storage
  Tensor tc = t.contiguous();
  EXPECT_TRUE(tc.is_contiguous());
  // element (i, j, k) of t is x[k, j, i] = 12k + 4j + i
  std::vector<float> v = tc.to_vector<float>();
  EXPECT_EQ(v[0 * 6 + 1 * 2 + 1], 12 * 1 + 4 * 1 + 0);
  EXPECT_EQ(v[3 * 6 + 2 * 2 + 0], 0 + 4 * 2 + 3);

  Tensor s = x.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.contiguous().to_vector<float>()[0], 1);
  EXPECT_EQ(s.contiguous().to_vector<float>()[1], 3);
  EXPECT_EQ(x.select(1, -1).shape(), (Shape{2, 4}));
  EXPECT_EQ(x.select(1, -1).contiguous().to_vector<float>()[0], 8);
  EXPECT_EQ(x.permute({2, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(x.reshape({-1, 4}).shape(), (Shape{6, 4}));
  EXPECT_EQ(x.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 2, 3, 4}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(x.unsqueeze(1).squeeze(1).shape(), x.shape());
  EXPECT_EQ(full({3, 1}, 2).expand({3, 4}).strides(), (Shape{1, 0}));

  // writes through a view reach the base
  Tensor base = zeros({2, 2});
  Tensor row = base.select(0, 1);
  row.fill_(5);
  EXPECT_EQ(base.to_vector<float>(), (std::vector<float>{0, 0, 5, 5}));
  // clone does not share
  Tensor c = base.clone();
  c.fill_(1);
  EXPECT_EQ(base.to_vector<float>()[0], 0);
}

TEST(Tensor, ReshapeOfNonContiguousCopies) {
  Tensor x = arange(6).reshape({2, 3});
  Tensor t = x.t();
  EXPECT_THROW(t.view({6}), Error);
  Tensor r = t.reshape({6});
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_THROW(x.reshape({4, -1}), Error);
  EXPECT_THROW(x.reshape({-1, -1}), Error);
}

TEST(Tensor, CopyCastAndBroadcastCopy) {
  Tensor d = from_vector(std::vector<double>{1.5, -2.25, 3}, {3});
  Tensor f = d.to(kFloat32);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3.f}));
  EXPECT_EQ(d.to(kInt64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  Tensor dst = zeros({2, 3});
  dst.copy_(f);  // broadcast (3) -> (2, 3)
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3, 1.5f, -2.25f, 3}));
  EXPECT_THROW(dst.copy_(zeros({4})), Error);
}

TEST(Tensor, PrintingLooksLikePyTorch) {
  Tensor x = from_vector(std::vector<float>{1, 2.5f, -3, 4}, {2, 2});
  EXPECT_EQ(x.to_string(), "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])");
  EXPECT_EQ(arange(3, kInt64).to_string(), "tensor([0, 1, 2], dtype=int64)");
  Tensor big = zeros({2000});
  EXPECT_NE(big.to_string().find("..."), std::string::npos);
  Tensor w = ones({2}).set_requires_grad();
  EXPECT_NE(w.to_string().find("requires_grad=True"), std::string::npos);
  EXPECT_NE((w * 2.0).to_string().find("grad_fn=<MulScalarBackward>"), std::string::npos);
}

TEST(Tensor, ClearErrors) {
  try {
    add(zeros({2, 3}), zeros({4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3) and (4,) cannot be broadcast"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(".cpp:"), std::string::npos) << "no file:line in " << e.what();
  }
  try {
    matmul(zeros({2, 3}), zeros({4, 5}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inner dimensions differ: (2, 3) @ (4, 5)"), std::string::npos);
  }
  EXPECT_THROW(add(zeros({2}), zeros({2}, kFloat64)), Error);
  EXPECT_THROW(zeros({2}).transpose(0, 3), Error);
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_THROW(Tensor().shape(), Error);
}

TEST(Device, ParseAndBest) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  if (cuda_device_count() == 0) {
    EXPECT_TRUE(Device::best().is_cpu());
    EXPECT_EQ(Device::parse("auto"), Device::cpu());
    try {
      Device::parse("cuda:0");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos);
    }
    EXPECT_FALSE(cuda_unavailable_reason().empty());
  } else {
    EXPECT_TRUE(Device::best().is_cuda());
  }
}

TEST(Random, SameSeedSameNumbersAndSensibleMoments) {
  Generator g1(42), g2(42);
  Tensor a = rand({1000}, {}, &g1), b = rand({1000}, {}, &g2);
  EXPECT_TRUE(all_close(a, b, 0, 0));
  Tensor c = rand({1000}, {}, &g1);  // the stream moved on
  EXPECT_FALSE(all_close(a, c, 0, 0));
  EXPECT_NEAR(mean(a).item(), 0.5, 0.03);
  EXPECT_GE(a.to_vector<float>()[0], 0.0f);
  Generator g3(7);
  Tensor n = randn({20000}, kFloat64, &g3);
  EXPECT_NEAR(mean(n).item(), 0.0, 0.03);
  EXPECT_NEAR(mean(n * n).item(), 1.0, 0.05);
  // An odd count draws whole blocks of 4: the next draw starts on a fresh block.
  Generator g4(1);
  rand({5}, {}, &g4);
  EXPECT_EQ(g4.offset(), 2u);
}

TEST(Memory, CpuStatsTrackLiveBytes) {
  int64_t before = memory_stats(Device::cpu()).allocated_bytes;
  {
    Tensor t = empty({1000}, kFloat64);
    EXPECT_EQ(memory_stats(Device::cpu()).allocated_bytes, before + 8000);
  }
  EXPECT_EQ(memory_stats(Device::cpu()).allocated_bytes, before);
}

// Large CPU blocks are cached: freeing one and asking for the same size again reuses it (no new
// system allocation, reserved bytes unchanged, the same address); a different size gets a new
// block; empty_cache gives the cached ones back (reserved falls to what live tensors hold).
TEST(Memory, CpuCacheReusesLargeBlocks) {
  if (const char* env = std::getenv("CUDL_CPU_CACHE"); env && std::string(env) == "0")
    GTEST_SKIP() << "CUDL_CPU_CACHE=0 turns the CPU cache off";
  const Device cpu = Device::cpu();
  empty_cache(cpu);
  const MemoryStats start = memory_stats(cpu);
  EXPECT_GE(start.reserved_bytes, start.allocated_bytes);
  const void* first = nullptr;
  {
    Tensor t = empty({1 << 20});  // 4 MiB
    first = t.data_ptr();
  }
  const MemoryStats freed = memory_stats(cpu);
  EXPECT_EQ(freed.allocated_bytes, start.allocated_bytes);
  EXPECT_EQ(freed.reserved_bytes, start.reserved_bytes + (4 << 20)) << "the block stays cached";
  {
    Tensor again = empty({1 << 20});
    EXPECT_EQ(again.data_ptr(), first);
    EXPECT_EQ(memory_stats(cpu).num_device_allocs, freed.num_device_allocs);
    Tensor other = empty({(1 << 20) + (1 << 15)});  // 4.125 MiB: another size class
    EXPECT_NE(other.data_ptr(), first);
    EXPECT_EQ(memory_stats(cpu).num_device_allocs, freed.num_device_allocs + 1);
  }
  empty_cache(cpu);
  EXPECT_EQ(memory_stats(cpu).reserved_bytes, start.reserved_bytes);
}

// A freed large block serves smaller requests of other sizes (split, no new system memory);
// freed neighbours merge back into one block that serves the original size again; empty_cache
// unmaps only segments that are entirely free.
TEST(Memory, CpuBlocksSplitAndMerge) {
  if (const char* env = std::getenv("CUDL_CPU_CACHE"); env && std::string(env) == "0")
    GTEST_SKIP() << "CUDL_CPU_CACHE=0 turns the CPU cache off";
  const Device cpu = Device::cpu();
  empty_cache(cpu);
  const MemoryStats start = memory_stats(cpu);
  const char* base = nullptr;
  { Tensor big = empty({4 << 20}); base = static_cast<const char*>(big.data_ptr()); }  // 16 MiB
  const MemoryStats one = memory_stats(cpu);
  EXPECT_EQ(one.num_device_allocs, start.num_device_allocs + 1);
  {
    Tensor a = empty({1 << 20});          // 4 MiB
    Tensor b = empty({(3 << 20) / 2});    // 6 MiB
    Tensor c = empty({(3 << 20) / 2});    // 6 MiB: the rest exactly
    EXPECT_EQ(memory_stats(cpu).num_device_allocs, one.num_device_allocs) << "carved from the 16 MiB";
    EXPECT_EQ(memory_stats(cpu).reserved_bytes, one.reserved_bytes);
    std::vector<const char*> starts = {static_cast<const char*>(a.data_ptr()),
                                       static_cast<const char*>(b.data_ptr()),
                                       static_cast<const char*>(c.data_ptr())};
    std::sort(starts.begin(), starts.end());
    EXPECT_EQ(starts[0], base);
    EXPECT_EQ(starts[1], base + (4 << 20));
    EXPECT_EQ(starts[2], base + (10 << 20));
    Tensor d = empty({1 << 18});  // 1 MiB more: nothing free, the arena grows
    EXPECT_EQ(memory_stats(cpu).num_device_allocs, one.num_device_allocs + 1);
    EXPECT_EQ(static_cast<const char*>(d.data_ptr()), base + (16 << 20)) << "right above c";
  }
  {
    Tensor whole = empty({(17 << 20) / 4});
    EXPECT_EQ(whole.data_ptr(), base) << "the four pieces merged back into one block";
  }
  empty_cache(cpu);
  EXPECT_EQ(memory_stats(cpu).reserved_bytes, start.reserved_bytes);
  // empty_cache gives back the free end of the arena, not what lies below a block in use.
  { Tensor big = empty({4 << 20}); }
  Tensor keep = empty({1 << 20});  // the first 4 MiB of the free 16 MiB
  EXPECT_EQ(keep.data_ptr(), base);
  const MemoryStats part = memory_stats(cpu);
  empty_cache(cpu);
  EXPECT_EQ(memory_stats(cpu).reserved_bytes, part.reserved_bytes - (12 << 20));
  Tensor rest = empty({3 << 20});  // 12 MiB again: the arena grows right above `keep`
  EXPECT_EQ(static_cast<const char*>(rest.data_ptr()), base + (4 << 20));
  EXPECT_EQ(memory_stats(cpu).reserved_bytes, part.reserved_bytes);
}

// Random sizes allocated and freed in random order: every live block keeps its own contents
// (no two blocks overlap), and in the end everything is free again.
TEST(Memory, CpuBlocksNeverOverlap) {
  const Device cpu = Device::cpu();
  const int64_t allocated_before = memory_stats(cpu).allocated_bytes;
  std::mt19937 rng(5);
  std::vector<std::pair<Tensor, float>> live;
  for (int i = 0; i < 600; ++i) {
    if (!live.empty() && rng() % 5 < 2) {
      const size_t k = rng() % live.size();
      const auto& [t, v] = live[k];
      const float* p = t.data<float>();
      const int64_t n = t.numel();
      ASSERT_EQ(p[0], v);
      ASSERT_EQ(p[n / 2], v);
      ASSERT_EQ(p[n - 1], v);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
      continue;
    }
    const int64_t n = (int64_t(1) << 18) + static_cast<int64_t>(rng() % (3u << 20));  // 1-13 MiB
    Tensor t = empty({n});
    const float v = static_cast<float>(i);
    std::fill(t.data<float>(), t.data<float>() + n, v);
    live.emplace_back(t, v);
  }
  for (const auto& [t, v] : live) {
    const float* p = t.data<float>();
    ASSERT_EQ(p[0], v);
    ASSERT_EQ(p[t.numel() - 1], v);
  }
  live.clear();
  EXPECT_EQ(memory_stats(cpu).allocated_bytes, allocated_before);
  empty_cache(cpu);
}

TEST(Memory, WatchedPeakLeavesTheReportedPeaksAlone) {
  const Device cpu = Device::cpu();
  Tensor keep = empty({1 << 20});  // 4 MiB, live throughout
  reset_peak_memory_stats(cpu);
  { Tensor big = empty({4 << 20}); }  // 16 MiB: the reported peak
  const MemoryStats s0 = memory_stats(cpu);
  watch_peak_allocated(cpu);
  EXPECT_EQ(watched_peak_allocated(cpu), s0.allocated_bytes);
  {
    Tensor a = empty({2 << 20}), b = empty({1 << 20});  // 12 MiB at once
  }
  { Tensor c = empty({1 << 20}); }
  EXPECT_EQ(watched_peak_allocated(cpu), s0.allocated_bytes + (12 << 20));
  EXPECT_EQ(memory_stats(cpu).peak_allocated_bytes, s0.peak_allocated_bytes) << "not reset";
  watch_peak_allocated(cpu);  // starts again at what is allocated now
  EXPECT_EQ(watched_peak_allocated(cpu), memory_stats(cpu).allocated_bytes);
}

// set_alloc_trace: a line per storage allocated and freed, "<device> a|f <bytes> <address>",
// until it is stopped; an unwritable path is refused.
TEST(Memory, AllocationTraceNamesEveryStorage) {
  const std::string path = ::testing::TempDir() + "cudl_alloc_trace.txt";
  set_alloc_trace(path);
  const void* where = nullptr;
  {
    Tensor t = empty({1 << 20});  // 4 MiB
    where = t.data_ptr();
  }
  set_alloc_trace("");
  { Tensor after = empty({100}); }  // not traced
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  char address[32];
  std::snprintf(address, sizeof address, "%p", where);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], std::string("cpu a 4194304 ") + address);
  EXPECT_EQ(lines[1], std::string("cpu f 4194304 ") + address);
  EXPECT_THROW(set_alloc_trace("/nonexistent-dir/trace.txt"), Error);
  std::remove(path.c_str());
}

TEST(Threads, SetAndGet) {
  int n = get_num_threads();
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  Tensor x = rand({100000});
  double s1 = sum(x).item();
  set_num_threads(n);
  EXPECT_NEAR(sum(x).item(), s1, 1e-3);
}

// float32 sums accumulate in double and round once: 2^24 + 1 ones, then -2^24, is 1. A float
// accumulator stops at 2^24 (2^24 + 1 is not a float) and would give 0. A whole tensor, a row
// and columns.
TEST(Reduce, FloatSumsAccumulateInDouble) {
  const int64_t n = (int64_t(1) << 24) + 2;
  Tensor x = ones({n});
  x.data<float>()[n - 1] = -16777216.0f;
  EXPECT_EQ(sum(x).item(), 1.0);
  EXPECT_EQ(sum(x.reshape({1, n}), {1}).item(), 1.0);
  Tensor wide = ones({n, 2});  // columns: outputs 2, each a walk of n elements
  wide.select(0, n - 1).fill_(-16777216.0);
  EXPECT_EQ(sum(wide, {0}).to_vector<float>(), (std::vector<float>{1.0f, 1.0f}));
}

TEST(Matmul, SizeOneDimensionsWithAnyStride) {
  // (1, k) and (k, 1) views whose size-1 dimension has stride 0 (from expand): the BLAS must
  // get a valid leading dimension, and the result must equal that of contiguous copies.
  Tensor v = from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  Tensor row = v.expand({1, 4});  // strides (0, 1)
  Tensor col = row.t();           // strides (1, 0)
  ASSERT_EQ(row.stride(0), 0);
  ASSERT_EQ(col.stride(1), 0);
  Tensor m = from_vector(std::vector<float>{1, 0, 2, 1, 0, 3, 1, 1}, {4, 2});
  Tensor m2 = from_vector(std::vector<float>{2, 1, 1, 0}, {1, 4});
  EXPECT_TRUE(testing::all_close(matmul(row, m), matmul(row.contiguous().clone(), m), 0, 0));
  EXPECT_TRUE(testing::all_close(matmul(col, m2), matmul(col.contiguous().clone(), m2), 0, 0));
  EXPECT_TRUE(testing::all_close(matmul(row, col), full({1, 1}, 30.0), 0, 0));
}

}  // namespace
}  // namespace cudl
