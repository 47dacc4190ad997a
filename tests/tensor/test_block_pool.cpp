// BlockPool, the large-block bookkeeping of the CPU and CUDA allocators, over a fake system
// allocator that counts what it maps and can be made to fail.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "tensor/block_pool.h"

namespace cudl {
namespace {

constexpr size_t MiB = size_t(1) << 20;

struct FakeSystem {
  std::map<void*, size_t> mapped;
  size_t limit = size_t(1) << 40;  // bytes it will hand out in all
  size_t in_use = 0;
  BlockPool pool{MiB,
                 [this](size_t n) -> void* {
                   if (in_use + n > limit) return nullptr;
                   void* p = std::malloc(n);
                   mapped[p] = n;
                   in_use += n;
                   return p;
                 },
                 [this](void* p, size_t n) {
                   EXPECT_EQ(mapped.at(p), n) << "unmapped with another size than mapped";
                   mapped.erase(p);
                   in_use -= n;
                   std::free(p);
                 }};
  ~FakeSystem() {
    for (auto& [p, n] : mapped) std::free(p);
  }
};

TEST(BlockPool, SplitsBestFitAndMergesNeighbours) {
  FakeSystem sys;
  BlockPool& pool = sys.pool;
  BlockPool::Taken big = pool.take(16 * MiB);
  ASSERT_NE(big.ptr, nullptr);
  EXPECT_EQ(pool.num_maps(), 1);
  char* base = static_cast<char*>(big.ptr);
  EXPECT_EQ(pool.give_back(big.ptr), 16 * MiB);
  EXPECT_EQ(pool.free_bytes(), int64_t(16 * MiB));

  BlockPool::Taken a = pool.take(4 * MiB), b = pool.take(6 * MiB), c = pool.take(6 * MiB);
  EXPECT_EQ(pool.num_maps(), 1) << "all three carved from the free 16 MiB";
  EXPECT_EQ(a.ptr, base);
  EXPECT_EQ(b.ptr, base + 4 * MiB);
  EXPECT_EQ(c.ptr, base + 10 * MiB);
  EXPECT_EQ(pool.free_bytes(), 0);

  // Free the middle, then its neighbours: one 16 MiB block again whatever the order.
  pool.give_back(b.ptr);
  EXPECT_NE(pool.take(7 * MiB).ptr, b.ptr) << "a 6 MiB hole does not fit 7 MiB";
  EXPECT_EQ(pool.num_maps(), 2);
  pool.give_back(c.ptr);
  pool.give_back(a.ptr);
  EXPECT_EQ(pool.free_bytes(), int64_t(16 * MiB));
  EXPECT_EQ(pool.take(16 * MiB).ptr, base);
}

TEST(BlockPool, SmallRestStaysWithTheBlock) {
  FakeSystem sys;
  BlockPool::Taken t = sys.pool.take(8 * MiB);
  sys.pool.give_back(t.ptr);
  // 7.5 MiB out of the free 8 MiB: the 0.5 MiB rest is below min_split and goes with the block.
  BlockPool::Taken u = sys.pool.take(7 * MiB + MiB / 2);
  EXPECT_EQ(u.ptr, t.ptr);
  EXPECT_EQ(u.size, 8 * MiB);
  EXPECT_EQ(sys.pool.free_bytes(), 0);
  EXPECT_EQ(sys.pool.give_back(u.ptr), 8 * MiB);
}

TEST(BlockPool, BestFitPrefersTheSmallestBlockThatFits) {
  FakeSystem sys;
  BlockPool& pool = sys.pool;
  void* p8 = pool.take(8 * MiB).ptr;
  void* p3 = pool.take(3 * MiB).ptr;
  void* p5 = pool.take(5 * MiB).ptr;
  pool.give_back(p8);
  pool.give_back(p3);
  pool.give_back(p5);
  EXPECT_EQ(pool.take(4 * MiB).ptr, p5);
  EXPECT_EQ(pool.take(2 * MiB).ptr, p3);
}

TEST(BlockPool, ReleaseGivesBackOnlyWholeFreeSegments) {
  FakeSystem sys;
  BlockPool& pool = sys.pool;
  void* whole = pool.take(4 * MiB).ptr;
  void* part = pool.take(10 * MiB).ptr;
  pool.give_back(whole);
  pool.give_back(part);
  void* inside = pool.take(2 * MiB).ptr;  // best fit: from the 4 MiB segment
  EXPECT_EQ(inside, whole);
  EXPECT_EQ(pool.release_free_segments(), 10 * MiB);
  EXPECT_EQ(pool.reserved_bytes(), int64_t(4 * MiB));
  EXPECT_EQ(pool.num_unmaps(), 1);
  EXPECT_EQ(sys.mapped.size(), 1u);
  pool.give_back(inside);
  EXPECT_EQ(pool.release_free_segments(), 4 * MiB);
  EXPECT_TRUE(sys.mapped.empty());
}

TEST(BlockPool, MappingFailureReleasesFreeSegmentsAndRetries) {
  FakeSystem sys;
  sys.limit = 20 * MiB;
  BlockPool& pool = sys.pool;
  void* a = pool.take(12 * MiB).ptr;
  void* b = pool.take(4 * MiB).ptr;
  pool.give_back(b);  // 4 MiB free, 16 of 20 mapped
  BlockPool::Taken c = pool.take(8 * MiB);  // needs the free 4 MiB segment given back first
  ASSERT_NE(c.ptr, nullptr);
  EXPECT_EQ(pool.num_unmaps(), 1);
  EXPECT_EQ(pool.reserved_bytes(), int64_t(20 * MiB));
  BlockPool::Taken d = pool.take(MiB);  // nothing free, nothing to give back
  EXPECT_EQ(d.ptr, nullptr);
  EXPECT_EQ(pool.give_back(a), 12 * MiB);
  EXPECT_EQ(pool.give_back(a), 0u) << "a block freed twice is refused";
  int x = 0;
  EXPECT_EQ(pool.give_back(&x), 0u) << "a pointer the pool never gave out is refused";
}

// Random takes and frees: blocks never overlap, accounting adds up, and once everything is free
// every segment is one block again.
TEST(BlockPool, RandomUseKeepsBlocksDisjoint) {
  FakeSystem sys;
  BlockPool& pool = sys.pool;
  std::mt19937 rng(11);
  std::map<char*, size_t> live;  // address -> size
  for (int i = 0; i < 3000; ++i) {
    if (!live.empty() && rng() % 2) {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      ASSERT_EQ(pool.give_back(it->first), it->second);
      live.erase(it);
    } else {
      const size_t size = (1 + rng() % 32) * (MiB / 4);
      BlockPool::Taken t = pool.take(size);
      ASSERT_NE(t.ptr, nullptr);
      ASSERT_GE(t.size, size);
      ASSERT_LT(t.size, size + MiB);
      char* p = static_cast<char*>(t.ptr);
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + t.size, next->first) << "overlaps the next block";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second, p) << "overlaps the previous block";
      }
      live[p] = t.size;
    }
    int64_t used = 0;
    for (auto& [p, n] : live) used += static_cast<int64_t>(n);
    ASSERT_EQ(used + pool.free_bytes(), pool.reserved_bytes());
  }
  for (auto& [p, n] : live) pool.give_back(p);
  EXPECT_EQ(pool.free_bytes(), pool.reserved_bytes());
  pool.release_free_segments();
  EXPECT_EQ(pool.reserved_bytes(), 0);
  EXPECT_TRUE(sys.mapped.empty()) << "every segment merged back into one free block";
}

}  // namespace
}  // namespace cudl
