#include "tensor/block_pool.h"

#include <utility>

namespace cudl {

BlockPool::BlockPool(size_t min_split, MapFn map, UnmapFn unmap)
    : BlockPool(min_split, std::move(map), std::move(unmap), Arena()) {}

BlockPool::BlockPool(size_t min_split, MapFn map, UnmapFn unmap, Arena arena)
    : min_split_(min_split), map_(std::move(map)), unmap_(std::move(unmap)),
      arena_(std::move(arena)) {}

BlockPool::~BlockPool() {
  for (auto& [addr, b] : blocks_) delete b;
}

BlockPool::Block* BlockPool::block_at(uintptr_t addr) const {
  auto it = blocks_.find(addr);
  return it == blocks_.end() ? nullptr : it->second;
}

BlockPool::Taken BlockPool::take(size_t size, bool may_release) {
  auto it = free_set_.lower_bound({size, 0});
  if (it != free_set_.end()) {
    Block* b = block_at(it->second);
    free_set_.erase(it);
    if (b->size - size >= min_split_) {
      auto* rest = new Block{b->addr + size, b->size - size, true, b, b->next};
      if (b->next) b->next->prev = rest;
      b->next = rest;
      b->size = size;
      if (arena_last_ == b) arena_last_ = rest;
      blocks_.emplace(key(rest), rest);
      free_set_.emplace(rest->size, key(rest));
    }
    free_ -= static_cast<int64_t>(b->size);
    b->free = false;
    return {b->addr, b->size};
  }
  if (Block* b = grow_arena(size)) return {b->addr, b->size};
  void* p = map_(size);
  if (!p) {
    if (!may_release) return {};
    release_free_segments();
    p = map_(size);
    if (!p) return {};
  }
  auto* b = new Block{static_cast<char*>(p), size, false, nullptr, nullptr};
  blocks_.emplace(key(b), b);
  reserved_ += static_cast<int64_t>(size);
  maps_++;
  return {b->addr, b->size};
}

// No free block fits: the arena's end grows by what `size` needs beyond its last block when
// that is free (the block then grows), else by `size` (a new last block).
BlockPool::Block* BlockPool::grow_arena(size_t size) {
  if (!arena_.base) return nullptr;
  Block* last = arena_last_ && arena_last_->free ? arena_last_ : nullptr;
  const size_t have = last ? last->size : 0;  // < size, or best fit would have taken it
  const size_t need = size - have;
  if (need > arena_.capacity - committed_ || !arena_.commit(arena_.base + committed_, need))
    return nullptr;
  committed_ += need;
  reserved_ += static_cast<int64_t>(need);
  maps_++;
  if (last) {
    free_set_.erase({last->size, key(last)});
    free_ -= static_cast<int64_t>(last->size);
    last->size = size;
    last->free = false;
    return last;
  }
  auto* b = new Block{arena_.base + committed_ - size, size, false, arena_last_, nullptr};
  if (arena_last_) arena_last_->next = b;
  arena_last_ = b;
  blocks_.emplace(key(b), b);
  return b;
}

size_t BlockPool::shrink_arena() {
  Block* last = arena_last_;
  if (!last || !last->free) return 0;
  const size_t size = last->size;
  arena_.decommit(last->addr, size);
  committed_ -= size;
  reserved_ -= static_cast<int64_t>(size);
  free_ -= static_cast<int64_t>(size);
  unmaps_++;
  free_set_.erase({size, key(last)});
  arena_last_ = last->prev;  // in use: a free one would have merged with `last`
  if (arena_last_) arena_last_->next = nullptr;
  blocks_.erase(key(last));
  delete last;
  return size;
}

// left and left->next are both free: one block.
void BlockPool::absorb_next(Block* left) {
  Block* right = left->next;
  if (arena_last_ == right) arena_last_ = left;
  free_set_.erase({right->size, key(right)});
  left->size += right->size;
  left->next = right->next;
  if (right->next) right->next->prev = left;
  blocks_.erase(key(right));
  delete right;
}

size_t BlockPool::give_back(void* ptr) {
  Block* b = block_at(reinterpret_cast<uintptr_t>(ptr));
  if (!b || b->free) return 0;
  const size_t size = b->size;
  b->free = true;
  free_ += static_cast<int64_t>(size);
  if (b->next && b->next->free) absorb_next(b);
  if (b->prev && b->prev->free) {
    Block* left = b->prev;
    free_set_.erase({left->size, key(left)});
    absorb_next(left);
    b = left;
  }
  free_set_.emplace(b->size, key(b));
  return size;
}

size_t BlockPool::release_free_segments() {
  size_t released = shrink_arena();
  for (auto it = free_set_.begin(); it != free_set_.end();) {
    Block* b = block_at(it->second);
    if (b->prev || b->next || in_arena(b)) {
      ++it;
      continue;
    }
    unmap_(b->addr, b->size);
    released += b->size;
    reserved_ -= static_cast<int64_t>(b->size);
    free_ -= static_cast<int64_t>(b->size);
    unmaps_++;
    blocks_.erase(key(b));
    delete b;
    it = free_set_.erase(it);
  }
  return released;
}

}  // namespace cudl
