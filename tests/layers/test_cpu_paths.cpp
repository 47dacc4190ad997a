// The CPU kernels' alternative paths, each against an independent reference:
// - conv2d: every CpuConvPath (oneDNN, sample-parallel im2col, BLAS-threaded im2col, Winograd,
//   auto), at 1, 2 and 3 threads, forward and backward, against a direct float64 loop over
//   conv.h's formula, in float32 and (both memory formats) bfloat16; shapes reach the row bands
//   of large maps, multi-sample groups of small maps, the 1x1 direct GEMM, strides, dilation,
//   groups, bias and an input without gradient.
// - max pooling: the vectorised interior loop against the shared per-window formula
//   (pool::max_window / pool::max_grad_at, which the CUDA kernels use), bit for bit, with ties
//   and NaNs.
// - batch norm: the single-pass, shifted statistics on data with a large mean.
// - the BLAS cudl links is OpenBLAS's OpenMP build (CMakeLists.txt).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "layers/layers.h"
#include "tensor/cpu/conv_onednn.h"
#include "tensor/cpu/conv_winograd.h"
#include "tensor/ops/pool_kernels.h"
#include "tensor/parallel.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;
using testing::rand64;

// Restores the thread count and the convolution path a test changes.
struct CpuSettingsGuard {
  int threads = get_num_threads();
  CpuConvPath path = cpu_conv_path();
  ~CpuSettingsGuard() {
    set_num_threads(threads);
    set_cpu_conv_path(path);
  }
};

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (double v : t.to(kFloat64).contiguous().to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

struct ConvCase {
  const char* name;
  Shape x, w;
  bool bias;
  Size2 stride, pad, dil;
  int64_t groups;
  bool grad_x;
};

struct ConvResult {
  Tensor y, dx, dw, db;
};

// conv.h's formula, one output at a time, in float64; and the three gradients from dy.
ConvResult naive_conv(const ConvCase& c, const Tensor& x64, const Tensor& w64, const Tensor& b64,
                      const Tensor& dy64) {
  const ConvGeometry g = conv2d_geometry(x64, w64, b64, c.stride, c.pad, c.dil, c.groups);
  const std::vector<double> x = x64.to_vector<double>(), w = w64.to_vector<double>();
  const std::vector<double> dy = dy64.to_vector<double>();
  std::vector<double> b = c.bias ? b64.to_vector<double>() : std::vector<double>(g.o, 0.0);
  std::vector<double> y(g.n * g.o * g.oh * g.ow), dx(x.size(), 0.0), dw(w.size(), 0.0),
      db(g.o, 0.0);
  const int64_t cg = g.c / g.groups, og = g.o / g.groups;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t o = 0; o < g.o; ++o)
      for (int64_t i = 0; i < g.oh; ++i)
        for (int64_t j = 0; j < g.ow; ++j) {
          const int64_t yi = ((n * g.o + o) * g.oh + i) * g.ow + j;
          double acc = b[o];
          for (int64_t ci = 0; ci < cg; ++ci) {
            const int64_t ch = (o / og) * cg + ci;
            for (int64_t a = 0; a < g.kh; ++a)
              for (int64_t bb = 0; bb < g.kw; ++bb) {
                const int64_t ih = i * g.sh - g.ph + a * g.dh, iw = j * g.sw - g.pw + bb * g.dw;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                const int64_t xi = ((n * g.c + ch) * g.h + ih) * g.w + iw;
                const int64_t wi = ((o * cg + ci) * g.kh + a) * g.kw + bb;
                acc += w[wi] * x[xi];
                dx[xi] += w[wi] * dy[yi];
                dw[wi] += x[xi] * dy[yi];
              }
          }
          y[yi] = acc;
          db[o] += dy[yi];
        }
  const TensorOptions o64(kFloat64);
  return {from_vector(y, {g.n, g.o, g.oh, g.ow}, o64), from_vector(dx, x64.shape(), o64),
          from_vector(dw, w64.shape(), o64), from_vector(db, {g.o}, o64)};
}

ConvResult run_conv(const ConvCase& c, DType dt, const Tensor& x64, const Tensor& w64,
                    const Tensor& b64, const Tensor& dy64) {
  // detach(): fresh leaves each run (to() of the same dtype returns the tensor itself).
  Tensor x = x64.detach().to(dt).set_requires_grad(c.grad_x);
  Tensor w = w64.detach().to(dt).set_requires_grad();
  Tensor b = c.bias ? b64.detach().to(dt).set_requires_grad() : Tensor();
  Tensor y = conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  y.backward(dy64.to(dt));
  return {y.detach(), c.grad_x ? x.grad() : Tensor(), w.grad(), c.bias ? b.grad() : Tensor()};
}

// Random float64 inputs of a case (from seeds seed+1..seed+4) and the definition's result.
struct CaseData {
  Tensor x, w, b, dy;
  ConvResult ref;
};
CaseData random_case(const ConvCase& c, uint64_t seed) {
  const Tensor x = rand64(c.x, seed + 1), w = rand64(c.w, seed + 2);
  const Tensor b = rand64({c.w[0]}, seed + 3);
  const ConvGeometry g =
      conv2d_geometry(x, w, c.bias ? b : Tensor(), c.stride, c.pad, c.dil, c.groups);
  const Tensor dy = rand64({g.n, g.o, g.oh, g.ow}, seed + 4);
  return {x, w, b, dy, naive_conv(c, x, w, b, dy)};
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      // 40x40 outputs (>= 1024 columns): one sample per task, cut into bands of rows.
      {"3x3 large maps", {4, 16, 40, 40}, {16, 16, 3, 3}, false, 1, 1, 1, 1, true},
      // 9x9 outputs: several samples per GEMM, groups rebalanced over the threads.
      {"3x3 small maps", {6, 8, 9, 9}, {12, 8, 3, 3}, true, 1, 1, 1, 1, true},
      // ResNet's stem on a small image; the input needs no gradient (weights only).
      {"7x7 stride 2 stem", {2, 3, 70, 70}, {8, 3, 7, 7}, false, 2, 3, 1, 1, false},
      // 1x1 stride 1 (x is its own column matrix) with bias, and 1x1 stride 2 (downsample).
      {"1x1 direct", {3, 8, 33, 33}, {16, 8, 1, 1}, true, 1, 0, 1, 1, true},
      {"1x1 stride 2", {4, 8, 12, 12}, {8, 8, 1, 1}, false, 2, 0, 1, 1, true},
      // Groups, dilation, asymmetric stride/padding/kernel.
      {"grouped dilated", {3, 4, 15, 13}, {6, 2, 3, 2}, true, {2, 1}, {2, 1}, {2, 1}, 2, true},
      // One sample: the BLAS-threaded path in kAuto.
      {"one sample", {1, 8, 20, 20}, {8, 8, 3, 3}, false, 1, 1, 1, 1, true},
  };
  return cases;
}

// Runs case c twice with the current path and thread count: every result within 2e-5 of its
// tensor's largest magnitude of the float64 definition, and the two runs equal bit for bit.
// Within `tolerance` of the largest magnitude of each result (see the callers).
void expect_float32_matches(const ConvCase& c, const CaseData& d, double tolerance = 2e-5) {
  const ConvResult r = run_conv(c, kFloat32, d.x, d.w, d.b, d.dy);
  const ConvResult again = run_conv(c, kFloat32, d.x, d.w, d.b, d.dy);
  auto check = [&](const Tensor& got, const Tensor& twice, const Tensor& want, const char* what) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(got.defined());
    EXPECT_TRUE(all_close(got.to(kFloat64), want, tolerance * max_abs(want), 0.0));
    EXPECT_TRUE(all_close(twice, got, 0.0, 0.0)) << "not reproducible";
  };
  check(r.y, again.y, d.ref.y, "output");
  check(r.dw, again.dw, d.ref.dw, "weight gradient");
  if (c.grad_x) check(r.dx, again.dx, d.ref.dx, "input gradient");
  if (c.bias) check(r.db, again.db, d.ref.db, "bias gradient");
}

// Every path and thread count gives the definition's result in float32, up to the rounding of
// float32 sums: each output sums at most 16*9 = 144 products, each weight-gradient element at
// most 4*40*40 = 6400, so 2e-5 of the tensor's largest magnitude (~300 roundings of 6e-8) is
// ample, while a wrong tap, band edge or missing sample is off by O(1) of it. Each path is also
// run twice: the results must be identical (no dependence on thread scheduling).
TEST(CpuConvPaths, EveryPathMatchesTheDefinitionInFloat32) {
  CpuSettingsGuard guard;
  const std::vector<std::pair<CpuConvPath, const char*>> paths = {
      {CpuConvPath::kAuto, "auto"},
      {CpuConvPath::kOneDnn, "oneDNN"},
      {CpuConvPath::kIm2colSampleParallel, "im2col sample-parallel"},
      {CpuConvPath::kIm2colBlasThreads, "im2col BLAS-threaded"},
      {CpuConvPath::kWinograd, "Winograd"}};
  uint64_t seed = 100;
  for (const ConvCase& c : conv_cases()) {
    const CaseData d = random_case(c, seed);
    seed += 4;
    for (const auto& [path, path_name] : paths) {
      for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(std::string(c.name) + ", " + path_name + ", " + std::to_string(threads) +
                     " threads");
        set_cpu_conv_path(path);
        set_num_threads(threads);
        expect_float32_matches(c, d);
      }
    }
  }
}

// The im2col paths in float64 (oneDNN has no float64; kAuto and kOneDnn fall back to im2col):
// agreement to float64 rounding.
TEST(CpuConvPaths, Im2colPathsMatchTheDefinitionInFloat64) {
  CpuSettingsGuard guard;
  uint64_t seed = 200;
  for (const ConvCase& c : conv_cases()) {
    const auto [x, w, b, dy, ref] = random_case(c, seed);
    seed += 4;
    for (CpuConvPath path : {CpuConvPath::kIm2colSampleParallel, CpuConvPath::kIm2colBlasThreads,
                             CpuConvPath::kOneDnn}) {
      SCOPED_TRACE(std::string(c.name) + ", path " + std::to_string(static_cast<int>(path)));
      set_cpu_conv_path(path);
      set_num_threads(2);
      const ConvResult r = run_conv(c, kFloat64, x, w, b, dy);
      EXPECT_TRUE(all_close(r.y, ref.y, 1e-12 * max_abs(ref.y), 0.0));
      EXPECT_TRUE(all_close(r.dw, ref.dw, 1e-12 * max_abs(ref.dw), 0.0));
      if (c.grad_x) {
        EXPECT_TRUE(all_close(r.dx, ref.dx, 1e-12 * max_abs(ref.dx), 0.0));
      }
    }
  }
}

// Winograd F(4x4, 3x3) on the shapes its tiling makes special: partial tiles at the right and
// bottom edges, paddings 0 and 2 and unequal ones (the input gradient then pads by 2 and 0),
// maps wide enough for whole rows of 8 side-by-side windows (the row fast path) next to the
// edge windows, channel counts that fit no vector, one output row, and blocks fewer than
// threads. Against the float64 definition, at 1 to 4 threads, twice (reproducible), and the
// same bits at every thread count.
// Tolerance: each output sums up to 256 * 9 products, and the transforms scale values by up
// to 8 x 5 x 5 / 4 and cancel them again, so the rounding is some 10-40x the direct sum's.
// The largest errors seen here, in the 256-channel case: 9.2e-6 of the largest magnitude with
// oneDNN's GEMM (input gradient), 1.4e-5 with OpenBLAS's (output; -DCUDL_ONEDNN=OFF), against
// 5e-5 allowed, while a wrong coefficient or tile edge is off by O(1) of it (one coefficient
// of B^T changed from 4 to 3: at least 0.12 of it on every case; the row fast path reading a
// wrong column: 0.3 to 0.8 on the wide cases).
TEST(CpuConvPaths, WinogradMatchesTheDefinition) {
  CpuSettingsGuard guard;
  const std::vector<ConvCase> cases = {
      {"partial tiles, bias", {3, 5, 11, 14}, {7, 5, 3, 3}, true, 1, 1, 1, 1, true},
      {"wide, padding 2", {2, 6, 9, 75}, {4, 6, 3, 3}, false, 1, 2, 1, 1, true},
      {"wide, padding 0", {2, 4, 14, 77}, {6, 4, 3, 3}, true, 1, 0, 1, 1, true},
      {"unequal padding", {2, 24, 10, 40}, {9, 24, 3, 3}, false, 1, {0, 2}, 1, 1, true},
      {"one output row", {4, 3, 3, 38}, {5, 3, 3, 3}, true, 1, 0, 1, 1, true},
      {"one sample, 5x5", {1, 16, 5, 5}, {16, 16, 3, 3}, false, 1, 1, 1, 1, true},
      {"3x3 maps", {4, 8, 3, 3}, {8, 8, 3, 3}, false, 1, 1, 1, 1, true},
      {"4x4 maps", {4, 8, 4, 4}, {8, 8, 3, 3}, false, 1, 1, 1, 1, true},
      // Block sizes that a thread-count-dependent split would move.
      {"100 tiles", {2, 16, 20, 40}, {16, 16, 3, 3}, false, 1, 1, 1, 1, true},
      {"200 to 150 channels", {2, 200, 12, 12}, {150, 200, 3, 3}, true, 1, 1, 1, 1, true},
      // ResNet-18's 3x3 stride-1 layers at ResNetParity's notebook-model input (8 x 64x64).
      {"layer1 at 64x64", {8, 64, 16, 16}, {64, 64, 3, 3}, false, 1, 1, 1, 1, true},
      {"layer2 at 64x64", {8, 128, 8, 8}, {128, 128, 3, 3}, false, 1, 1, 1, 1, true},
      {"layer3 at 64x64", {8, 256, 4, 4}, {256, 256, 3, 3}, false, 1, 1, 1, 1, true},
  };
  uint64_t seed = 600;
  set_cpu_conv_path(CpuConvPath::kWinograd);
  for (const ConvCase& c : cases) {
    const CaseData d = random_case(c, seed);
    seed += 4;
    ConvResult one;
    for (int threads : {1, 2, 3, 4}) {
      SCOPED_TRACE(std::string(c.name) + ", " + std::to_string(threads) + " threads");
      set_num_threads(threads);
      expect_float32_matches(c, d, 5e-5);
      // The same bits at every thread count.
      const ConvResult r = run_conv(c, kFloat32, d.x, d.w, d.b, d.dy);
      if (threads == 1) {
        one = r;
        continue;
      }
      EXPECT_TRUE(all_close(r.y, one.y, 0.0, 0.0));
      EXPECT_TRUE(all_close(r.dx, one.dx, 0.0, 0.0));
      EXPECT_TRUE(all_close(r.dw, one.dw, 0.0, 0.0));
    }
  }
}

// On maps below 3x3 (ResNet-18's last stages on small images) kWinograd leaves the convolution
// to the direct kernels: their results are kAuto's, bit for bit. There a 4x4 tile is mostly
// padding and the transforms' rounding is large against the small weight gradients, whose signs
// AdamW's first step turns into full-size updates: in ResNetParity's notebook model (64x64
// inputs, 2x2 maps in the last stage) Winograd there moved 124569 of 11.7M weights differently
// from PyTorch after one step, against 683 without it (and 411 for the direct kernels).
TEST(CpuConvPaths, WinogradLeavesMapsBelow3x3ToTheDirectKernels) {
  CpuSettingsGuard guard;
  set_num_threads(2);
  for (int64_t size : {1, 2}) {
    SCOPED_TRACE(std::to_string(size) + "x" + std::to_string(size) + " maps");
    const ConvCase c{"small", {4, 8, size, size}, {8, 8, 3, 3}, true, 1, 1, 1, 1, true};
    const auto [x, w, b, dy, ref] = random_case(c, 800 + size);
    set_cpu_conv_path(CpuConvPath::kAuto);
    const ConvResult direct = run_conv(c, kFloat32, x, w, b, dy);
    set_cpu_conv_path(CpuConvPath::kWinograd);
    const ConvResult r = run_conv(c, kFloat32, x, w, b, dy);
    EXPECT_TRUE(all_close(r.y, direct.y, 0.0, 0.0));
    EXPECT_TRUE(all_close(r.dx, direct.dx, 0.0, 0.0));
    EXPECT_TRUE(all_close(r.dw, direct.dw, 0.0, 0.0));
  }
}

// Winograd is the library's option (the programs' CPU default, set through TrainOptions and
// EvalOptions): kAuto keeps the direct kernels (its results are not Winograd's, and with oneDNN
// they are oneDNN's, bit for bit), and kWinograd takes Winograd for all three results of a 3x3
// stride-1 convolution (they are those of cpu::winograd's functions called directly, bit for bit).
TEST(CpuConvPaths, WinogradIsAnOption) {
  CpuSettingsGuard guard;
  set_num_threads(2);
  const ConvCase c{"layer", {2, 16, 20, 20}, {16, 16, 3, 3}, false, 1, 1, 1, 1, true};
  const auto [x, w, b, dy, ref] = random_case(c, 700);
  auto run = [&](CpuConvPath path) {
    set_cpu_conv_path(path);
    return run_conv(c, kFloat32, x, w, b, dy);
  };
  const ConvResult a = run(CpuConvPath::kAuto), wg = run(CpuConvPath::kWinograd);
  // Winograd's own results.
  const Tensor x32 = x.to(kFloat32).contiguous(), w32 = w.to(kFloat32).contiguous();
  const Tensor dy32 = dy.to(kFloat32).contiguous();
  const ConvGeometry g = conv2d_geometry(x32, w32, Tensor(), c.stride, c.pad, c.dil, c.groups);
  ASSERT_TRUE(cpu::winograd::applies(g));
  Tensor y = zeros(wg.y.shape()), dx = zeros(x32.shape()), dw = zeros(w32.shape());
  cpu::winograd::conv2d_forward(g, x32.data<float>(), w32.data<float>(), nullptr, y.data<float>());
  cpu::winograd::conv2d_backward_data(g, w32.data<float>(), dy32.data<float>(), dx.data<float>());
  cpu::winograd::conv2d_backward_weights(g, x32.data<float>(), dy32.data<float>(),
                                         dw.data<float>());
  EXPECT_TRUE(all_close(wg.y, y, 0.0, 0.0));
  EXPECT_TRUE(all_close(wg.dx, dx, 0.0, 0.0));
  EXPECT_TRUE(all_close(wg.dw, dw, 0.0, 0.0));
  EXPECT_FALSE(all_close(a.y, y, 0.0, 0.0));
  EXPECT_FALSE(all_close(a.dx, dx, 0.0, 0.0));
  EXPECT_FALSE(all_close(a.dw, dw, 0.0, 0.0));
  if (!onednn_version().empty()) {
    // kAuto runs oneDNN's kernels where oneDNN has a JIT-compiled one for the shape on this CPU
    // (every direction here on AVX2 and AVX-512 machines; without AVX2 the gradients' are not,
    // and kAuto's im2col computes them): those directions equal kOneDnn's.
    Tensor y1 = zeros(y.shape()), dx1 = zeros(dx.shape()), dw1 = zeros(dw.shape());
    const bool y_jit = cpu::onednn::conv2d_forward(kFloat32, g, x32.data<float>(),
                                                   w32.data<float>(), nullptr, y1.data<float>(),
                                                   true);
    const cpu::onednn::BackwardDone jit = cpu::onednn::conv2d_backward(
        kFloat32, g, x32.data<float>(), w32.data<float>(), dy32.data<float>(), dx1.data<float>(),
        dw1.data<float>(), true);
    const ConvResult direct = run(CpuConvPath::kOneDnn);
    EXPECT_TRUE(y_jit);  // oneDNN's forward kernels are JIT-compiled from SSE4.1 on
    EXPECT_TRUE(all_close(a.y, direct.y, 0.0, 0.0));
    if (jit.dx) {
      EXPECT_TRUE(all_close(a.dx, direct.dx, 0.0, 0.0));
    }
    if (jit.dw) {
      EXPECT_TRUE(all_close(a.dw, direct.dw, 0.0, 0.0));
    }
#if defined(__x86_64__)
    // Where oneDNN may use AVX2, it has JIT kernels for all three: none may go unchecked.
    if (__builtin_cpu_supports("avx2") && !std::getenv("ONEDNN_MAX_CPU_ISA") &&
        !std::getenv("DNNL_MAX_CPU_ISA")) {
      EXPECT_TRUE(jit.dx && jit.dw);
    }
#endif
  }
}

// bfloat16 convolutions (mixed precision): oneDNN's bfloat16 kernels where the CPU has
// bfloat16 instructions, else the float kernels on widened operands; both round each result
// once from a float sum. Against the float64 definition on the bfloat16 values of the inputs,
// for every path, at 1 and 2 threads, in both memory formats: within 2^-8 of each value
// (bfloat16's largest relative rounding error, for the one rounding of each result) plus 2e-5
// of the tensor's largest magnitude (the float sums' rounding, as in float32). A wrong tap or a
// channels-last element read as row-major is off by O(1) of the largest magnitude.
TEST(CpuConvPaths, BFloat16MatchesTheDefinition) {
  CpuSettingsGuard guard;
  uint64_t seed = 900;
  for (const ConvCase& c : conv_cases()) {
    CaseData d = random_case(c, seed);
    seed += 4;
    for (Tensor* t : {&d.x, &d.w, &d.b, &d.dy}) *t = t->to(kBFloat16).to(kFloat64);
    d.ref = naive_conv(c, d.x, d.w, d.b, d.dy);
    for (CpuConvPath path : {CpuConvPath::kAuto, CpuConvPath::kWinograd, CpuConvPath::kOneDnn,
                             CpuConvPath::kIm2colSampleParallel}) {
      for (int threads : {1, 2}) {
        for (MemoryFormat format : {MemoryFormat::kContiguous, MemoryFormat::kChannelsLast}) {
          SCOPED_TRACE(std::string(c.name) + ", path " + std::to_string(static_cast<int>(path)) +
                       ", " + std::to_string(threads) + " threads, " + toString(format));
          set_cpu_conv_path(path);
          set_num_threads(threads);
          Tensor x = d.x.to(kBFloat16).contiguous(format).set_requires_grad(c.grad_x);
          Tensor w = d.w.to(kBFloat16).set_requires_grad();
          Tensor b = c.bias ? d.b.to(kBFloat16).set_requires_grad() : Tensor();
          Tensor y = conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
          ASSERT_EQ(y.dtype(), kBFloat16);
          EXPECT_TRUE(y.is_contiguous(format));
          y.backward(d.dy.to(kBFloat16).contiguous(format));
          auto check = [](const Tensor& got, const Tensor& want, const char* what) {
            SCOPED_TRACE(what);
            ASSERT_TRUE(got.defined());
            EXPECT_TRUE(all_close(got.to(kFloat64), want, 2e-5 * max_abs(want), 1.0 / 256));
          };
          check(y, d.ref.y, "output");
          check(w.grad(), d.ref.dw, "weight gradient");
          if (c.grad_x) check(x.grad(), d.ref.dx, "input gradient");
          if (c.bias) check(b.grad(), d.ref.db, "bias gradient");
        }
      }
    }
  }
}

// Where oneDNN may use the CPU's bfloat16 instructions (AVX512-BF16 or AMX), bfloat16
// convolutions run on its JIT kernels wherever it has one: the results of conv2d in the default
// path are those of cpu::onednn's functions called directly, bit for bit, in every direction
// they compute. It has them in all three directions for every kind of convolution in the
// notebook's ResNet-18 (the stem, 3x3 stride 1 and 2, the 1x1 stride-2 downsample, at 2 x
// 64x64 here); some shapes of the other cases (e.g. 12 output channels) leave a direction to
// the widening path.
TEST(CpuConvPaths, BFloat16RunsOnOneDnnWhereTheCpuHasBFloat16Instructions) {
  if (onednn_version().empty()) GTEST_SKIP() << "cudl was built without oneDNN";
#if defined(__x86_64__)
  if (!std::getenv("ONEDNN_MAX_CPU_ISA") && !std::getenv("DNNL_MAX_CPU_ISA")) {
    EXPECT_EQ(cpu::onednn::native_bf16(), __builtin_cpu_supports("avx512bf16") != 0);
  }
#endif
  if (!cpu::onednn::native_bf16()) {
    GTEST_SKIP() << "no bfloat16 instructions for oneDNN on this CPU: bfloat16 convolutions "
                    "widen to float (checked by BFloat16MatchesTheDefinition)";
  }
  CpuSettingsGuard guard;
  set_cpu_conv_path(CpuConvPath::kAuto);
  set_num_threads(2);
  std::vector<std::pair<ConvCase, bool>> cases;  // (case, all three directions on oneDNN)
  for (const ConvCase& c : conv_cases()) cases.push_back({c, false});
  for (const ConvCase& c : std::vector<ConvCase>{
           {"ResNet-18 stem", {2, 3, 64, 64}, {64, 3, 7, 7}, false, 2, 3, 1, 1, false},
           {"ResNet-18 3x3", {2, 64, 16, 16}, {64, 64, 3, 3}, false, 1, 1, 1, 1, true},
           {"ResNet-18 3x3 stride 2", {2, 64, 16, 16}, {128, 64, 3, 3}, false, 2, 1, 1, 1, true},
           {"ResNet-18 downsample", {2, 128, 8, 8}, {256, 128, 1, 1}, false, 2, 0, 1, 1, true}})
    cases.push_back({c, true});
  uint64_t seed = 1000;
  for (const auto& [c, resnet] : cases) {
    SCOPED_TRACE(c.name);
    const CaseData d = random_case(c, seed);
    seed += 4;
    const Tensor x = d.x.to(kBFloat16), w = d.w.to(kBFloat16), dy = d.dy.to(kBFloat16);
    const Tensor b = c.bias ? d.b.to(kBFloat16) : Tensor();
    const ConvResult r = run_conv(c, kBFloat16, d.x, d.w, d.b, d.dy);
    const ConvGeometry g = conv2d_geometry(x, w, b, c.stride, c.pad, c.dil, c.groups);
    Tensor y = zeros(r.y.shape(), TensorOptions(kBFloat16));
    Tensor dx = zeros(x.shape(), TensorOptions(kBFloat16));
    Tensor dw = zeros(w.shape(), TensorOptions(kBFloat16));
    const bool forward = cpu::onednn::conv2d_forward(
        kBFloat16, g, x.data_ptr(), w.data_ptr(), c.bias ? b.data_ptr() : nullptr, y.data_ptr(),
        true);
    const cpu::onednn::BackwardDone done = cpu::onednn::conv2d_backward(
        kBFloat16, g, x.data_ptr(), w.data_ptr(), dy.data_ptr(), dx.data_ptr(), dw.data_ptr(),
        true);
    if (resnet) {
      EXPECT_TRUE(forward && done.dx && done.dw);
    }
    if (forward) {
      EXPECT_TRUE(all_close(r.y, y, 0.0, 0.0));
    }
    if (done.dw) {
      EXPECT_TRUE(all_close(r.dw, dw, 0.0, 0.0));
    }
    if (done.dx && c.grad_x) {
      EXPECT_TRUE(all_close(r.dx, dx, 0.0, 0.0));
    }
    if (!resnet) continue;
    // Channels-last: conv2d's results are those of oneDNN called on the NHWC buffers.
    SCOPED_TRACE("channels-last");
    Tensor xc = x.contiguous(MemoryFormat::kChannelsLast).set_requires_grad(c.grad_x);
    Tensor wc = w.detach().set_requires_grad();
    Tensor yc = conv2d(xc, wc, Tensor(), c.stride, c.pad, c.dil, c.groups);
    ASSERT_TRUE(yc.is_contiguous(MemoryFormat::kChannelsLast));
    const Tensor dyc = dy.contiguous(MemoryFormat::kChannelsLast);
    yc.backward(dyc);
    ConvGeometry gc = g;
    gc.channels_last = true;
    const TensorOptions bf16(kBFloat16);
    Tensor y2 = zeros(r.y.shape(), bf16).contiguous(MemoryFormat::kChannelsLast);
    Tensor dx2 = zeros(x.shape(), bf16).contiguous(MemoryFormat::kChannelsLast);
    Tensor dw2 = zeros(w.shape(), TensorOptions(kBFloat16));
    ASSERT_TRUE(cpu::onednn::conv2d_forward(kBFloat16, gc, xc.data_ptr(), wc.data_ptr(), nullptr,
                                            y2.data_ptr(), true));
    const cpu::onednn::BackwardDone done2 = cpu::onednn::conv2d_backward(
        kBFloat16, gc, xc.data_ptr(), wc.data_ptr(), dyc.data_ptr(),
        c.grad_x ? dx2.data_ptr() : nullptr, dw2.data_ptr(), true);
    EXPECT_TRUE(done2.dw && (done2.dx || !c.grad_x));
    EXPECT_TRUE(all_close(yc.detach(), y2, 0.0, 0.0));
    EXPECT_TRUE(all_close(y2, r.y, 0.0, 0.0));  // and those of the row-major convolution
    EXPECT_TRUE(all_close(wc.grad(), dw2, 0.0, 0.0));
    if (c.grad_x) {
      EXPECT_TRUE(all_close(xc.grad(), dx2, 0.0, 0.0));
    }
  }
}

TEST(CpuConvPaths, OneDnnIsUsedWhenBuiltIn) {
  // The build links oneDNN whenever libdnnl-dev is installed (scripts/setup.sh installs it);
  // then its version is known. Without it every path above ran on im2col.
  if (onednn_version().empty()) GTEST_SKIP() << "cudl was built without oneDNN";
  EXPECT_EQ(onednn_version().substr(0, 2), "2.");
}

TEST(CpuBlas, IsOpenBlasOnOpenMP) {
#ifdef CUDL_OPENBLAS_OPENMP
  EXPECT_TRUE(blas_uses_openmp()) << "loaded BLAS: " << blas_info()
                                  << " (the run path should point at the openblas-openmp build)";
#else
  GTEST_SKIP() << "configured with CUDL_OPENBLAS_OPENMP=OFF: " << blas_info();
#endif
}

// Max pooling: the CPU kernel vs the shared per-window formula, exactly (outputs bit for bit,
// NaN where the formula gives NaN; the input gradient, which routes dy through the argmax, bit
// for bit). Inputs take few distinct values (many ties: the first maximum must win) and a few
// NaNs.
TEST(CpuPoolPaths, MaxPoolMatchesTheSharedFormulaExactly) {
  struct PoolCase {
    Size2 k, s, p, d;
  };
  const std::vector<PoolCase> cases = {{3, 2, 1, 1},
                                       {2, 2, 0, 1},
                                       {3, 1, 1, 1},
                                       {3, 3, 0, 1},
                                       {3, 2, 1, 2},
                                       {{2, 3}, {1, 2}, {1, 1}, 1},
                                       {{3, 2}, {3, 1}, {0, 1}, {1, 2}}};
  const int64_t n = 2, c = 3, h = 23, w = 19;
  std::vector<double> xv = rand64({n, c, h, w}, 300).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) {
    xv[i] = std::round(xv[i] * 3.0);  // 7 levels: ties everywhere
    if (i % 97 == 5) xv[i] = NAN;
  }
  for (const PoolCase& pc : cases) {
    SCOPED_TRACE("kernel (" + std::to_string(pc.k.h) + ", " + std::to_string(pc.k.w) +
                 ") stride (" + std::to_string(pc.s.h) + ", " + std::to_string(pc.s.w) + ")");
    Tensor x = from_vector(xv, {n, c, h, w}, TensorOptions(kFloat64)).to(kFloat32);
    x.set_requires_grad();
    Tensor y = max_pool2d(x, pc.k, pc.s, pc.p, pc.d);
    PoolGeometry g;
    g.planes = n * c;
    g.h = h;
    g.w = w;
    g.kh = pc.k.h;
    g.kw = pc.k.w;
    g.sh = pc.s.h;
    g.sw = pc.s.w;
    g.ph = pc.p.h;
    g.pw = pc.p.w;
    g.dh = pc.d.h;
    g.dw = pc.d.w;
    g.oh = y.size(2);
    g.ow = y.size(3);
    const std::vector<float> xf = x.detach().to_vector<float>();
    std::vector<float> want(g.planes * g.oh * g.ow);
    std::vector<int64_t> arg(want.size());
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t i = 0; i < g.oh; ++i)
        for (int64_t j = 0; j < g.ow; ++j) {
          const int64_t o = (p * g.oh + i) * g.ow + j;
          pool::max_window(g, xf.data() + p * h * w, i, j, &want[o], &arg[o]);
        }
    const std::vector<float> got = y.detach().to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << "output " << i;
      } else {
        EXPECT_EQ(got[i], want[i]) << "output " << i;
      }
    }
    // Distinct upstream gradients, so every routing decision shows in dx.
    std::vector<float> dyv(got.size());
    for (size_t i = 0; i < dyv.size(); ++i) dyv[i] = 1.0f + static_cast<float>(i % 1000) / 1024.0f;
    y.backward(from_vector(dyv, y.shape()));
    const std::vector<float> dx = x.grad().to_vector<float>();
    for (int64_t p = 0; p < g.planes; ++p)
      for (int64_t ih = 0; ih < h; ++ih)
        for (int64_t iw = 0; iw < w; ++iw) {
          const float e = pool::max_grad_at(g, dyv.data() + p * g.oh * g.ow,
                                            arg.data() + p * g.oh * g.ow, ih, iw);
          ASSERT_EQ(dx[(p * h + ih) * w + iw], e)
              << "dx at plane " << p << " (" << ih << ", " << iw << ")";
        }
  }
}

// Batch norm's statistics come from one pass of double sums shifted by a value of the channel,
// so a mean 1e4 times the spread costs no accuracy: the running variance after one step equals
// the float64 computation on the same float32 inputs to float32 rounding (bound 1e-6
// relative; a one-pass unshifted float sum would lose every digit here), and the output matches
// to the float32 resolution of the inputs themselves (ulp(1e4) / std ~ 1e-3: bound 2e-3).
TEST(CpuBatchNorm, LargeMeanKeepsItsVariance) {
  const int64_t n = 8, c = 3, hw = 50;
  const Tensor x64 = rand64({n, c, hw, 1}, 400) * 1.7 + 1e4;
  const Tensor x = x64.to(kFloat32);
  const Tensor xd = x.to(kFloat64);  // the float32 inputs, exactly, in float64
  Tensor rm = zeros({c}), rv = ones({c});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5);
  const std::vector<double> v = xd.contiguous().to_vector<double>();
  const std::vector<float> yv = y.to_vector<float>();
  const std::vector<float> rvv = rv.to_vector<float>();
  const double m = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) mean += v[(i * c + ch) * hw + k];
    mean /= m;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) var += std::pow(v[(i * c + ch) * hw + k] - mean, 2);
    var /= m;
    EXPECT_NEAR(rvv[ch], var * m / (m - 1.0), 1e-6 * var) << "channel " << ch;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const int64_t at = (i * c + ch) * hw + k;
        EXPECT_NEAR(yv[at], (v[at] - mean) / std::sqrt(var + 1e-5), 2e-3) << "element " << at;
      }
  }
}

// batch_norm_act gives the separate ops' results bit for bit, outputs, gradients and running
// statistics, in float32 and in bfloat16 (which rounds after each step, as the ops do).
TEST(CpuBatchNorm, FusedResidualAndReluEqualTheSeparateOps) {
  for (DType dt : {kFloat32, kBFloat16}) {
    for (bool training : {true, false}) {
      for (bool with_residual : {false, true}) {
        SCOPED_TRACE(std::string(toString(dt)) + (training ? " training" : " eval") +
                     (with_residual ? " with residual" : ""));
        const Tensor x0 = rand64({3, 5, 7, 6}, 500).to(dt), r0 = rand64({3, 5, 7, 6}, 501).to(dt);
        const Tensor w0 = rand64({5}, 502, 0.5, 1.5).to(kFloat32), b0 = rand64({5}, 503).to(kFloat32);
        const Tensor g = rand64({3, 5, 7, 6}, 504).to(dt);
        struct Run {
          Tensor x, r, w, b, rm, rv, y;
        };
        auto make = [&] {
          Run u{x0.clone().set_requires_grad(), r0.clone().set_requires_grad(),
                w0.clone().set_requires_grad(), b0.clone().set_requires_grad(),
                rand64({5}, 505, -0.2, 0.2).to(kFloat32), rand64({5}, 506, 0.5, 1.5).to(kFloat32),
                Tensor()};
          return u;
        };
        Run fused = make(), plain = make();
        fused.y = batch_norm_act(fused.x, fused.w, fused.b, fused.rm, fused.rv, training, 0.1, 1e-5,
                                 with_residual ? fused.r : Tensor(), true);
        Tensor t = batch_norm(plain.x, plain.w, plain.b, plain.rm, plain.rv, training, 0.1, 1e-5);
        if (with_residual) t = t + plain.r;
        plain.y = relu(t);
        fused.y.backward(g);
        plain.y.backward(g);
        EXPECT_TRUE(all_close(fused.y, plain.y, 0, 0)) << "output";
        EXPECT_TRUE(all_close(fused.x.grad(), plain.x.grad(), 0, 0)) << "input gradient";
        EXPECT_TRUE(all_close(fused.w.grad(), plain.w.grad(), 0, 0)) << "weight gradient";
        EXPECT_TRUE(all_close(fused.b.grad(), plain.b.grad(), 0, 0)) << "bias gradient";
        EXPECT_TRUE(all_close(fused.rm, plain.rm, 0, 0) && all_close(fused.rv, plain.rv, 0, 0));
        if (with_residual) {
          EXPECT_TRUE(all_close(fused.r.grad(), plain.r.grad(), 0, 0)) << "residual gradient";
        } else {
          EXPECT_FALSE(fused.r.grad().defined());
        }
      }
    }
  }
}

}  // namespace
}  // namespace cudl
