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
// Threads. Forward (and the input gradient, the same computation): blocks are sized so that V
// and M stay within a few MiB, there are at least as many blocks as threads, and each thread
// runs whole blocks with single-threaded GEMMs. Weight gradient: the blocks run one after the
// other, the transforms split over channels and the GEMMs over the 36 positions, each position
// accumulating into its own Z[xi] in block order (so the sum does not depend on the threads).
//
// The transforms work on 8 tiles at a time ("lanes"), in loops over the lanes that the
// compiler turns into vector instructions; they are compiled for AVX2 + FMA as well as the
// baseline, and the loader picks the one the CPU runs (target_clones).
#include "tensor/cpu/conv_winograd.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensor/parallel.h"
#include "tensor/tensor.h"

#ifdef CUDL_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CUDL_WINOGRAD_CLONES __attribute__((target_clones("arch=haswell", "default")))
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
void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef CUDL_WITH_ONEDNN
  const dnnl_status_t st =
      dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  CUDL_CHECK(st == dnnl_success, "winograd: dnnl_sgemm failed (status ", int(st), ")");
#else
  cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
              lda, b, ldb, beta, c, ldc);
#endif
}

// G g G^T for one 3x3 kernel g (row-major), into u[xi * stride] for the 36 positions xi.
void transform_kernel(const float g[9], float* u, int64_t stride) {
  float t[6][3];  // G g
  for (int j = 0; j < 3; ++j) {
    const float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
    t[0][j] = g0 / 4;
    t[1][j] = -(g0 + g1 + g2) / 6;
    t[2][j] = -(g0 - g1 + g2) / 6;
    t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;
    t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;
    t[5][j] = g2;
  }
  for (int i = 0; i < 6; ++i) {  // (G g) G^T
    const float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
    float* r = u + i * 6 * stride;
    r[0 * stride] = g0 / 4;
    r[1 * stride] = -(g0 + g1 + g2) / 6;
    r[2 * stride] = -(g0 - g1 + g2) / 6;
    r[3 * stride] = g0 / 24 + g1 / 12 + g2 / 6;
    r[4 * stride] = g0 / 24 - g1 / 12 + g2 / 6;
    r[5 * stride] = g2;
  }
}

// G^T z G for the 36 values z[xi * stride]: one 3x3 kernel's gradient (row-major) into g.
void kernel_gradient(const float* z, int64_t stride, float g[9]) {
  auto gt = [](const float* v, int64_t s, float* out, int64_t os) {  // G^T v
    const float z0 = v[0], z1 = v[s], z2 = v[2 * s], z3 = v[3 * s], z4 = v[4 * s], z5 = v[5 * s];
    out[0] = z0 / 4 - z1 / 6 - z2 / 6 + z3 / 24 + z4 / 24;
    out[os] = -z1 / 6 + z2 / 6 + z3 / 12 - z4 / 12;
    out[2 * os] = -z1 / 6 - z2 / 6 + z3 / 6 + z4 / 6 + z5;
  };
  float t[3][6];  // G^T z, column j
  for (int j = 0; j < 6; ++j) gt(z + j * stride, 6 * stride, &t[0][j], 6);
  for (int i = 0; i < 3; ++i) gt(t[i], 1, g + i * 3, 1);  // (G^T z) G, row i
}

// U[36][o][c] of the forward convolution (flip false: u from w[o][c]) or of its transpose
// (flip true: the problem's o is w's c and its c is w's o, the kernels turned by 180 degrees).
void transform_weights(const float* w, int64_t wo, int64_t wc, bool flip, float* u) {
  const int64_t po = flip ? wc : wo, pc = flip ? wo : wc, stride = po * pc;
  parallel_for(0, wo, 8, [&](int64_t o0, int64_t o1) {
    float g[9];
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < wc; ++c) {
        const float* k = w + (o * wc + c) * 9;
        for (int i = 0; i < 9; ++i) g[i] = flip ? k[8 - i] : k[i];
        const int64_t row = flip ? c : o, col = flip ? o : c;
        transform_kernel(g, u + row * pc + col, stride);
      }
  });
}

// Where the tiles of a block are: image and the top-left input position of each tile's
// window (negative in the padding). `cols` is the block's tile count rounded up to the lanes;
// the lanes past its end repeat its last tile, so that every window read is inside x.
struct Block {
  int64_t t0 = 0, count = 0, cols = 0;
  std::vector<int64_t> n, y0, x0;
  // Per group of 8 lanes: the 8 windows are inside the image, in one image and one row of
  // tiles, side by side (x0 steps of 4): their 6 input rows are contiguous.
  std::vector<char> row_group;

  void set(const Problem& p, int64_t first, int64_t end) {
    t0 = first;
    count = end - first;
    cols = (count + kLanes - 1) / kLanes * kLanes;
    n.resize(cols);
    y0.resize(cols);
    x0.resize(cols);
    const int64_t th = p.tiles_h(), tw = p.tiles_w();
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t t = first + std::min(i, count - 1);
      const int64_t r = t % (th * tw);
      n[i] = t / (th * tw);
      y0[i] = (r / tw) * 4 - p.ph;
      x0[i] = (r % tw) * 4 - p.pw;
    }
    row_group.assign(cols / kLanes, 0);
    for (int64_t g = 0; g < cols; g += kLanes) {
      bool ok = y0[g] >= 0 && y0[g] + 6 <= p.h && x0[g] >= 0 && x0[g] + 4 * (kLanes - 1) + 6 <= p.w;
      for (int64_t l = 1; l < kLanes && ok; ++l)
        ok = n[g + l] == n[g] && y0[g + l] == y0[g] && x0[g + l] == x0[g] + 4 * l;
      row_group[g / kLanes] = ok;
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

// V[xi][c][col] = (B^T d B)[xi] of the block's tiles, for channels [c0, c1) of x.
CUDL_WINOGRAD_CLONES
void input_tiles(const Problem& p, const float* x, const Block& b, int64_t c0, int64_t c1,
                 float* v) {
  const int64_t ldv = p.c * b.cols, hw = p.h * p.w;
  alignas(32) float d[36][kLanes];
  alignas(32) float t[36][kLanes];
  constexpr int64_t kRow = 4 * (kLanes - 1) + 6;  // the input columns 8 side-by-side windows read
  alignas(32) float rows[6][kRow];
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t g = 0; g < b.cols; g += kLanes) {
      float* out = v + c * b.cols + g;
      if (b.row_group[g / kLanes]) {
        // B^T over the 6 rows at once, then B over each lane's 6 columns.
        const float* src = x + (b.n[g] * p.c + c) * hw + b.y0[g] * p.w + b.x0[g];
#pragma omp simd
        for (int64_t j = 0; j < kRow; ++j) {
          CUDL_WINOGRAD_BT(src[j], src[p.w + j], src[2 * p.w + j], src[3 * p.w + j],
                           src[4 * p.w + j], src[5 * p.w + j], &rows[0][j], kRow);
        }
        for (int r = 0; r < 6; ++r) {
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {
            const float* e = &rows[r][4 * l];
            CUDL_WINOGRAD_BT(e[0], e[1], e[2], e[3], e[4], e[5], out + r * 6 * ldv + l, ldv);
          }
        }
        continue;
      }
      for (int64_t l = 0; l < kLanes; ++l) {  // gather the windows, zero in the padding
        const float* plane = x + (b.n[g + l] * p.c + c) * hw;
        const int64_t y0 = b.y0[g + l], x0 = b.x0[g + l];
        for (int i = 0; i < 6; ++i) {
          const int64_t yy = y0 + i;
          for (int j = 0; j < 6; ++j) {
            const int64_t xx = x0 + j;
            d[i * 6 + j][l] =
                yy >= 0 && yy < p.h && xx >= 0 && xx < p.w ? plane[yy * p.w + xx] : 0.0f;
          }
        }
      }
      for (int s = 0; s < 6; ++s) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          CUDL_WINOGRAD_BT(d[s][l], d[6 + s][l], d[12 + s][l], d[18 + s][l], d[24 + s][l],
                           d[30 + s][l], &t[s][l], 6 * kLanes);
        }
      }
      for (int r = 0; r < 6; ++r) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          CUDL_WINOGRAD_BT(t[r * 6][l], t[r * 6 + 1][l], t[r * 6 + 2][l], t[r * 6 + 3][l],
                           t[r * 6 + 4][l], t[r * 6 + 5][l], out + r * 6 * ldv + l, ldv);
        }
      }
    }
  }
}

// y = A^T m A (+ bias) of the block's tiles, for output channels [o0, o1).
CUDL_WINOGRAD_CLONES
void output_tiles(const Problem& p, const float* m, const Block& b, const float* bias,
                  int64_t o0, int64_t o1, float* y) {
  const int64_t ldm = p.o * b.cols, ohw = p.oh * p.ow;
  alignas(32) float t[24][kLanes];  // A^T m: 4 x 6
  alignas(32) float out[16][kLanes];
  for (int64_t o = o0; o < o1; ++o) {
    const float add = bias ? bias[o] : 0.0f;
    for (int64_t g = 0; g < b.cols; g += kLanes) {
      const float* src = m + o * b.cols + g;
      for (int s = 0; s < 6; ++s) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const float m0 = src[s * ldm + l], m1 = src[(6 + s) * ldm + l],
                      m2 = src[(12 + s) * ldm + l], m3 = src[(18 + s) * ldm + l],
                      m4 = src[(24 + s) * ldm + l], m5 = src[(30 + s) * ldm + l];
          t[s][l] = m0 + m1 + m2 + m3 + m4;
          t[6 + s][l] = m1 - m2 + 2 * m3 - 2 * m4;
          t[12 + s][l] = m1 + m2 + 4 * m3 + 4 * m4;
          t[18 + s][l] = m1 - m2 + 8 * m3 - 8 * m4 + m5;
        }
      }
      for (int r = 0; r < 4; ++r) {
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const float m0 = t[r * 6][l], m1 = t[r * 6 + 1][l], m2 = t[r * 6 + 2][l],
                      m3 = t[r * 6 + 3][l], m4 = t[r * 6 + 4][l], m5 = t[r * 6 + 5][l];
          out[r * 4][l] = m0 + m1 + m2 + m3 + m4 + add;
          out[r * 4 + 1][l] = m1 - m2 + 2 * m3 - 2 * m4 + add;
          out[r * 4 + 2][l] = m1 + m2 + 4 * m3 + 4 * m4 + add;
          out[r * 4 + 3][l] = m1 - m2 + 8 * m3 - 8 * m4 + m5 + add;
        }
      }
      const int64_t lanes = std::min(kLanes, b.count - g);
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t oy = b.y0[g + l] + p.ph, ox = b.x0[g + l] + p.pw;
        const int64_t rows = std::min<int64_t>(4, p.oh - oy), cols = std::min<int64_t>(4, p.ow - ox);
        float* dst = y + (b.n[g + l] * p.o + o) * ohw + oy * p.ow + ox;
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) dst[i * p.ow + j] = out[i * 4 + j][l];
      }
    }
  }
}

// M[xi][o][col] = (A dy A^T)[xi] of the block's output tiles (zero outside dy and in the
// lanes past the block's end), for channels [o0, o1) of dy (n, o, oh, ow).
CUDL_WINOGRAD_CLONES
void output_grad_tiles(const Problem& p, const float* dy, const Block& b, int64_t o0, int64_t o1,
                       float* m) {
  const int64_t ldm = p.o * b.cols, ohw = p.oh * p.ow;
  alignas(32) float d[16][kLanes];
  alignas(32) float t[24][kLanes];  // A d: 6 x 4
  for (int64_t o = o0; o < o1; ++o) {
    for (int64_t g = 0; g < b.cols; g += kLanes) {
      const int64_t lanes = std::min(kLanes, b.count - g);
      for (int64_t l = 0; l < kLanes; ++l) {
        if (l >= lanes) {
          for (int k = 0; k < 16; ++k) d[k][l] = 0.0f;
          continue;
        }
        const int64_t oy = b.y0[g + l] + p.ph, ox = b.x0[g + l] + p.pw;
        const int64_t rows = std::min<int64_t>(4, p.oh - oy), cols = std::min<int64_t>(4, p.ow - ox);
        const float* src = dy + (b.n[g + l] * p.o + o) * ohw + oy * p.ow + ox;
        for (int64_t i = 0; i < 4; ++i)
          for (int64_t j = 0; j < 4; ++j)
            d[i * 4 + j][l] = i < rows && j < cols ? src[i * p.ow + j] : 0.0f;
      }
      for (int s = 0; s < 4; ++s) {  // A d, column s
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const float d0 = d[s][l], d1 = d[4 + s][l], d2 = d[8 + s][l], d3 = d[12 + s][l];
          t[s][l] = d0;
          t[4 + s][l] = d0 + d1 + d2 + d3;
          t[8 + s][l] = d0 - d1 + d2 - d3;
          t[12 + s][l] = d0 + 2 * d1 + 4 * d2 + 8 * d3;
          t[16 + s][l] = d0 - 2 * d1 + 4 * d2 - 8 * d3;
          t[20 + s][l] = d3;
        }
      }
      float* out = m + o * b.cols + g;
      for (int r = 0; r < 6; ++r) {  // (A d) A^T, row r
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) {
          const float d0 = t[r * 4][l], d1 = t[r * 4 + 1][l], d2 = t[r * 4 + 2][l],
                      d3 = t[r * 4 + 3][l];
          float* e = out + r * 6 * ldm + l;
          e[0] = d0;
          e[ldm] = d0 + d1 + d2 + d3;
          e[2 * ldm] = d0 - d1 + d2 - d3;
          e[3 * ldm] = d0 + 2 * d1 + 4 * d2 + 8 * d3;
          e[4 * ldm] = d0 - 2 * d1 + 4 * d2 - 8 * d3;
          e[5 * ldm] = d3;
        }
      }
    }
  }
}

// Tiles per block: V and M within `budget` bytes, a multiple of the lanes, at least 32 tiles;
// with `threads` > 1, at most a thread's share of the tiles.
int64_t block_tiles(const Problem& p, int64_t budget, int threads) {
  const int64_t per_tile = 36 * (p.c + p.o) * int64_t(sizeof(float));
  int64_t b = std::max<int64_t>(budget / per_tile, 32);
  const int64_t share = (p.tiles() + threads - 1) / threads;
  b = std::min(b, std::max<int64_t>(share, kLanes));
  return (b + kLanes - 1) / kLanes * kLanes;
}

constexpr int64_t kForwardBudget = int64_t(8) << 20;
constexpr int64_t kWeightsBudget = int64_t(16) << 20;

// Scratch of one block: V and M.
struct BlockScratch {
  Tensor v_t, m_t;
  Block block;
  BlockScratch(const Problem& p, int64_t tiles)
      : v_t(empty({36 * p.c * tiles}, kFloat32)), m_t(empty({36 * p.o * tiles}, kFloat32)) {}
};

// y = the problem's correlation of x with U[36][o][c] (+ bias).
void run(const Problem& p, const float* x, const float* u, const float* bias, float* y) {
  const int64_t tiles = p.tiles();
  const int64_t bt = block_tiles(p, kForwardBudget, get_num_threads());
  const int64_t blocks = (tiles + bt - 1) / bt;
  const int nthreads = parallel_task_threads(blocks);
  std::vector<BlockScratch> scratch;
  for (int i = 0; i < nthreads; ++i) scratch.emplace_back(p, bt);
  // One block: its steps split over threads when the blocks themselves run one at a time.
  parallel_tasks(blocks, [&](int64_t blk, int th) {
    BlockScratch& s = scratch[th];
    Block& b = s.block;
    b.set(p, blk * bt, std::min(tiles, (blk + 1) * bt));
    float* v = s.v_t.data<float>();
    float* m = s.m_t.data<float>();
    parallel_for(0, p.c, 4, [&](int64_t c0, int64_t c1) { input_tiles(p, x, b, c0, c1, v); });
    parallel_for(0, 36, 1, [&](int64_t x0, int64_t x1) {
      for (int64_t xi = x0; xi < x1; ++xi)
        gemm(false, p.o, b.cols, p.c, u + xi * p.o * p.c, p.c, v + xi * p.c * b.cols, b.cols,
             0.0f, m + xi * p.o * b.cols, b.cols);
    });
    parallel_for(0, p.o, 4, [&](int64_t o0, int64_t o1) { output_tiles(p, m, b, bias, o0, o1, y); });
  });
}

}  // namespace

bool applies(const ConvGeometry& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.groups == 1 && !g.channels_last && g.ph >= 0 && g.ph <= 2 && g.pw >= 0 &&
         g.pw <= 2 && g.h >= 3 && g.w >= 3;
}

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                    float* y) {
  CUDL_CHECK(applies(g), "winograd::conv2d_forward: not a 3x3 stride-1 convolution");
  const Problem p{g.n, g.c, g.h, g.w, g.o, g.oh, g.ow, g.ph, g.pw};
  if (p.tiles() == 0) return;
  Tensor u = empty({36 * g.o * g.c}, kFloat32);
  transform_weights(w, g.o, g.c, false, u.data<float>());
  run(p, x, u.data<float>(), bias, y);
}

void conv2d_backward_data(const ConvGeometry& g, const float* w, const float* dy, float* dx) {
  CUDL_CHECK(applies(g), "winograd::conv2d_backward_data: not a 3x3 stride-1 convolution");
  // dx = dy correlated with the turned, transposed kernels, padded by 2 - p: the output size
  // oh + 2 (2 - ph) - 2 is h again.
  const Problem p{g.n, g.o, g.oh, g.ow, g.c, g.h, g.w, 2 - g.ph, 2 - g.pw};
  if (p.tiles() == 0) return;
  Tensor u = empty({36 * g.o * g.c}, kFloat32);
  transform_weights(w, g.o, g.c, true, u.data<float>());
  run(p, dy, u.data<float>(), nullptr, dx);
}

void conv2d_backward_weights(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
  CUDL_CHECK(applies(g), "winograd::conv2d_backward_weights: not a 3x3 stride-1 convolution");
  const Problem p{g.n, g.c, g.h, g.w, g.o, g.oh, g.ow, g.ph, g.pw};
  const int64_t tiles = p.tiles();
  Tensor z_t = zeros({36 * g.o * g.c}, kFloat32);
  float* z = z_t.data<float>();
  if (tiles > 0) {
    const int64_t bt = block_tiles(p, kWeightsBudget, 1);
    BlockScratch s(p, bt);
    float* v = s.v_t.data<float>();
    float* m = s.m_t.data<float>();
    for (int64_t t0 = 0; t0 < tiles; t0 += bt) {
      Block& b = s.block;
      b.set(p, t0, std::min(tiles, t0 + bt));
      parallel_for(0, p.c, 4, [&](int64_t c0, int64_t c1) { input_tiles(p, x, b, c0, c1, v); });
      parallel_for(0, p.o, 4,
                   [&](int64_t o0, int64_t o1) { output_grad_tiles(p, dy, b, o0, o1, m); });
      parallel_for(0, 36, 1, [&](int64_t x0, int64_t x1) {
        for (int64_t xi = x0; xi < x1; ++xi)  // Z[xi] (o x c) += M[xi] V[xi]^T
          gemm(true, p.o, p.c, b.cols, m + xi * p.o * b.cols, b.cols, v + xi * p.c * b.cols,
               b.cols, 1.0f, z + xi * p.o * p.c, p.c);
      });
    }
  }
  parallel_for(0, g.o, 8, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < g.c; ++c)
        kernel_gradient(z + o * g.c + c, g.o * g.c, dw + (o * g.c + c) * 9);
  });
}

}  // namespace cudl::cpu::winograd
