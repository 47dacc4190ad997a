// CUDA caching allocator.
//
// Requests are rounded up (512 B below 1 MiB, 2 MiB above) and served best-fit from a free list
// ordered by size; a cached block is only reused for a request of at least half its size (small)
// or within 8 MiB of it (large), so a few big blocks are not eaten by small tensors. cudaMalloc
// runs only on a miss. All cudl work on a device is ordered on one stream, so a block freed by
// the host can be handed out again immediately. When cudaMalloc fails, the cache is released and
// the call retried once; a second failure throws one "CUDA out of memory" error naming the size
// asked for and what cudl holds.
//
// CUDA graphs (tensor/graph.h): between begin_graph_pool and end_graph_pool every allocation on
// the device comes from a pool of its own, so what a captured graph reads and writes at each
// replay is never handed to other tensors; blocks of the main cache freed meanwhile are held
// back too. release_graph_pool (when the graph is destroyed) returns the held-back blocks and
// frees the pool's memory once its last block is freed. Nothing is given back to the driver
// while a capture runs.
#pragma once

#include <cstddef>

#include "tensor/allocator.h"

namespace cudl::cuda {

void* caching_allocate(size_t nbytes, int device);
void caching_free(void* ptr, int device) noexcept;
void caching_empty_cache(int device);
MemoryStats caching_stats(int device);
int caching_begin_graph_pool(int device);  // returns the pool's id
void caching_end_graph_pool(int device);
void caching_release_graph_pool(int device, int id);
void caching_reset_peak(int device);

// Page-locked host memory (not cached: the loader keeps its pinned buffers for the whole run).
void* pinned_allocate(size_t nbytes);
void pinned_free(void* ptr) noexcept;

}  // namespace cudl::cuda
