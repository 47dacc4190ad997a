#include "tensor/block_pool.h"

#include <utility>

namespace cudl {

BlockPool::BlockPool(size_t min_split, MapFn map, UnmapFn unmap)
    : min_split_(min_split), map_(std::move(map)), unmap_(std::move(unmap)) {}

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
      blocks_.emplace(key(rest), rest);
      free_set_.emplace(rest->size, key(rest));
    }
    free_ -= static_cast<int64_t>(b->size);
    b->free = false;
    return {b->addr, b->size};
  }
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

// left and left->next are both free: one block.
void BlockPool::absorb_next(Block* left) {
  Block* right = left->next;
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
  size_t released = 0;
  for (auto it = free_set_.begin(); it != free_set_.end();) {
    Block* b = block_at(it->second);
    if (b->prev || b->next) {
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
