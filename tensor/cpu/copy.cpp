// CPU copies, casts, fills and random fills.
#include <cstring>

#include "tensor/ops/kernels.h"
#include "tensor/parallel.h"

namespace cudl::cpu {

namespace {
constexpr int64_t kGrain = 65536;

template <class W>
void copy_words(int64_t n, const W* src, W* dst, const StridedIndex<2>& ix) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    int64_t off[2];
    for (int64_t i = b; i < e; ++i) {
      ix.offsets(i, off);
      dst[off[0]] = src[off[1]];
    }
  });
}

template <class From, class To>
void cast_loop(int64_t n, const From* src, To* dst) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = static_cast<To>(src[i]);
  });
}
}  // namespace

void copy_strided(size_t elem_size, int64_t n, const void* src, void* dst,
                  const StridedIndex<2>& idx) {
  if (idx.ndim == 1 && idx.strides[0][0] == 1 && idx.strides[1][0] == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * elem_size);
    return;
  }
  switch (elem_size) {
    case 1: return copy_words(n, static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), idx);
    case 2: return copy_words(n, static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), idx);
    case 4: return copy_words(n, static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), idx);
    case 8: return copy_words(n, static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), idx);
  }
  CUDL_THROW("copy_strided: unsupported element size ", elem_size);
}

void cast(DType from, DType to, int64_t n, const void* src, void* dst) {
  CUDL_DISPATCH_ALL(from, "cast", [&] {
    using from_t = scalar_t;
    CUDL_DISPATCH_ALL(to, "cast", [&] {
      cast_loop(n, static_cast<const from_t*>(src), static_cast<scalar_t*>(dst));
    });
  });
}

void fill(DType dtype, int64_t n, void* dst, double value) {
  CUDL_DISPATCH_ALL(dtype, "fill", [&] {
    scalar_t v = static_cast<scalar_t>(value);
    scalar_t* d = static_cast<scalar_t*>(dst);
    parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] = v;
    });
  });
}

void fill_random(DType dtype, int64_t n, void* dst, uint64_t seed, uint64_t offset,
                 const uint64_t* offset_base, philox::Dist dist, double a, double b) {
  CUDL_CHECK(offset_base == nullptr, "fill_random: a device offset base exists only on CUDA");
  CUDL_DISPATCH_FLOATING_BF16(dtype, "fill_random", [&] {
    scalar_t* d = static_cast<scalar_t*>(dst);
    const int64_t blocks = (n + 3) / 4;
    parallel_for(0, blocks, 4096, [&](int64_t lo, int64_t hi) {
      double v[4];
      for (int64_t blk = lo; blk < hi; ++blk) {
        philox::sample4(dist, a, b, philox::block(seed, offset + static_cast<uint64_t>(blk)), v);
        for (int l = 0; l < 4 && blk * 4 + l < n; ++l) d[blk * 4 + l] = static_cast<scalar_t>(v[l]);
      }
    });
  });
}

}  // namespace cudl::cpu
