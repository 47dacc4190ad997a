// CPU conv2d: im2col + BLAS GEMM (OpenBLAS, OpenMP build).
//
// Columns: row r = (c*kH + a)*kW + b of a column matrix holds, for every output position of a
// tile, the input value the kernel tap (c, a, b) sees (0 in the padding). A tile is either a
// few whole samples (small output maps: `ns` samples side by side, so the GEMM is wide enough
// even for 10x10 maps) or a band of output rows of one sample (large maps: the band's columns
// stay in the cache between the unfold and the GEMM instead of going through memory). Per tile
//   y_tile[o, :] = W[o, :] @ col                (one GEMM per conv group)
//   dW += dy_tile @ col^T,  dcol = W^T @ dy_tile, then col2im adds dcol back into dx.
// A 1x1, stride-1, unpadded convolution of one sample reads x directly (no unfold) and writes
// dx straight from the GEMM.
//
// Threads (CpuConvPath in conv.h):
// - sample-parallel (when there are at least as many sample groups as threads, e.g. training
//   batches): each thread takes whole sample groups and runs the unfold, single-threaded GEMMs
//   and the fold for them, with its own column buffer; nothing is shared but the read-only
//   weights. The weight gradient is accumulated per slot (a fixed, contiguous range of sample
//   groups) and the slots are summed in order afterwards, so the result does not depend on
//   which thread ran which group.
// - BLAS-threaded (few samples, e.g. inference on one image): the groups run one after the
//   other; the unfold and the fold are split over threads, and each GEMM uses every thread.
// OpenBLAS's OpenMP build runs a GEMM called inside a parallel region on the calling thread,
// and outside one on the same OpenMP pool as cudl's loops: one set of worker threads.
#include "tensor/ops/conv.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "tensor/cpu/conv_onednn.h"
#include "tensor/cpu/conv_winograd.h"
#include "tensor/cpu/widen.h"
#include "tensor/ops/conv_kernels.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace cudl {

namespace {
std::atomic<CpuConvPath> g_cpu_conv_path{CpuConvPath::kAuto};
}

void set_cpu_conv_path(CpuConvPath path) {
  g_cpu_conv_path = path;
}
CpuConvPath cpu_conv_path() {
  return g_cpu_conv_path;
}
std::string onednn_version() {
  return cpu::onednn::version();
}
bool onednn_bf16_native() {
  return cpu::onednn::native_bf16();
}

namespace cpu {

namespace {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// Columns per GEMM we aim for: below this, GEMMs of late, small feature maps (e.g. 10x10) run
// far below the BLAS's peak; above it the column tile no longer stays in the cache (1024
// columns of a 64-channel 3x3 convolution are 2.4 MB).
constexpr int64_t kTargetColumns = 1024;
// Upper bound on one column tile, in elements (64 MiB of float32).
constexpr int64_t kMaxColumnElems = int64_t(16) << 20;

// How a convolution is cut into tiles and tasks.
struct Plan {
  int64_t ns = 1;         // most samples in one group (a task); > 1 only for small maps
  int64_t groups = 1;     // sample groups
  int64_t band = 1;       // output rows per tile (oh when ns > 1)
  int64_t cols = 1;       // columns of the largest tile
  bool direct = false;    // 1x1, stride 1, no padding: x is its own column matrix
  bool parallel = false;  // sample-parallel (true) or BLAS-threaded (false)
};

Plan make_plan(const ConvGeometry& g, int threads) {
  Plan p;
  const int64_t ohw = g.oh * g.ow, rows = g.c * g.kh * g.kw;
  p.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  if (ohw >= kTargetColumns) {
    // Large maps: one sample per group, cut into bands of about kTargetColumns columns.
    p.ns = 1;
    const int64_t bands = (ohw + kTargetColumns - 1) / kTargetColumns;
    p.band = (g.oh + bands - 1) / bands;
  } else {
    int64_t ns = (kTargetColumns + ohw - 1) / ohw;
    ns = std::min(ns, std::max<int64_t>(1, kMaxColumnElems / std::max<int64_t>(rows * ohw, 1)));
    ns = std::clamp<int64_t>(ns, 1, std::max<int64_t>(g.n, 1));
    p.ns = ns;
    p.band = g.oh;
  }
  p.groups = (g.n + p.ns - 1) / p.ns;
  const CpuConvPath path = cpu_conv_path();
  if (path == CpuConvPath::kIm2colSampleParallel) {
    p.parallel = true;
  } else if (path == CpuConvPath::kIm2colBlasThreads) {
    p.parallel = false;
  } else {
    // Balance: with fewer groups than threads some threads would idle; split the samples
    // into more, smaller groups when that gives every thread one.
    if (threads > 1 && p.groups < threads && p.ns > 1) {
      p.ns = std::max<int64_t>(1, g.n / threads);
      p.groups = (g.n + p.ns - 1) / p.ns;
    }
    p.parallel = threads > 1 && p.groups >= threads;
  }
  // Balanced groups (group k holds samples [k*n/G, (k+1)*n/G)): sizes differ by at most one.
  p.ns = (g.n + p.groups - 1) / p.groups;
  p.cols = p.ns * p.band * g.ow;
  return p;
}

// Samples [n0, n0 + ns) of sample group k.
struct Group {
  int64_t n0, ns;
};
Group group_of(const ConvGeometry& g, const Plan& p, int64_t k) {
  const int64_t n0 = k * g.n / p.groups;
  return {n0, (k + 1) * g.n / p.groups - n0};
}

// Output positions j in [lo, hi) read input column j*s + off inside [0, n); the others read
// padding.
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_range(int64_t off, int64_t s, int64_t n, int64_t out) {
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = n - 1 - off >= 0 ? (n - 1 - off) / s + 1 : 0;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

// A tile: samples [n0, n0 + ns), output rows [r0, r0 + nr) of each (all rows when ns > 1).
struct Tile {
  int64_t n0, ns, r0, nr;
};

// Unfolds column-matrix rows [r_begin, r_end) of the tile into col (C*kH*kW, ns*nr*OW).
template <class T>
void im2col(const ConvGeometry& g, const T* x, const Tile& t, int64_t r_begin, int64_t r_end,
            T* col) {
  const int64_t kk = g.kh * g.kw, tile = t.nr * g.ow, ld = t.ns * tile;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t c = r / kk, a = (r / g.kw) % g.kh, b = r % g.kw;
    const int64_t off_w = b * g.dw - g.pw;
    const ValidRange vr = valid_range(off_w, g.sw, g.w, g.ow);
    for (int64_t s = 0; s < t.ns; ++s) {
      const T* plane = x + ((t.n0 + s) * g.c + c) * g.h * g.w;
      T* out = col + r * ld + s * tile;
      for (int64_t i = t.r0; i < t.r0 + t.nr; ++i) {
        T* orow = out + (i - t.r0) * g.ow;
        const int64_t ih = i * g.sh - g.ph + a * g.dh;
        if (ih < 0 || ih >= g.h) {
          std::fill(orow, orow + g.ow, T(0));
          continue;
        }
        const T* xrow = plane + ih * g.w + off_w;
        std::fill(orow, orow + vr.lo, T(0));
        if (g.sw == 1) {
          std::copy(xrow + vr.lo, xrow + vr.hi, orow + vr.lo);
        } else {
          for (int64_t j = vr.lo; j < vr.hi; ++j) orow[j] = xrow[j * g.sw];
        }
        std::fill(orow + vr.hi, orow + g.ow, T(0));
      }
    }
  }
}

// Adds the tile's columns back into dx (overlapping taps add up), for the (sample, channel)
// planes [p_begin, p_end) of the tile (plane index s * C + c). Taps are added in a fixed order
// (a, b), so the result is reproducible. dx must be initialised (zero) before the first tile.
template <class T>
void col2im(const ConvGeometry& g, const T* col, const Tile& t, int64_t p_begin, int64_t p_end,
            T* dx) {
  const int64_t tile = t.nr * g.ow, ld = t.ns * tile;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t s = p / g.c, c = p % g.c;
    T* plane = dx + ((t.n0 + s) * g.c + c) * g.h * g.w;
    for (int64_t a = 0; a < g.kh; ++a) {
      for (int64_t b = 0; b < g.kw; ++b) {
        const T* in = col + ((c * g.kh + a) * g.kw + b) * ld + s * tile;
        const int64_t off_w = b * g.dw - g.pw;
        const ValidRange vr = valid_range(off_w, g.sw, g.w, g.ow);
        for (int64_t i = t.r0; i < t.r0 + t.nr; ++i) {
          const int64_t ih = i * g.sh - g.ph + a * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          T* xrow = plane + ih * g.w + off_w;
          const T* irow = in + (i - t.r0) * g.ow;
          if (g.sw == 1) {
            for (int64_t j = vr.lo; j < vr.hi; ++j) xrow[j] += irow[j];
          } else {
            for (int64_t j = vr.lo; j < vr.hi; ++j) xrow[j * g.sw] += irow[j];
          }
        }
      }
    }
  }
}

template <class T>
Tensor scratch(int64_t elems) {
  return empty({std::max<int64_t>(elems, 0)}, DTypeOf<T>::value);
}

// Scratch memory of one thread: a column tile and, for multi-sample tiles, a (O, cols)
// staging matrix (the GEMM's output in the forward pass, dy gathered in the backward pass).
template <class T>
struct Scratch {
  Tensor col_t, tmp_t;
  T* col = nullptr;
  T* tmp = nullptr;
  Scratch(const ConvGeometry& g, const Plan& p, bool need_col) {
    if (need_col) {
      col_t = scratch<T>(g.c * g.kh * g.kw * p.cols);
      col = col_t.template data<T>();
    }
    if (p.ns > 1) {
      tmp_t = scratch<T>(g.o * p.cols);
      tmp = tmp_t.template data<T>();
    }
  }
};

// The tiles of sample group `grp`, in order.
template <class F>
void for_each_tile(const ConvGeometry& g, const Plan& p, int64_t grp, const F& f) {
  const Group s = group_of(g, p, grp);
  for (int64_t r0 = 0; r0 < g.oh; r0 += p.band)
    f(Tile{s.n0, s.ns, r0, std::min(p.band, g.oh - r0)});
}

// The GEMM operand of tile t as a (rows, cols) matrix and its leading dimension: x itself for a
// direct convolution of one sample, else its im2col columns in `col` (filled in parallel over
// rows when the tiles themselves run serially).
template <class T>
std::pair<const T*, int64_t> tile_columns(const ConvGeometry& g, const Plan& p, const T* x,
                                          const Tile& t, bool need_col, T* col) {
  const int64_t ohw = g.oh * g.ow;
  if (!need_col) return {x + t.n0 * g.c * ohw + t.r0 * g.ow, ohw};
  const int64_t rows = g.c * g.kh * g.kw;
  if (p.parallel) {
    im2col(g, x, t, 0, rows, col);
  } else {
    parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) { im2col(g, x, t, r0, r1, col); });
  }
  return {col, t.ns * t.nr * g.ow};
}

template <class T>
void forward_impl(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (g.n == 0) return;
  const int threads = get_num_threads();
  const Plan p = make_plan(g, threads);
  const int64_t ohw = g.oh * g.ow, og = g.o / g.groups, krows = (g.c / g.groups) * g.kh * g.kw;
  const bool need_col = !(p.direct && p.ns == 1);
  const int nthreads = p.parallel ? parallel_task_threads(p.groups) : 1;
  std::vector<Scratch<T>> bufs;
  for (int i = 0; i < nthreads; ++i) bufs.emplace_back(g, p, need_col);

  // y for one tile.
  auto run_tile = [&](const Tile& t, Scratch<T>& s) {
    const int64_t cols = t.ns * t.nr * g.ow;
    const auto [b, ldb] = tile_columns(g, p, x, t, need_col, s.col);
    // One sample: the GEMM writes y[n0]'s band directly.
    T* out = t.ns == 1 ? y + t.n0 * g.o * ohw + t.r0 * g.ow : s.tmp;
    const int64_t ldc = t.ns == 1 ? ohw : cols;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm(false, false, og, cols, krows, w + grp * og * krows, krows, b + grp * krows * ldb, ldb,
           T(0), out + grp * og * ldc, ldc);
    }
    const int64_t tile = t.nr * g.ow;
    if (t.ns == 1 && !bias) return;
    // tmp (O, ns, band) -> y[n0 + s] (O, band), adding the bias (in place when ns == 1).
    for (int64_t sm = 0; sm < t.ns; ++sm) {
      for (int64_t o = 0; o < g.o; ++o) {
        const T* src = out + o * ldc + sm * tile;
        T* dst = y + ((t.n0 + sm) * g.o + o) * ohw + t.r0 * g.ow;
        const T add = bias ? bias[o] : T(0);
        for (int64_t q = 0; q < tile; ++q) dst[q] = src[q] + add;
      }
    }
  };

  if (p.parallel) {
    parallel_tasks(p.groups, [&](int64_t grp, int th) {
      for_each_tile(g, p, grp, [&](const Tile& t) { run_tile(t, bufs[th]); });
    });
  } else {
    for (int64_t grp = 0; grp < p.groups; ++grp)
      for_each_tile(g, p, grp, [&](const Tile& t) { run_tile(t, bufs[0]); });
  }
}

template <class T>
void backward_impl(const ConvGeometry& g, const T* x, const T* w, const T* dy, T* dx, T* dw,
                   T* db) {
  const int64_t ohw = g.oh * g.ow, og = g.o / g.groups, krows = (g.c / g.groups) * g.kh * g.kw;
  const int64_t wsize = g.o * krows;
  if (db) {
    parallel_for(0, g.o, 16, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double acc = 0.0;
        for (int64_t n = 0; n < g.n; ++n) {
          const T* q = dy + (n * g.o + o) * ohw;
          for (int64_t i = 0; i < ohw; ++i) acc += static_cast<double>(q[i]);
        }
        db[o] = static_cast<T>(acc);
      }
    });
  }
  if ((!dx && !dw) || g.n == 0) return;
  const int threads = get_num_threads();
  const Plan p = make_plan(g, threads);
  const bool need_col = !(p.direct && p.ns == 1);
  const int nthreads = p.parallel ? parallel_task_threads(p.groups) : 1;
  std::vector<Scratch<T>> bufs;
  for (int i = 0; i < nthreads; ++i) bufs.emplace_back(g, p, need_col);

  // Weight-gradient slots: slot k accumulates groups [k*G/S, (k+1)*G/S); slot 0 is dw itself.
  // S depends only on the number of groups and threads, never on the scheduling.
  const int64_t slots = p.parallel ? std::min<int64_t>(p.groups, 2 * int64_t(nthreads)) : 1;
  Tensor slot_t = scratch<T>(dw && slots > 1 ? (slots - 1) * wsize : 0);
  T* extra = slot_t.data<T>();
  auto slot_ptr = [&](int64_t k) { return k == 0 ? dw : extra + (k - 1) * wsize; };

  // One tile: dW_slot (+)= dy_tile @ col^T, then dx's share. `first` starts the slot's sum.
  auto run_tile = [&](const Tile& t, Scratch<T>& s, T* dw_slot, bool first) {
    const int64_t cols = t.ns * t.nr * g.ow, tile = t.nr * g.ow;
    // dy of the tile as (O, cols).
    const T* d = dy + t.n0 * g.o * ohw + t.r0 * g.ow;
    int64_t ldd = ohw;
    if (t.ns > 1) {
      for (int64_t sm = 0; sm < t.ns; ++sm)
        for (int64_t o = 0; o < g.o; ++o) {
          const T* src = dy + ((t.n0 + sm) * g.o + o) * ohw;
          std::copy(src, src + ohw, s.tmp + o * cols + sm * tile);
        }
      d = s.tmp;
      ldd = cols;
    }
    if (dw_slot) {
      const auto [b, ldb] = tile_columns(g, p, x, t, need_col, s.col);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        gemm(false, true, og, krows, cols, d + grp * og * ldd, ldd, b + grp * krows * ldb, ldb,
             first ? T(0) : T(1), dw_slot + grp * og * krows, krows);
      }
    }
    if (dx) {
      // dcol = W^T @ dy; in the direct case dcol is dx[n0]'s band itself.
      T* dcol = need_col ? s.col : dx + t.n0 * g.c * ohw + t.r0 * g.ow;
      const int64_t ldc = need_col ? cols : ohw;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        gemm(true, false, krows, cols, og, w + grp * og * krows, krows, d + grp * og * ldd, ldd,
             T(0), dcol + grp * krows * ldc, ldc);
      }
      if (need_col) {
        const int64_t planes = t.ns * g.c;
        if (p.parallel) {
          col2im(g, s.col, t, 0, planes, dx);
        } else {
          parallel_for(0, planes, 1,
                       [&](int64_t p0, int64_t p1) { col2im(g, s.col, t, p0, p1, dx); });
        }
      }
    }
  };

  // col2im adds into dx: each group's samples start from zero.
  auto zero_dx = [&](int64_t grp) {
    if (!dx || !need_col) return;
    const Group s = group_of(g, p, grp);
    std::fill(dx + s.n0 * g.c * g.h * g.w, dx + (s.n0 + s.ns) * g.c * g.h * g.w, T(0));
  };

  if (p.parallel) {
    parallel_tasks(slots, [&](int64_t k, int th) {
      const int64_t g0 = k * p.groups / slots, g1 = (k + 1) * p.groups / slots;
      for (int64_t grp = g0; grp < g1; ++grp) {
        zero_dx(grp);
        bool first = grp == g0;
        for_each_tile(g, p, grp, [&](const Tile& t) {
          run_tile(t, bufs[th], dw ? slot_ptr(k) : nullptr, first);
          first = false;
        });
      }
    });
    if (dw && slots > 1) {
      // dw = slot 0 + slot 1 + ... in this order.
      parallel_for(0, wsize, 4096, [&](int64_t i0, int64_t i1) {
        for (int64_t k = 1; k < slots; ++k) {
          const T* src = extra + (k - 1) * wsize;
          for (int64_t i = i0; i < i1; ++i) dw[i] += src[i];
        }
      });
    }
  } else {
    if (dx && need_col) {
      T* base = dx;
      parallel_for(0, g.n * g.c * g.h * g.w, 1 << 16,
                   [&](int64_t i0, int64_t i1) { std::fill(base + i0, base + i1, T(0)); });
    }
    bool first = true;
    for (int64_t grp = 0; grp < p.groups; ++grp)
      for_each_tile(g, p, grp, [&](const Tile& t) {
        run_tile(t, bufs[0], dw, first);
        first = false;
      });
  }
}

}  // namespace

namespace {

// oneDNN for float32 unless a path forces im2col. In kAuto, only its JIT kernels and not for
// 1x1 kernels: a 1x1 convolution is a plain GEMM, which OpenBLAS does faster (bench_conv:
// ResNet-18's downsample convolutions took ~1.6x longer on oneDNN). bfloat16: every kernel
// size, on a CPU with bfloat16 instructions (onednn::native_bf16), JIT kernels only, unless a
// path forces im2col; the float kernels would first widen every operand.
bool try_onednn(DType dtype, const ConvGeometry& g, bool* jit_only) {
  const CpuConvPath path = cpu_conv_path();
  *jit_only = path != CpuConvPath::kOneDnn;
  if (path == CpuConvPath::kIm2colSampleParallel || path == CpuConvPath::kIm2colBlasThreads)
    return false;
  if (dtype == kBFloat16) {
    *jit_only = true;  // oneDNN's reference bfloat16 code is far slower than widening
    return onednn::native_bf16();
  }
  if (dtype != kFloat32) return false;
  return path == CpuConvPath::kOneDnn || !(g.kh == 1 && g.kw == 1);
}

// Winograd for float32 3x3 stride-1 convolutions, in kWinograd.
bool use_winograd(DType dtype, const ConvGeometry& g) {
  return dtype == kFloat32 && cpu_conv_path() == CpuConvPath::kWinograd && winograd::applies(g);
}

// Copies between (n, c, hw) and (n, hw, c) memory (to_nhwc: the first into the second).
template <class T>
void transpose_channels(const T* src, T* dst, int64_t n, int64_t c, int64_t hw, bool to_nhwc) {
  parallel_for(0, n * hw, std::max<int64_t>(1, 16384 / std::max<int64_t>(c, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t t = begin; t < end; ++t) {
                   const int64_t i = t / hw, k = t % hw;
                   for (int64_t ch = 0; ch < c; ++ch) {
                     const int64_t nchw = (i * c + ch) * hw + k, nhwc = t * c + ch;
                     if (to_nhwc) {
                       dst[nhwc] = src[nchw];
                     } else {
                       dst[nchw] = src[nhwc];
                     }
                   }
                 }
               });
}

// A row-major buffer of n * c * hw elements from cudl's allocator (counted in memory_stats):
// the copy of channels-last `src` ((n, hw, c) memory), or uninitialised for a null src (an
// output). Undefined when not wanted.
template <class T>
Tensor row_major(const void* src, int64_t n, int64_t c, int64_t hw, bool wanted) {
  if (!wanted) return Tensor();
  Tensor t = empty({n * c * hw}, TensorOptions(DTypeOf<T>::value));
  if (src) transpose_channels(static_cast<const T*>(src), t.data<T>(), n, c, hw, false);
  return t;
}

template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void conv2d_forward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y, const ConvAlgoOptions& algo) {
  bool jit_only = true;
  if (dtype == kBFloat16) {
    // oneDNN's bfloat16 kernels, in either memory format; else the float path (widen.h).
    if (try_onednn(dtype, g, &jit_only) &&
        onednn::conv2d_forward(dtype, g, x, w, bias, y, jit_only)) {
      return;
    }
    const Tensor xf = widen(x, g.n * g.c * g.h * g.w);
    const Tensor wf = widen(w, g.o * (g.c / g.groups) * g.kh * g.kw);
    const Tensor bf = widen(bias, g.o);
    const Tensor yf = float_buffer(y, g.n * g.o * g.oh * g.ow);
    conv2d_forward(kFloat32, g, data_or_null(xf), data_or_null(wf), data_or_null(bf),
                   data_or_null(yf), algo);
    narrow(yf, y);
    return;
  }
  if (g.channels_last) {
    // Channels-last: the row-major path on converted copies (see conv.h).
    ConvGeometry r = g;
    r.channels_last = false;
    CUDL_DISPATCH_FLOATING(dtype, "conv2d", [&] {
      using T = scalar_t;
      const Tensor xr = row_major<T>(x, g.n, g.c, g.h * g.w, true);
      const Tensor yr = row_major<T>(nullptr, g.n, g.o, g.oh * g.ow, true);
      conv2d_forward(dtype, r, ptr<T>(xr), w, bias, ptr<T>(yr), algo);
      transpose_channels(ptr<T>(yr), static_cast<T*>(y), g.n, g.o, g.oh * g.ow, true);
    });
    return;
  }
  if (use_winograd(dtype, g)) {
    winograd::conv2d_forward(g, static_cast<const float*>(x), static_cast<const float*>(w),
                             static_cast<const float*>(bias), static_cast<float*>(y));
    return;
  }
  if (try_onednn(dtype, g, &jit_only) &&
      onednn::conv2d_forward(dtype, g, x, w, bias, y, jit_only)) {
    return;
  }
  CUDL_DISPATCH_FLOATING(dtype, "conv2d", [&] {
    forward_impl(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w),
                 static_cast<const scalar_t*>(bias), static_cast<scalar_t*>(y));
  });
}

void conv2d_backward(DType dtype, const ConvGeometry& g, const void* x, const void* w,
                     const void* dy, void* dx, void* dw, void* db,
                     const ConvAlgoOptions& algo) {
  bool jit_only = true;
  if (dtype == kBFloat16) {
    // oneDNN's bfloat16 kernels for what they take, in either memory format; the float path
    // (widen.h) for the rest (the bias gradient always).
    if ((dx || dw) && try_onednn(dtype, g, &jit_only)) {
      const onednn::BackwardDone done =
          onednn::conv2d_backward(dtype, g, x, w, dy, dx, dw, jit_only);
      if (done.dx) dx = nullptr;
      if (done.dw) dw = nullptr;
    }
    if (!dx && !dw && !db) return;
    const int64_t nx = g.n * g.c * g.h * g.w, nw = g.o * (g.c / g.groups) * g.kh * g.kw;
    const Tensor xf = dw ? widen(x, nx) : Tensor();
    const Tensor wf = dx ? widen(w, nw) : Tensor();
    const Tensor dyf = widen(dy, g.n * g.o * g.oh * g.ow);
    const Tensor dxf = float_buffer(dx, nx), dwf = float_buffer(dw, nw),
                 dbf = float_buffer(db, g.o);
    conv2d_backward(kFloat32, g, data_or_null(xf), data_or_null(wf), data_or_null(dyf),
                    data_or_null(dxf), data_or_null(dwf), data_or_null(dbf), algo);
    narrow(dxf, dx);
    narrow(dwf, dw);
    narrow(dbf, db);
    return;
  }
  if (g.channels_last) {
    // Channels-last: the row-major path on converted copies (see conv.h).
    ConvGeometry r = g;
    r.channels_last = false;
    CUDL_DISPATCH_FLOATING(dtype, "conv2d backward", [&] {
      using T = scalar_t;
      const Tensor xr = row_major<T>(x, g.n, g.c, g.h * g.w, dw != nullptr);
      const Tensor dyr = row_major<T>(dy, g.n, g.o, g.oh * g.ow, true);
      Tensor dxr = row_major<T>(nullptr, g.n, g.c, g.h * g.w, dx != nullptr);
      conv2d_backward(dtype, r, ptr<T>(xr), w, ptr<T>(dyr), ptr<T>(dxr), dw, db, algo);
      if (dx) transpose_channels(ptr<T>(dxr), static_cast<T*>(dx), g.n, g.c, g.h * g.w, true);
    });
    return;
  }
  if (use_winograd(dtype, g)) {  // what it computes is left out of the passes below
    if (dx) {
      winograd::conv2d_backward_data(g, static_cast<const float*>(w),
                                     static_cast<const float*>(dy), static_cast<float*>(dx));
      dx = nullptr;
    }
    if (dw) {
      winograd::conv2d_backward_weights(g, static_cast<const float*>(x),
                                        static_cast<const float*>(dy), static_cast<float*>(dw));
      dw = nullptr;
    }
  }
  if ((dx || dw) && try_onednn(dtype, g, &jit_only)) {
    const onednn::BackwardDone done = onednn::conv2d_backward(dtype, g, x, w, dy, dx, dw, jit_only);
    if (done.dx) dx = nullptr;  // what oneDNN computed is left out of the im2col pass
    if (done.dw) dw = nullptr;
  }
  CUDL_DISPATCH_FLOATING(dtype, "conv2d backward", [&] {
    backward_impl(g, static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w),
                  static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx),
                  static_cast<scalar_t*>(dw), static_cast<scalar_t*>(db));
  });
}

}  // namespace cpu
}  // namespace cudl
