// CUDA caching allocator.
//
// Requests are rounded up (512 B below 1 MiB, 2 MiB above). Small blocks are cached by size and
// reused for requests of at least half their size; large ones are carved best fit out of
// cudaMalloc'd segments, split and merged (tensor/block_pool.h). cudaMalloc runs only on a miss. All cudl work on a device is ordered on one stream, so a block freed by
// the host can be handed out again immediately. When cudaMalloc fails, the cache is released and
// the call retried once; a second failure throws one "CUDA out of memory" error naming the size
// asked for and what cudl holds.
//
// CUDA graphs (tensor/graph.h): between begin_graph_pool and end_graph_pool every allocation on
// the device comes from a pool of its own, so what a captured graph reads and writes at each
// replay is never handed to other tensors; blocks of the main cache freed meanwhile are held
// back too. release_graph_pool (when the graph is destroyed) returns the held-back blocks and
// frees the pool's memory once its last block is freed. Nothing is given back to the driver
// while a capture runs. A pool may start with one segment of a given size (what a trial run
// peaked at): its large blocks are then carved from one range, where freed neighbours merge.
// Segments per request would not merge: the CPU allocator's requests in a ResNet-18 step at
// batch 256 x 224x224, replayed through this scheme, reserve 1.2x their live peak, as the
// backward pass asks for a 784 MiB gradient beside free 196 MiB blocks in separate segments;
// one segment of the live peak held the whole step. (GPU steps ask for the same activations
// and gradients; cuDNN's workspaces replace the CPU's scratch.)
#pragma once

#include <cstddef>

#include "tensor/allocator.h"

namespace cudl::cuda {

void* caching_allocate(size_t nbytes, int device);
void caching_free(void* ptr, int device) noexcept;
void caching_empty_cache(int device);
MemoryStats caching_stats(int device);
// Returns the pool's id. reserve_bytes >= 1 MiB: the pool starts with a free segment of that
// size (rounded up), when the device has the memory (else it starts empty).
int caching_begin_graph_pool(int device, size_t reserve_bytes = 0);
void caching_end_graph_pool(int device);
void caching_release_graph_pool(int device, int id);
void caching_reset_peak(int device);
void caching_watch_peak(int device);        // watch_peak_allocated (tensor/allocator.h)
int64_t caching_watched_peak(int device);

// Page-locked host memory (not cached: the loader keeps its pinned buffers for the whole run).
void* pinned_allocate(size_t nbytes);
void pinned_free(void* ptr) noexcept;

}  // namespace cudl::cuda
