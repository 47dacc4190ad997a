// Random numbers from Philox-4x32-10 (ops/philox.h). A Generator is (seed, offset): each draw
// of n values uses counter blocks [offset, offset + ceil(n/4)) and advances the offset, so the
// same seed gives the same numbers on the CPU and on CUDA, whatever the thread layout.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cudl {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  // Reserves `blocks` counter blocks and returns the first (relative to the device base while
  // a capture runs).
  uint64_t reserve(uint64_t blocks) {
    uint64_t& o = capture_base_ ? captured_ : offset_;
    const uint64_t first = o;
    o += blocks;
    return first;
  }

  // CUDA graph capture (tensor/graph.h). Between begin_capture and end_capture, draws are
  // recorded with offsets relative to the value at `device_base` (device memory), which the
  // graph sets to offset() before each replay and then advances offset() by what the capture
  // drew: every replay draws fresh numbers, exactly those eager steps would have drawn.
  void begin_capture(const uint64_t* device_base) {
    capture_base_ = device_base;
    captured_ = 0;
  }
  uint64_t end_capture() {  // the counter blocks the captured work draws per replay
    capture_base_ = nullptr;
    return captured_;
  }
  const uint64_t* device_base() const { return capture_base_; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  const uint64_t* capture_base_ = nullptr;
  uint64_t captured_ = 0;
};

// Process-wide generator used when none is given.
Generator& default_generator();
void manual_seed(uint64_t seed);

// In place, not recorded by autograd. The tensor must be contiguous and floating.
Tensor& uniform_(Tensor& t, double low = 0.0, double high = 1.0, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& bernoulli_(Tensor& t, double p, Generator* gen = nullptr);  // 1 with probability p

Tensor rand(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, const TensorOptions& opts = {}, Generator* gen = nullptr);

}  // namespace cudl
