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

// An arena of `capacity` addresses (a malloc'd range the pool never touches) whose backing is
// counted: commit and decommit must come in order from its base, as the real ones assume.
struct FakeArena {
  explicit FakeArena(size_t capacity) : capacity(capacity) {
    base = static_cast<char*>(std::malloc(capacity));
  }
  ~FakeArena() { std::free(base); }
  BlockPool::Arena arena() {
    BlockPool::Arena a;
    a.base = base;
    a.capacity = capacity;
    a.commit = [this](char* at, size_t n) {
      EXPECT_EQ(at, base + committed) << "commit not at the end of the backed part";
      if (fail_commit) return false;
      committed += n;
      commits++;
      return true;
    };
    a.decommit = [this](char* at, size_t n) {
      EXPECT_EQ(at + n, base + committed) << "decommit not of the end of the backed part";
      committed -= n;
    };
    return a;
  }
  char* base;
  size_t capacity, committed = 0;
  int commits = 0;
  bool fail_commit = false;
};

// Segments from malloc, counted, up to `limit` bytes in all; with an arena of
// `arena_capacity` bytes in front of them when that is not 0.
struct FakeSystem {
  explicit FakeSystem(size_t arena_capacity = 0) : space(arena_capacity) {}
  ~FakeSystem() {
    for (auto& [p, n] : mapped) std::free(p);
  }
  void* map(size_t n) {
    if (in_use + n > limit) return nullptr;
    void* p = std::malloc(n);
    mapped[p] = n;
    in_use += n;
    maps++;
    return p;
  }
  void unmap(void* p, size_t n) {
    EXPECT_EQ(mapped.at(p), n) << "unmapped with another size than mapped";
    mapped.erase(p);
    in_use -= n;
    std::free(p);
  }

  std::map<void*, size_t> mapped;
  size_t limit = size_t(1) << 40;  // bytes it will hand out in all
  size_t in_use = 0;
  int maps = 0;  // segments mapped in all
  FakeArena space;
  BlockPool pool{MiB, [this](size_t n) { return map(n); },
                 [this](void* p, size_t n) { unmap(p, n); },
                 space.capacity ? space.arena() : BlockPool::Arena()};
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

// Blocks that grew the arena one after the other are neighbours: once free they merge into one
// block that serves a request of their joint size, where separate segments cannot.
TEST(BlockPool, ArenaBlocksMergeAcrossGrowths) {
  for (bool with_arena : {false, true}) {
    FakeSystem sys(with_arena ? 64 * MiB : 0);
    BlockPool& pool = sys.pool;
    std::vector<void*> parts;
    for (int i = 0; i < 4; ++i) parts.push_back(pool.take(6 * MiB).ptr);
    for (void* p : parts) pool.give_back(p);
    EXPECT_EQ(pool.num_maps(), 4);
    BlockPool::Taken joint = pool.take(24 * MiB);
    if (with_arena) {
      EXPECT_EQ(joint.ptr, sys.space.base) << "the four free blocks as one";
      EXPECT_EQ(pool.num_maps(), 4);
      EXPECT_EQ(pool.reserved_bytes(), int64_t(24 * MiB));
      EXPECT_EQ(pool.arena_bytes(), int64_t(24 * MiB));
      EXPECT_TRUE(sys.mapped.empty()) << "no segment was needed";
    } else {
      EXPECT_EQ(pool.num_maps(), 5) << "separate segments: a fifth one";
      EXPECT_EQ(pool.reserved_bytes(), int64_t(48 * MiB));
    }
    pool.give_back(joint.ptr);
  }
}

// No free block fits, and the arena's last block is free: it grows into the request.
TEST(BlockPool, ArenaFreeEndGrowsIntoTheRequest) {
  FakeSystem sys(64 * MiB);
  BlockPool& pool = sys.pool;
  void* a = pool.take(4 * MiB).ptr;
  void* b = pool.take(6 * MiB).ptr;
  pool.give_back(b);
  BlockPool::Taken c = pool.take(10 * MiB);
  EXPECT_EQ(c.ptr, b);
  EXPECT_EQ(c.size, 10 * MiB);
  EXPECT_EQ(sys.space.committed, 14 * MiB) << "grown by the 4 MiB the free end lacked";
  EXPECT_EQ(pool.num_maps(), 3);
  EXPECT_EQ(pool.free_bytes(), 0);
  // A free block that fits is still preferred to growing.
  pool.give_back(a);
  EXPECT_EQ(pool.take(3 * MiB).ptr, a);
  EXPECT_EQ(sys.space.committed, 14 * MiB);
}

// release_free_segments gives back the arena's free end only: what lies below a block in use
// stays, and is given back once that block is free too.
TEST(BlockPool, ReleaseShrinksTheArenaFromItsEnd) {
  FakeSystem sys(64 * MiB);
  BlockPool& pool = sys.pool;
  void* a = pool.take(4 * MiB).ptr;
  void* b = pool.take(6 * MiB).ptr;
  void* c = pool.take(8 * MiB).ptr;
  pool.give_back(a);
  pool.give_back(c);
  EXPECT_EQ(pool.release_free_segments(), 8 * MiB);
  EXPECT_EQ(sys.space.committed, 10 * MiB);
  EXPECT_EQ(pool.reserved_bytes(), int64_t(10 * MiB));
  EXPECT_EQ(pool.free_bytes(), int64_t(4 * MiB));
  EXPECT_EQ(pool.num_unmaps(), 1);
  // The end grows again from where it was given back.
  void* d = pool.take(2 * MiB).ptr;
  EXPECT_EQ(d, a) << "best fit: the free 4 MiB below b";
  void* e = pool.take(5 * MiB).ptr;
  EXPECT_EQ(e, static_cast<char*>(b) + 6 * MiB);
  pool.give_back(b);
  pool.give_back(d);
  pool.give_back(e);
  EXPECT_EQ(pool.release_free_segments(), 15 * MiB);
  EXPECT_EQ(sys.space.committed, 0u);
  EXPECT_EQ(pool.reserved_bytes(), 0);
  EXPECT_EQ(pool.free_bytes(), 0);
  EXPECT_EQ(pool.take(MiB).ptr, sys.space.base) << "an empty arena starts at its base again";
}

// When the arena is full, or its memory cannot be backed, requests get segments of their own.
TEST(BlockPool, ArenaThatCannotGrowFallsBackToSegments) {
  FakeSystem sys(16 * MiB);
  BlockPool& pool = sys.pool;
  void* a = pool.take(12 * MiB).ptr;
  BlockPool::Taken b = pool.take(8 * MiB);  // 4 MiB of addresses left: a segment
  ASSERT_NE(b.ptr, nullptr);
  EXPECT_EQ(sys.mapped.count(b.ptr), 1u);
  EXPECT_EQ(pool.reserved_bytes(), int64_t(20 * MiB));
  sys.space.fail_commit = true;
  BlockPool::Taken c = pool.take(2 * MiB);  // fits the addresses, but no memory behind them
  ASSERT_NE(c.ptr, nullptr);
  EXPECT_EQ(sys.mapped.count(c.ptr), 1u);
  pool.give_back(a);
  pool.give_back(b.ptr);
  pool.give_back(c.ptr);
  EXPECT_EQ(pool.release_free_segments(), 22 * MiB);
  EXPECT_TRUE(sys.mapped.empty());
  EXPECT_EQ(sys.space.committed, 0u);
}

// Random takes and frees, and releases now and then: blocks never overlap, accounting adds up,
// and once everything is free every segment is one block again.
void random_use(FakeSystem& sys) {
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
      if (p >= sys.space.base && p < sys.space.base + sys.space.capacity) {
        ASSERT_LE(p + t.size, sys.space.base + sys.space.committed) << "beyond the backed part";
      }
      live[p] = t.size;
    }
    if (i % 100 == 99) pool.release_free_segments();  // shrinks around the blocks in use
    int64_t used = 0;
    for (auto& [p, n] : live) used += static_cast<int64_t>(n);
    ASSERT_EQ(used + pool.free_bytes(), pool.reserved_bytes());
  }
  for (auto& [p, n] : live) pool.give_back(p);
  EXPECT_EQ(pool.free_bytes(), pool.reserved_bytes());
  pool.release_free_segments();
  EXPECT_EQ(pool.reserved_bytes(), 0);
  EXPECT_TRUE(sys.mapped.empty()) << "every segment merged back into one free block";
  EXPECT_EQ(sys.space.committed, 0u) << "the arena merged back into one free block";
}

TEST(BlockPool, RandomUseKeepsBlocksDisjoint) {
  FakeSystem sys;
  random_use(sys);
}

// An arena smaller than the peak: blocks in the arena and in segments side by side.
TEST(BlockPool, RandomUseWithAnArenaKeepsBlocksDisjoint) {
  FakeSystem sys(256 * MiB);
  random_use(sys);
  EXPECT_GT(sys.space.commits, 0);
  EXPECT_GT(sys.maps, 0) << "the arena never filled up: the test misses the mixed case";
}

}  // namespace
}  // namespace cudl
