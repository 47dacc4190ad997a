// BlockPool: the bookkeeping shared by cudl's CPU and CUDA allocators for large blocks.
//
// A request takes the smallest free block that fits (best fit) and splits off the rest when that
// is at least `min_split` bytes; a freed block merges with its free neighbours. Memory freed by
// one phase of a training step thus serves requests of other sizes in the next.
//
// Where the blocks live:
// - An arena, when the owner gives one: a reserved range of addresses whose first bytes are
//   backed by memory, grown at its end on demand (commit) and shrunk when its tail is free
//   (decommit). Its blocks are neighbours in one address range, so any free neighbours merge,
//   and when no free block fits, a free block at the end grows into the request. What stays
//   backed is close to the peak of live bytes. (Separate segments could not merge: in a ResNet
//   step the backward pass asks for a 784 MiB gradient while four free 196 MiB blocks sit in
//   four segments, and a new segment was mapped beside them, 18% above the live peak.)
// - Segments mapped from the system one per request (mmap on the CPU, cudaMalloc on a GPU):
//   without an arena, or when it cannot grow. release_free_segments() gives back the segments
//   that are entirely free and the arena's free tail.
//
// Not thread-safe: the allocators call it under their own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>

namespace cudl {

class BlockPool {
 public:
  // map(n): n bytes of fresh memory, or null when there is none. unmap(p, n) gives it back.
  using MapFn = std::function<void*(size_t)>;
  using UnmapFn = std::function<void(void*, size_t)>;
  // A reserved range [base, base + capacity) of addresses. commit(at, n) backs [at, at + n)
  // with memory (false: it could not); decommit(at, n) gives that memory back. Both are called
  // with consecutive ranges from base on: the backed part is always [base, base + committed).
  struct Arena {
    char* base = nullptr;
    size_t capacity = 0;
    std::function<bool(char*, size_t)> commit;
    std::function<void(char*, size_t)> decommit;
  };

  BlockPool(size_t min_split, MapFn map, UnmapFn unmap);  // segments only
  BlockPool(size_t min_split, MapFn map, UnmapFn unmap, Arena arena);
  ~BlockPool();  // leaves the segments mapped: the owners of the memory may outlive the pool
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  struct Taken {
    void* ptr = nullptr;  // null: no free block fits and mapping a segment failed twice
    size_t size = 0;      // the block's size: `size` asked, or up to min_split - 1 more
  };
  // A block of at least `size` bytes (a multiple of the caller's granule): a free one when one
  // fits, else the arena's end grown to fit, else a new segment of `size` bytes. When mapping
  // fails and `may_release`, the entirely free segments are given back and mapping is tried
  // once more.
  Taken take(size_t size, bool may_release = true);
  // Frees the block at `ptr` (from take()); returns its size, or 0 when `ptr` is not a block of
  // this pool in use (nothing is changed then).
  size_t give_back(void* ptr);
  // Unmaps every segment that is one free block and decommits the arena's free tail; returns
  // the bytes given back.
  size_t release_free_segments();

  int64_t reserved_bytes() const { return reserved_; }  // in segments and the arena's backing
  int64_t free_bytes() const { return free_; }          // in free blocks
  int64_t arena_bytes() const { return static_cast<int64_t>(committed_); }
  int64_t num_maps() const { return maps_; }      // segments mapped and arena growths
  int64_t num_unmaps() const { return unmaps_; }  // segments unmapped and arena shrinks

 private:
  struct Block {
    char* addr;
    size_t size;
    bool free;
    Block* prev;  // neighbours in address order within the segment or the arena; both null
    Block* next;  // outside the arena: the whole segment
  };
  static uintptr_t key(const Block* b) { return reinterpret_cast<uintptr_t>(b->addr); }
  Block* block_at(uintptr_t addr) const;
  void absorb_next(Block* left);
  bool in_arena(const Block* b) const {
    return arena_.base && b->addr >= arena_.base && b->addr < arena_.base + arena_.capacity;
  }
  Block* grow_arena(size_t size);   // null when the arena cannot hold `size` more at its end
  size_t shrink_arena();            // decommits the arena's last block when it is free

  size_t min_split_;
  MapFn map_;
  UnmapFn unmap_;
  Arena arena_;
  size_t committed_ = 0;      // bytes backed from arena_.base on
  Block* arena_last_ = nullptr;  // the arena's block at its end, null when it is empty
  std::unordered_map<uintptr_t, Block*> blocks_;      // every block, by address
  std::set<std::pair<size_t, uintptr_t>> free_set_;  // (size, address) of the free ones
  int64_t reserved_ = 0, free_ = 0, maps_ = 0, unmaps_ = 0;
};

}  // namespace cudl
