// Winograd F(4x4, 3x3) convolutions on the CPU (see conv_winograd.h).
//
// Tiles. The output is cut into 4x4 tiles, numbered over (n, row of tiles, column of tiles);
// tile t reads the 6x6 input window whose top-left corner is (4 ty - ph, 4 tx - pw). Work goes
// by blocks of consecutive tiles, each with scratch of
//   V[36][C][cols]  the transformed input windows (B^T d B), one column per tile,
//   M[36][O][cols]  forward: U[xi] (O x C) x V[xi] (C x cols), one GEMM per position xi,
//                   then A^T m A writes the 4x4 outputs;
//                   weight gradient: A dy A^T of the output tiles, and
//                   Z[xi] (O x C) += M[xi] (O x cols) x V[xi]^T, so that dW = G^T Z G.
// U[36][O][C] (G g G^T) is made once per call.
//
// Threads. The blocks depend on the shape only, never on the thread count: a GEMM rounds a
// column by where it falls in the block (oneDNN's last columns take another kernel), so the
// results are the same bit for bit at any thread count. Forward (and the input gradient, the
// same computation): blocks are sized so that V and M stay within a few MiB, and their number
// is a multiple of 4 (even work for 1, 2 or 4 threads). With at least as many blocks as
// threads each thread runs whole blocks with single-threaded GEMMs; with fewer, the blocks run
// one after the other, each split over all threads (channels for the transforms, the 36
// positions for the GEMMs). Weight gradient: the blocks run one after the other, split so, each
// position accumulating into its own Z[xi] in block order.
//
// The transforms work on 8 tiles at a time ("lanes"), in loops over the lanes that the
// compiler turns into vector instructions; they are compiled for AVX2 as well as the baseline,
// and the loader picks the one the CPU runs (target_clones). Not for FMA: fused and separate
// multiply-adds round differently, and both versions give the same bits as it is.
#include "tensor/cpu/conv_winograd.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "tensor/cpu/isa.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

#ifdef CUDL_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

// The loader's choice (target_clones), not cpu::kernel_isa(): CUDL_CPU_KERNELS does not
// reach these; where isa.h builds AVX2 copies, these get AVX2 clones.
#if defined(CUDL_CPU_HAS_AVX2_COPY)
#define CUDL_WINOGRAD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CUDL_WINOGRAD_CLONES
#endif

namespace cudl::cpu::winograd {

namespace {

constexpr int64_t kLanes = 8;

// A stride-1 3x3 correlation of x (n, c, h, w) padded by (ph, pw) into y (n, o, oh, ow).
struct Problem {
  int64_t n, c, h, w, o, oh, ow, ph, pw;
  int64_t tiles_h() const { return (oh + 3) / 4; }
  int64_t tiles_w() const { return (ow + 3) / 4; }
  int64_t tiles() const { return n * tiles_h() * tiles_w(); }
};

// c (m x n) = a (m x k) b (k x n) + beta c, row-major; b transposed (stored n x k) with
// trans_b. oneDNN's GEMM where cudl is built with it: on these shapes it ran 1.5x to 3.5x as
// fast as OpenBLAS 0.3.21's on an AVX2 machine, one thread each (e.g. 512 x 72 x 512: 34.8
// against 9.8 GFLOP/s).
// Runs inside parallel regions, so it does not throw: a failure is counted in `failures` and
// reported by check_gemms after the region.
void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          std::atomic<int>& failures) {
#ifdef CUDL_WITH_ONEDNN
  if (dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) !=
      dnnl_success)
    ++failures;
#else
  (void)failures;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
              lda, b, ldb, beta, c, ldc);
#endif
}

void check_gemms(const std::atomic<int>& failures) {
  CUDL_CHECK(failures == 0, "conv2d (Winograd): ", failures.load(), " of oneDNN's GEMM calls failed");
}

// G's fractions are divisions, as in the definition; on 8 kernels at a time they are vector
// instructions and cost no measurable time.
// G v for a 3-vector (v0, v1, v2): 6 values.
#define CUDL_WINOGRAD_G(v0, v1, v2, out, s)                      \
  do {                                                           \
    (out)[0 * (s)] = (v0) / 4;                                \
    (out)[1 * (s)] = -((v0) + (v1) + (v2)) / 6;               \
    (out)[2 * (s)] = -((v0) - (v1) + (v2)) / 6;               \
    (out)[3 * (s)] = (v0) / 24 + (v1) / 12 + (v2) / 6;  \
    (out)[4 * (s)] = (v0) / 24 - (v1) / 12 + (v2) / 6;  \
    (out)[5 * (s)] = (v2);                                       \
  } while (0)

// G^T v for a 6-vector: 3 values.
#define CUDL_WINOGRAD_GT(z0, z1, z2, z3, z4, z5, out, s)                          \
  do {                                                                            \
    (out)[0 * (s)] = (z0) / 4 - ((z1) + (z2)) / 6 + ((z3) + (z4)) / 24;  \
    (out)[1 * (s)] = ((z2) - (z1)) / 6 + ((z3) - (z4)) / 12;                \
    (out)[2 * (s)] = ((z3) + (z4) - (z1) - (z2)) / 6 + (z5);                   \
  } while (0)

// U[xi][row][col] = (G g G^T)[xi] for the rows [r0, r1) of U's (po x pc) planes, 8 columns at a
// time: g = w[row][col] (flip false), or w[col][row] turned by 180 degrees (flip true).
CUDL_WINOGRAD_CLONES
void transform_weight_rows(const float* w, int64_t wc, int64_t po, int64_t pc, bool flip,
                           int64_t r0, int64_t r1, float* u) {
  const int64_t stride = po * pc;
  alignas(32) float g[9][kLanes];
  alignas(32) float t[18][kLanes];  // G g: 6 x 3
  alignas(32) float out[36][kLanes];
  for (int64_t row = r0; row < r1; ++row) {
    for (int64_t c0 = 0; c0 < pc; c0 += kLanes) {
      const int64_t lanes = std::min(kLanes, pc - c0);
      for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t col = c0 + std::min(l, lanes - 1);
        const float* k = flip ? w + (col * wc + row) * 9 : w + (row * wc + col) * 9;
        for (int i = 0; i < 9; ++i) g[i][l] = flip ? k[8 - i] : k[i];
      }
      for (int j = 0; j < 3; ++j) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          CUDL_WINOGRAD_G(g[j][l], g[3 + j][l], g[6 + j][l], &t[j][l], 3 * kLanes);
      }
      for (int i = 0; i < 6; ++i) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          CUDL_WINOGRAD_G(t[i * 3][l], t[i * 3 + 1][l], t[i * 3 + 2][l], &out[i * 6][l], kLanes);
      }
      float* dst = u + row * pc + c0;
      for (int xi = 0; xi < 36; ++xi)
        for (int64_t l = 0; l < lanes; ++l) dst[xi * stride + l] = out[xi][l];
    }
  }
}

// dw[o][c] = G^T Z[.][o][c] G for the rows [o0, o1) of Z's (o x c) planes, 8 columns at a time.
CUDL_WINOGRAD_CLONES
void kernel_gradient_rows(const float* z, int64_t o_count, int64_t c_count, int64_t o0,
                          int64_t o1, float* dw) {
  const int64_t stride = o_count * c_count;
  alignas(32) float v[36][kLanes];
  alignas(32) float t[18][kLanes];  // G^T z: 3 x 6
  alignas(32) float g[9][kLanes];
  for (int64_t o = o0; o < o1; ++o) {
    for (int64_t c0 = 0; c0 < c_count; c0 += kLanes) {
      const int64_t lanes = std::min(kLanes, c_count - c0);
      const float* src = z + o * c_count + c0;
      for (int xi = 0; xi < 36; ++xi)
        for (int64_t l = 0; l < kLanes; ++l) v[xi][l] = src[xi * stride + std::min(l, lanes - 1)];
      for (int j = 0; j < 6; ++j) {  // G^T z, column j
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          CUDL_WINOGRAD_GT(v[j][l], v[6 + j][l], v[12 + j][l], v[18 + j][l], v[24 + j][l],
                           v[30 + j][l], &t[j][l], 6 * kLanes);
      }
      for (int i = 0; i < 3; ++i) {  // (G^T z) G, row i
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          CUDL_WINOGRAD_GT(t[i * 6][l], t[i * 6 + 1][l], t[i * 6 + 2][l], t[i * 6 + 3][l],
                           t[i * 6 + 4][l], t[i * 6 + 5][l], &g[i * 3][l], kLanes);
      }
      float* dst = dw + (o * c_count + c0) * 9;
      for (int64_t l = 0; l < lanes; ++l)
        for (int k = 0; k < 9; ++k) dst[l * 9 + k] = g[k][l];
    }
  }
}

// U[36][o][c] of the forward convolution (flip false: u from w[o][c]) or of its transpose
// (flip true: the problem's o is w's c and its c is w's o, the kernels turned by 180 degrees).
void transform_weights(const float* w, int64_t wo, int64_t wc, bool flip, float* u) {
  const int64_t po = flip ? wc : wo, pc = flip ? wo : wc;
  parallel_for(0, po, 8, [&](int64_t r0, int64_t r1) {
    transform_weight_rows(w, wc, po, pc, flip, r0, r1, u);
  });
}

// The tiles of a block as runs along rows of tiles ("segments"): `len` tiles of image n's row of
// tiles ty, from column tx0 on, in the block's columns [col, col + len). `cols` is the block's
// tile count rounded up to the lanes; V's and M's columns past the count are zero.
struct Block {
  struct Segment {
    int64_t n, ty, tx0, len, col;
  };
  int64_t count = 0, cols = 0;
  std::vector<Segment> segments;

  void set(const Problem& p, int64_t first, int64_t end) {
    count = end - first;
    cols = (count + kLanes - 1) / kLanes * kLanes;
    segments.clear();
    const int64_t th = p.tiles_h(), tw = p.tiles_w();
    for (int64_t t = first; t < end;) {
      const int64_t r = t % (th * tw), tx = r % tw;
      const int64_t len = std::min(tw - tx, end - t);
      segments.push_back({t / (th * tw), r / tw, tx, len, t - first});
      t += len;
    }
  }
};

// B^T d B: the rows [0, 6) of d combined (B^T), then the columns.
#define CUDL_WINOGRAD_BT(d0, d1, d2, d3, d4, d5, out, s)     \
  do {                                                      \
    (out)[0 * (s)] = 4 * (d0) - 5 * (d2) + (d4);            \
    (out)[1 * (s)] = -4 * (d1) - 4 * (d2) + (d3) + (d4);    \
    (out)[2 * (s)] = 4 * (d1) - 4 * (d2) - (d3) + (d4);     \
    (out)[3 * (s)] = -2 * (d1) - (d2) + 2 * (d3) + (d4);    \
    (out)[4 * (s)] = 2 * (d1) - (d2) - 2 * (d3) + (d4);     \
    (out)[5 * (s)] = 4 * (d1) - 5 * (d3) + (d5);            \
  } while (0)

// dst[(j % 4) * wq + j / 4] = row[x0 + j] for j in [lo, hi) and 0 elsewhere in [0, n_cols): one
// input row split by column modulo 4 (input_tiles). Whole groups of 4 go four phases at a time
// (strided loads the compiler vectorises); no pointer outside the row is formed.
CUDL_WINOGRAD_CLONES
void split_phases(const float* row, int64_t x0, int64_t lo, int64_t hi, int64_t n_cols,
                  int64_t wq, float* dst) {
  int64_t j = 0;
  for (; j < lo; ++j) dst[(j & 3) * wq + (j >> 2)] = 0.0f;
  for (; j < hi && (j & 3) != 0; ++j) dst[(j & 3) * wq + (j >> 2)] = row[x0 + j];
  const int64_t q0 = j >> 2, groups = std::max<int64_t>(hi / 4 - q0, 0);
  if (groups > 0) {
    const float* r = row + (x0 + 4 * q0);
    float *d0 = dst + q0, *d1 = d0 + wq, *d2 = d1 + wq, *d3 = d2 + wq;
#pragma omp simd
    for (int64_t q = 0; q < groups; ++q) {
      d0[q] = r[4 * q];
      d1[q] = r[4 * q + 1];
      d2[q] = r[4 * q + 2];
      d3[q] = r[4 * q + 3];
    }
    j += 4 * groups;
  }
  for (; j < hi; ++j) dst[(j & 3) * wq + (j >> 2)] = row[x0 + j];
  for (; j < n_cols; ++j) dst[(j & 3) * wq + (j >> 2)] = 0.0f;
}

// V[xi][c][col] = (B^T d B)[xi] of the block's tiles, for channels [c0, c1) of x. Per segment
// and channel: the 6 input rows its windows read, zero-padded and split by column modulo 4
// (phase), are combined by B^T across their whole width at once; then window q's 6 columns are
// phases 0-3 at q and phases 0-1 at q + 1, so 8 side-by-side windows read 8 consecutive floats
// of each.
CUDL_WINOGRAD_CLONES
void input_tiles(const Problem& p, const float* x, const Block& b, int64_t c0, int64_t c1,
                 float* v) {
  const int64_t ldv = p.c * b.cols, hw = p.h * p.w;
  const int64_t wq = p.tiles_w() + kLanes + 1;  // floats per phase: the windows and a group's slack
  std::vector<float> buf(2 * 6 * 4 * wq, 0.0f);
  float* in = buf.data();                 // in[(r * 4 + phase) * wq + q]: input row r
  float* rows = buf.data() + 6 * 4 * wq;  // rows[(k * 4 + phase) * wq + q]: (B^T d)[k]
  alignas(32) float out[36][kLanes];
  for (int64_t c = c0; c < c1; ++c) {
    const float* plane = x + c * hw;
    for (const Block::Segment& s : b.segments) {
      const float* src = plane + s.n * p.c * hw;
      const int64_t x0 = 4 * s.tx0 - p.pw, n_cols = 4 * s.len + 2, n_q = s.len + 1;
      // The columns [x0, x0 + n_cols) of the 6 rows, zero outside the image.
      const int64_t lo = std::clamp<int64_t>(-x0, 0, n_cols);
      const int64_t hi = std::clamp<int64_t>(p.w - x0, lo, n_cols);
      for (int r = 0; r < 6; ++r) {
        const int64_t yy = 4 * s.ty - p.ph + r;
        float* dst = in + r * 4 * wq;
        if (yy < 0 || yy >= p.h) {
          for (int phase = 0; phase < 4; ++phase)
            std::fill(dst + phase * wq, dst + phase * wq + n_q, 0.0f);
        } else {
          split_phases(src + yy * p.w, x0, lo, hi, n_cols, wq, dst);
        }
      }
      for (int phase = 0; phase < 4; ++phase) {
        const float* d = in + phase * wq;
#pragma omp simd
        for (int64_t q = 0; q < n_q; ++q) {
          CUDL_WINOGRAD_BT(d[q], d[4 * wq + q], d[8 * wq + q], d[12 * wq + q], d[16 * wq + q],
                           d[20 * wq + q], &rows[phase * wq + q], 4 * wq);
        }
      }
      for (int64_t g = 0; g < s.len; g += kLanes) {
        const int64_t lanes = std::min(kLanes, s.len - g);
        float* dst = v + c * b.cols + s.col + g;
        for (int k = 0; k < 6; ++k) {
          const float* e = rows + k * 4 * wq + g;
          if (lanes == kLanes) {
#pragma omp simd
            for (int l = 0; l < kLanes; ++l) {
              CUDL_WINOGRAD_BT(e[l], e[wq + l], e[2 * wq + l], e[3 * wq + l], e[l + 1],
                               e[wq + l + 1], dst + k * 6 * ldv + l, ldv);
            }
          } else {
#pragma omp simd
            for (int l = 0; l < kLanes; ++l) {
              CUDL_WINOGRAD_BT(e[l], e[wq + l], e[2 * wq + l], e[3 * wq + l], e[l + 1],
                               e[wq + l + 1], &out[k * 6][l], kLanes);
            }
            for (int j = 0; j < 6; ++j)
              for (int64_t l = 0; l < lanes; ++l) dst[(k * 6 + j) * ldv + l] = out[k * 6 + j][l];
          }
        }
      }
    }
    for (int xi = 0; xi < 36; ++xi)  // the columns past the tiles
      std::fill(v + xi * ldv + c * b.cols + b.count, v + xi * ldv + (c + 1) * b.cols, 0.0f);
  }
}

// A^T m for a 6-vector m: 4 values.
#define CUDL_WINOGRAD_AT(m0, m1, m2, m3, m4, m5, out, s)     \
  do {                                                      \
    (out)[0 * (s)] = (m0) + (m1) + (m2) + (m3) + (m4);      \
    (out)[1 * (s)] = (m1) - (m2) + 2 * (m3) - 2 * (m4);     \
    (out)[2 * (s)] = (m1) + (m2) + 4 * (m3) + 4 * (m4);     \
    (out)[3 * (s)] = (m1) - (m2) + 8 * (m3) - 8 * (m4) + (m5); \
  } while (0)

// A d for a 4-vector d: 6 values.
#define CUDL_WINOGRAD_A(d0, d1, d2, d3, out, s)                 \
  do {                                                          \
    (out)[0 * (s)] = (d0);                                      \
    (out)[1 * (s)] = (d0) + (d1) + (d2) + (d3);                 \
    (out)[2 * (s)] = (d0) - (d1) + (d2) - (d3);                 \
    (out)[3 * (s)] = (d0) + 2 * (d1) + 4 * (d2) + 8 * (d3);     \
    (out)[4 * (s)] = (d0) - 2 * (d1) + 4 * (d2) - 8 * (d3);     \
    (out)[5 * (s)] = (d3);                                      \
  } while (0)

// y = A^T m A (+ bias) of the block's tiles, for output channels [o0, o1). M's rows are read 8
// columns at a time, past `cols` in a last partial group (BlockScratch leaves room for it).
CUDL_WINOGRAD_CLONES
void output_tiles(const Problem& p, const float* m, const Block& b, const float* bias,
                  int64_t o0, int64_t o1, float* y) {
  const int64_t ldm = p.o * b.cols, ohw = p.oh * p.ow;
  alignas(32) float t[24][kLanes];  // A^T m: 4 x 6
  alignas(32) float out[16][kLanes];
  alignas(32) float row[4 * kLanes];
  for (int64_t o = o0; o < o1; ++o) {
    const float add = bias ? bias[o] : 0.0f;
    for (const Block::Segment& s : b.segments) {
      float* plane = y + (s.n * p.o + o) * ohw;
      for (int64_t g = 0; g < s.len; g += kLanes) {
        const float* src = m + o * b.cols + s.col + g;
        for (int k = 0; k < 6; ++k) {
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {
            CUDL_WINOGRAD_AT(src[k * ldm + l], src[(6 + k) * ldm + l], src[(12 + k) * ldm + l],
                             src[(18 + k) * ldm + l], src[(24 + k) * ldm + l],
                             src[(30 + k) * ldm + l], &t[k][l], 6 * kLanes);
          }
        }
        for (int r = 0; r < 4; ++r) {
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {
            CUDL_WINOGRAD_AT(t[r * 6][l], t[r * 6 + 1][l], t[r * 6 + 2][l], t[r * 6 + 3][l],
                             t[r * 6 + 4][l], t[r * 6 + 5][l], &out[r * 4][l], kLanes);
            for (int j = 0; j < 4; ++j) out[r * 4 + j][l] += add;
          }
        }
        // Each output row of the 8 tiles is one run of up to 32 floats.
        const int64_t ox = 4 * (s.tx0 + g);
        const int64_t n_out = std::min(4 * std::min(kLanes, s.len - g), p.ow - ox);
        for (int i = 0; i < 4; ++i) {
          const int64_t oy = 4 * s.ty + i;
          if (oy >= p.oh) break;
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {  // the 4 columns of each tile side by side
            row[4 * l] = out[i * 4][l];
            row[4 * l + 1] = out[i * 4 + 1][l];
            row[4 * l + 2] = out[i * 4 + 2][l];
            row[4 * l + 3] = out[i * 4 + 3][l];
          }
          std::copy(row, row + n_out, plane + oy * p.ow + ox);
        }
      }
    }
  }
}

// M[xi][o][col] = (A dy A^T)[xi] of the block's output tiles (zero outside dy and in the
// columns past the tiles), for channels [o0, o1) of dy (n, o, oh, ow).
CUDL_WINOGRAD_CLONES
void output_grad_tiles(const Problem& p, const float* dy, const Block& b, int64_t o0, int64_t o1,
                       float* m) {
  const int64_t ldm = p.o * b.cols, ohw = p.oh * p.ow;
  alignas(32) float d[16][kLanes];
  alignas(32) float t[24][kLanes];  // A d: 6 x 4
  alignas(32) float out[36][kLanes];
  alignas(32) float row[4 * kLanes];
  for (int64_t o = o0; o < o1; ++o) {
    for (const Block::Segment& s : b.segments) {
      const float* plane = dy + (s.n * p.o + o) * ohw;
      for (int64_t g = 0; g < s.len; g += kLanes) {
        const int64_t lanes = std::min(kLanes, s.len - g);
        const int64_t ox = 4 * (s.tx0 + g), n_in = std::min(4 * lanes, p.ow - ox);
        for (int i = 0; i < 4; ++i) {  // the 8 tiles' row i, zero past dy and the tiles
          const int64_t oy = 4 * s.ty + i;
          const int64_t n = oy < p.oh ? n_in : 0;
          if (n > 0) std::copy(plane + oy * p.ow + ox, plane + oy * p.ow + ox + n, row);
          std::fill(row + n, row + 4 * kLanes, 0.0f);
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {  // column j of each tile into d[i * 4 + j]
            d[i * 4][l] = row[4 * l];
            d[i * 4 + 1][l] = row[4 * l + 1];
            d[i * 4 + 2][l] = row[4 * l + 2];
            d[i * 4 + 3][l] = row[4 * l + 3];
          }
        }
        for (int k = 0; k < 4; ++k) {  // A d, column k
#pragma omp simd
          for (int l = 0; l < kLanes; ++l)
            CUDL_WINOGRAD_A(d[k][l], d[4 + k][l], d[8 + k][l], d[12 + k][l], &t[k][l], 4 * kLanes);
        }
        for (int r = 0; r < 6; ++r) {  // (A d) A^T, row r
#pragma omp simd
          for (int l = 0; l < kLanes; ++l)
            CUDL_WINOGRAD_A(t[r * 4][l], t[r * 4 + 1][l], t[r * 4 + 2][l], t[r * 4 + 3][l],
                            &out[r * 6][l], kLanes);
        }
        float* dst = m + o * b.cols + s.col + g;
        if (lanes == kLanes) {
          for (int xi = 0; xi < 36; ++xi) std::copy(out[xi], out[xi] + kLanes, dst + xi * ldm);
        } else {
          for (int xi = 0; xi < 36; ++xi) std::copy(out[xi], out[xi] + lanes, dst + xi * ldm);
        }
      }
    }
    for (int xi = 0; xi < 36; ++xi)  // the columns past the tiles
      std::fill(m + xi * ldm + o * b.cols + b.count, m + xi * ldm + (o + 1) * b.cols, 0.0f);
  }
}

// Tiles per block: V and M within `budget` bytes (but at least 32 tiles), and the blocks a
// multiple of `multiple` in number, of equal size up to the rounding to the lanes.
int64_t block_tiles(const Problem& p, int64_t budget, int64_t multiple) {
  const int64_t per_tile = 36 * (p.c + p.o) * int64_t(sizeof(float));
  const int64_t most = std::max<int64_t>(budget / per_tile, 32);
  int64_t blocks = (p.tiles() + most - 1) / most;
  blocks = (blocks + multiple - 1) / multiple * multiple;
  const int64_t b = (p.tiles() + blocks - 1) / blocks;
  return (b + kLanes - 1) / kLanes * kLanes;
}

constexpr int64_t kForwardBudget = int64_t(8) << 20;
constexpr int64_t kWeightsBudget = int64_t(16) << 20;

// Scratch of one block: V and M (with a group of lanes' room at its end: output_tiles reads
// whole groups).
struct BlockScratch {
  Tensor v_t, m_t;
  Block block;
  BlockScratch(const Problem& p, int64_t tiles)
      : v_t(empty({36 * p.c * tiles}, kFloat32)),
        m_t(empty({36 * p.o * tiles + kLanes}, kFloat32)) {}
};

// y = the problem's correlation of x with U[36][o][c] (+ bias).
void run(const Problem& p, const float* x, const float* u, const float* bias, float* y) {
  const int64_t tiles = p.tiles();
  const int64_t bt = block_tiles(p, kForwardBudget, 4);
  const int64_t blocks = (tiles + bt - 1) / bt;
  std::atomic<int> failures{0};
  // One block; its steps split over the threads when the blocks run one after the other (inside
  // parallel_tasks' region they run on the calling thread).
  auto run_block = [&](int64_t blk, BlockScratch& s) {
    Block& b = s.block;
    b.set(p, blk * bt, std::min(tiles, (blk + 1) * bt));
    float* v = s.v_t.data<float>();
    float* m = s.m_t.data<float>();
    parallel_for(0, p.c, 1, [&](int64_t c0, int64_t c1) { input_tiles(p, x, b, c0, c1, v); });
    parallel_for(0, 36, 1, [&](int64_t x0, int64_t x1) {
      for (int64_t xi = x0; xi < x1; ++xi)
        gemm(false, p.o, b.cols, p.c, u + xi * p.o * p.c, p.c, v + xi * p.c * b.cols, b.cols,
             0.0f, m + xi * p.o * b.cols, b.cols, failures);
    });
    parallel_for(0, p.o, 1, [&](int64_t o0, int64_t o1) { output_tiles(p, m, b, bias, o0, o1, y); });
  };
  if (blocks >= get_num_threads()) {
    std::vector<BlockScratch> scratch;
    for (int i = 0; i < parallel_task_threads(blocks); ++i) scratch.emplace_back(p, bt);
    parallel_tasks(blocks, [&](int64_t blk, int th) { run_block(blk, scratch[th]); });
  } else {
    BlockScratch s(p, bt);
    for (int64_t blk = 0; blk < blocks; ++blk) run_block(blk, s);
  }
  check_gemms(failures);
}

}  // namespace

bool applies(const ConvGeometry& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.groups == 1 && !g.channels_last && g.ph >= 0 && g.ph <= 2 && g.pw >= 0 &&
         g.pw <= 2 && g.h >= 3 && g.w >= 3;
}

namespace {

// The problem's correlation of `in` with w's kernels (flip: turned and transposed, see
// transform_weights) into `out`.
void correlate(const Problem& p, const float* in, const float* w, int64_t wo, int64_t wc,
               bool flip, const float* bias, float* out) {
  if (p.tiles() == 0) return;
  Tensor u = empty({36 * wo * wc}, kFloat32);
  transform_weights(w, wo, wc, flip, u.data<float>());
  run(p, in, u.data<float>(), bias, out);
}

}  // namespace

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y) {
  CUDL_CHECK(applies(g), "winograd::conv2d_forward: not a 3x3 stride-1 convolution");
  correlate({g.n, g.c, g.h, g.w, g.o, g.oh, g.ow, g.ph, g.pw}, x, w, g.o, g.c, false, bias, y);
}

void conv2d_backward_data(const ConvGeometry& g, const float* w, const float* dy, float* dx) {
  CUDL_CHECK(applies(g), "winograd::conv2d_backward_data: not a 3x3 stride-1 convolution");
  // dx = dy correlated with the turned, transposed kernels, padded by 2 - p: the output size
  // oh + 2 (2 - ph) - 2 is h again.
  correlate({g.n, g.o, g.oh, g.ow, g.c, g.h, g.w, 2 - g.ph, 2 - g.pw}, dy, w, g.o, g.c, true,
            nullptr, dx);
}

void conv2d_backward_weights(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  CUDL_CHECK(applies(g), "winograd::conv2d_backward_weights: not a 3x3 stride-1 convolution");
  const Problem p{g.n, g.c, g.h, g.w, g.o, g.oh, g.ow, g.ph, g.pw};
  const int64_t tiles = p.tiles();
  Tensor z_t = zeros({36 * g.o * g.c}, kFloat32);
  float* z = z_t.data<float>();
  if (tiles > 0) {
    const int64_t bt = block_tiles(p, kWeightsBudget, 1);
    std::atomic<int> failures{0};
    BlockScratch s(p, bt);
    float* v = s.v_t.data<float>();
    float* m = s.m_t.data<float>();
    for (int64_t t0 = 0; t0 < tiles; t0 += bt) {
      Block& b = s.block;
      b.set(p, t0, std::min(tiles, t0 + bt));
      parallel_for(0, p.c, 1, [&](int64_t c0, int64_t c1) { input_tiles(p, x, b, c0, c1, v); });
      parallel_for(0, p.o, 1,
                   [&](int64_t o0, int64_t o1) { output_grad_tiles(p, dy, b, o0, o1, m); });
      parallel_for(0, 36, 1, [&](int64_t x0, int64_t x1) {
        for (int64_t xi = x0; xi < x1; ++xi)  // Z[xi] (o x c) += M[xi] V[xi]^T
          gemm(true, p.o, p.c, b.cols, m + xi * p.o * b.cols, b.cols, v + xi * p.c * b.cols,
               b.cols, 1.0f, z + xi * p.o * p.c, p.c, failures);
      });
    }
    check_gemms(failures);
  }
  parallel_for(0, g.o, 8,
               [&](int64_t o0, int64_t o1) { kernel_gradient_rows(z, g.o, g.c, o0, o1, dw); });
}

}  // namespace cudl::cpu::winograd
