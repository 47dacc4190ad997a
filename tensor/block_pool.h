// BlockPool: the bookkeeping shared by cudl's CPU and CUDA allocators for large blocks.
//
// Memory comes from the system in segments (mmap on the CPU, cudaMalloc on a GPU) that are kept
// and carved into blocks. A request takes the smallest free block that fits (best fit) and
// splits off the rest when that is at least `min_split` bytes; a freed block merges with its
// free neighbours in the segment; release_free_segments() gives back the segments that are
// entirely free. Memory freed by one phase of a training step thus serves requests of other
// sizes in the next, and what is reserved stays near the peak of live bytes.
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

  BlockPool(size_t min_split, MapFn map, UnmapFn unmap);
  ~BlockPool();  // leaves the segments mapped: the owners of the memory may outlive the pool
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  struct Taken {
    void* ptr = nullptr;  // null: no free block fits and mapping a segment failed twice
    size_t size = 0;      // the block's size: `size` asked, or up to min_split - 1 more
  };
  // A block of at least `size` bytes (a multiple of the caller's granule): a free one when one
  // fits, else a new segment of `size` bytes. When mapping fails and `may_release`, the entirely
  // free segments are given back and mapping is tried once more.
  Taken take(size_t size, bool may_release = true);
  // Frees the block at `ptr` (from take()); returns its size, or 0 when `ptr` is not a block of
  // this pool in use (nothing is changed then).
  size_t give_back(void* ptr);
  // Unmaps every segment that is one free block; returns the bytes given back.
  size_t release_free_segments();

  int64_t reserved_bytes() const { return reserved_; }  // in segments
  int64_t free_bytes() const { return free_; }          // in free blocks
  int64_t num_maps() const { return maps_; }
  int64_t num_unmaps() const { return unmaps_; }

 private:
  struct Block {
    char* addr;
    size_t size;
    bool free;
    Block* prev;  // neighbours in address order within the segment; both null: the whole
    Block* next;  // segment
  };
  static uintptr_t key(const Block* b) { return reinterpret_cast<uintptr_t>(b->addr); }
  Block* block_at(uintptr_t addr) const;
  void absorb_next(Block* left);

  size_t min_split_;
  MapFn map_;
  UnmapFn unmap_;
  std::unordered_map<uintptr_t, Block*> blocks_;      // every block, by address
  std::set<std::pair<size_t, uintptr_t>> free_set_;  // (size, address) of the free ones
  int64_t reserved_ = 0, free_ = 0, maps_ = 0, unmaps_ = 0;
};

}  // namespace cudl
