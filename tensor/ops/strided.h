// StridedIndex<N>: maps the linear (row-major) index of an element of an iteration shape to the
// element offsets of N operands with arbitrary strides (0 for broadcast dims). Plain data, so it
// is passed by value to CUDA kernels; the same code runs in the CPU loops.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/error.h"
#include "tensor/macros.h"

namespace cudl {

constexpr int kMaxDims = 8;

template <int N>
struct StridedIndex {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  CUDL_HD void offsets(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds the index for `sizes`, merging neighbouring dims that are laid out contiguously for
// every operand (so a contiguous tensor becomes one dim) and dropping size-1 dims.
template <int N>
StridedIndex<N> make_strided_index(const std::vector<int64_t>& sizes,
                                   const std::array<const std::vector<int64_t>*, N>& strides) {
  StridedIndex<N> idx;
  // Collect dims from the innermost outwards, merging when possible.
  std::vector<int64_t> sz;
  std::vector<std::array<int64_t, N>> st;
  for (int d = static_cast<int>(sizes.size()) - 1; d >= 0; --d) {
    if (sizes[d] == 1) continue;
    std::array<int64_t, N> s;
    for (int k = 0; k < N; ++k) s[k] = (*strides[k])[d];
    if (!sz.empty()) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (s[k] != st.back()[k] * sz.back()) mergeable = false;
      if (mergeable) {
        sz.back() *= sizes[d];
        continue;
      }
    }
    sz.push_back(sizes[d]);
    st.push_back(s);
  }
  CUDL_CHECK(sz.size() <= static_cast<size_t>(kMaxDims), "tensors with more than ", kMaxDims,
             " non-mergeable dims are not supported");
  idx.ndim = static_cast<int>(sz.size());
  for (int d = 0; d < idx.ndim; ++d) {
    int src = idx.ndim - 1 - d;  // back to outermost-first order
    idx.sizes[d] = sz[src];
    for (int k = 0; k < N; ++k) idx.strides[k][d] = st[src][k];
  }
  return idx;
}

}  // namespace cudl
