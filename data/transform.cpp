#include "data/transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace cudl::data {

Size2 resized_size(int height, int width, int size) {
  CUDL_CHECK(height > 0 && width > 0 && size > 0, "resized_size: expected positive sizes, got ",
             width, "x", height, " -> ", size);
  const double ratio =
      std::min(static_cast<double>(height) / size, static_cast<double>(width) / size);
  // std::nearbyint rounds half to even in the default rounding mode, like Python's round().
  Size2 s;
  s.height = std::max(1, static_cast<int>(std::nearbyint(height / ratio)));
  s.width = std::max(1, static_cast<int>(std::nearbyint(width / ratio)));
  return s;
}

int centre_crop_offset(int big, int size) {
  return std::max(0, static_cast<int>((big - size + 1) * 0.5));
}

ResizePlan plan_resize(int in_h, int in_w, int out_h, int out_w, int win_y, int win_x, int win_h,
                       int win_w, bool antialias) {
  CUDL_CHECK(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0,
             "plan_resize: expected positive "
             "sizes, got ",
             in_w, "x", in_h, " -> ", out_w, "x", out_h);
  CUDL_CHECK(win_y >= 0 && win_x >= 0 && win_h > 0 && win_w > 0 && win_y + win_h <= out_h &&
                 win_x + win_w <= out_w,
             "plan_resize: window (y ", win_y, ", x ", win_x, ", ", win_w, "x", win_h,
             ") is not inside the resized image ", out_w, "x", out_h);
  ResizePlan p;
  p.in_h = in_h;
  p.in_w = in_w;
  p.out_h = out_h;
  p.out_w = out_w;
  p.win_y = win_y;
  p.win_x = win_x;
  p.win_h = win_h;
  p.win_w = win_w;
  p.pool_h = in_h;
  p.pool_w = in_w;
  // fastai: d = min(in/out)/2; when d > 1, F.interpolate(scale_factor=1/d, mode="area"), whose
  // output size is floor(in * (1/d)) in double.
  const double d =
      std::min(static_cast<double>(in_h) / out_h, static_cast<double>(in_w) / out_w) / 2;
  if (antialias && d > 1) {
    const double s = 1.0 / d;
    p.pool_h = std::max(1, static_cast<int>(std::floor(static_cast<double>(in_h) * s)));
    p.pool_w = std::max(1, static_cast<int>(std::floor(static_cast<double>(in_w) * s)));
  }
  return p;
}

ResizePlan plan_recipe(int full_h, int full_w, int in_h, int in_w, int size, bool antialias) {
  const Size2 r = resized_size(full_h, full_w, size);
  const int wh = std::min(size, r.height), ww = std::min(size, r.width);
  return plan_resize(in_h, in_w, r.height, r.width, centre_crop_offset(r.height, size),
                     centre_crop_offset(r.width, size), wh, ww, antialias);
}

namespace {

// Corner-aligned bilinear taps along one axis for output coordinates [begin, begin + count),
// computed exactly as PyTorch's CPU kernel does.
struct Taps {
  std::vector<int> i0, i1;  // source indices times 3 (interleaved RGB)
  std::vector<float> w0, w1;
};

Taps bilinear_taps(int in, int out, int begin, int count, int elems_per_index) {
  Taps t;
  t.i0.resize(count);
  t.i1.resize(count);
  t.w0.resize(count);
  t.w1.resize(count);
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  for (int k = 0; k < count; ++k) {
    const int d = begin + k;
    int i0, i1;
    float l1;
    if (in == out) {
      i0 = i1 = d;
      l1 = 0.f;
    } else {
      // The scale is float32 but PyTorch 1.13's CPU kernel forms the source index and lambda in
      // double (its accumulate type) before storing lambda as float; float32 products would be
      // up to an ulp of the index (6e-5 at 500) off.
      const double src = static_cast<double>(scale) * d;
      i0 = std::min(static_cast<int>(src), in - 1);
      i1 = i0 + (i0 < in - 1 ? 1 : 0);
      l1 = static_cast<float>(std::min(std::max(src - i0, 0.0), 1.0));
    }
    t.i0[k] = i0 * elems_per_index;
    t.i1[k] = i1 * elems_per_index;
    t.w1[k] = l1;
    t.w0[k] = 1.f - l1;
  }
  return t;
}

// PyTorch's adaptive pooling windows: [start, end) of input for output index i.
inline int pool_start(int i, int out, int in) {
  return static_cast<int>((static_cast<int64_t>(i) * in) / out);
}
inline int pool_end(int i, int out, int in) {
  return static_cast<int>(((static_cast<int64_t>(i) + 1) * in + out - 1) / out);
}

// Area pre-pass: (in_h, in_w, 3) -> (pool_h, pool_w, 3) float, rows of the source summed after
// averaging each row over the column windows.
template <class In>
std::vector<float> area_pool(const ResizePlan& p, const In* src, size_t stride) {
  const int pw = p.pool_w, ph = p.pool_h;
  std::vector<int> xs(pw), xe(pw);
  for (int j = 0; j < pw; ++j) {
    xs[j] = pool_start(j, pw, p.in_w);
    xe[j] = pool_end(j, pw, p.in_w);
  }
  std::vector<float> out(static_cast<size_t>(ph) * pw * 3);
  std::vector<float> acc(static_cast<size_t>(pw) * 3);
  for (int i = 0; i < ph; ++i) {
    const int ys = pool_start(i, ph, p.in_h), ye = pool_end(i, ph, p.in_h);
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int y = ys; y < ye; ++y) {
      const In* row = src + static_cast<size_t>(y) * stride;
      for (int j = 0; j < pw; ++j) {
        float s0 = 0.f, s1 = 0.f, s2 = 0.f;
        for (int x = xs[j]; x < xe[j]; ++x) {
          s0 += static_cast<float>(row[3 * x]);
          s1 += static_cast<float>(row[3 * x + 1]);
          s2 += static_cast<float>(row[3 * x + 2]);
        }
        const float inv = 1.f / static_cast<float>(xe[j] - xs[j]);
        acc[3 * j] += s0 * inv;
        acc[3 * j + 1] += s1 * inv;
        acc[3 * j + 2] += s2 * inv;
      }
    }
    const float inv = 1.f / static_cast<float>(ye - ys);
    float* o = out.data() + static_cast<size_t>(i) * pw * 3;
    for (int k = 0; k < pw * 3; ++k) o[k] = acc[k] * inv;
  }
  return out;
}

// Four floats as one vector (GCC/Clang vector extension: SSE on x86-64, NEON on ARM).
typedef float Float4 __attribute__((vector_size(16)));

// Bilinear from (h, w, 3) `src` to the plan's window; sink(row, values) gets each output row as
// win_w * 3 interleaved floats. Vertical first: the two source rows of an output row are blended
// over the columns the window needs (a contiguous, vectorisable loop), then that one float row is
// sampled horizontally. out = wx0 (wy0 a + wy1 c) + wx1 (wy0 b + wy1 d): PyTorch's value up to
// the order of float additions.
template <class In, class Sink>
void bilinear(const ResizePlan& p, const In* src, size_t stride, int h, int w, Sink&& sink) {
  const Taps ty = bilinear_taps(h, p.out_h, p.win_y, p.win_h, 1);
  const Taps tx = bilinear_taps(w, p.out_w, p.win_x, p.win_w, 3);
  const int n = p.win_w * 3;
  // Source columns (in elements) that the window reads: taps are non-decreasing.
  const int c0 = tx.i0.front(), c1 = tx.i1.back() + 3;
  const int span = c1 - c0;
  std::vector<int> j0(p.win_w), j1(p.win_w);
  for (int x = 0; x < p.win_w; ++x) {
    j0[x] = tx.i0[x] - c0;
    j1[x] = tx.i1[x] - c0;
  }
  // One float of padding after each row: the 4-wide horizontal step reads and writes a lane past
  // the last pixel.
  std::vector<float> buffers(static_cast<size_t>(span) + n + 2, 0.f);
  float* col = buffers.data();
  float* out = col + span + 1;
  const float* w0 = tx.w0.data();
  const float* w1 = tx.w1.data();
  for (int r = 0; r < p.win_h; ++r) {
    const In* a = src + static_cast<size_t>(ty.i0[r]) * stride + c0;
    const In* b = src + static_cast<size_t>(ty.i1[r]) * stride + c0;
    const float u = ty.w0[r], v = ty.w1[r];
    if (v == 0.f) {
      for (int k = 0; k < span; ++k) col[k] = static_cast<float>(a[k]);
    } else {
      for (int k = 0; k < span; ++k)
        col[k] = u * static_cast<float>(a[k]) + v * static_cast<float>(b[k]);
    }
    // One RGB pixel per 4-wide vector operation (the fourth lane is overwritten by the next pixel).
    for (int x = 0; x < p.win_w; ++x) {
      Float4 pa, pb;
      std::memcpy(&pa, col + j0[x], sizeof(pa));
      std::memcpy(&pb, col + j1[x], sizeof(pb));
      const Float4 v4 = pa * w0[x] + pb * w1[x];
      std::memcpy(out + 3 * x, &v4, sizeof(v4));
    }
    sink(r, static_cast<const float*>(out));
  }
}

}  // namespace

std::pair<int, int> source_rows(const ResizePlan& p) {
  const Taps ty = bilinear_taps(p.pool_h, p.out_h, p.win_y, p.win_h, 1);
  const int first = ty.i0.front(), last = ty.i1.back() + 1;  // rows of the pre-pass output
  if (!p.has_area_prepass()) return {first, last};
  return {pool_start(first, p.pool_h, p.in_h), pool_end(last - 1, p.pool_h, p.in_h)};
}

namespace {

template <class In, class Sink>
void run_plan(const ResizePlan& p, const In* src, size_t stride, Sink&& sink) {
  if (p.has_area_prepass()) {
    const std::vector<float> pooled = area_pool(p, src, stride);
    bilinear(p, pooled.data(), static_cast<size_t>(p.pool_w) * 3, p.pool_h, p.pool_w, sink);
  } else {
    bilinear(p, src, stride, p.in_h, p.in_w, sink);
  }
}

}  // namespace

void resize_u8(const ResizePlan& p, const uint8_t* src, size_t src_stride, uint8_t* dst) {
  const int n = p.win_w * 3;
  run_plan(p, src, src_stride, [&](int r, const float* v) {
    uint8_t* o = dst + static_cast<size_t>(r) * n;
    for (int k = 0; k < n; ++k) {
      const float x = v[k] + 0.5f;  // values lie in [0, 255]: convex combinations of bytes
      o[k] = static_cast<uint8_t>(x >= 255.f ? 255.f : (x <= 0.f ? 0.f : x));
    }
  });
}

void resize_float(const ResizePlan& p, const float* src, size_t src_stride, float* dst) {
  const int n = p.win_w * 3;
  run_plan(p, src, src_stride,
           [&](int r, const float* v) { std::copy(v, v + n, dst + static_cast<size_t>(r) * n); });
}

void resize_normalise(const ResizePlan& p, const uint8_t* src, size_t src_stride, float* dst,
                      const Normalization& nrm) {
  // (v / 255 - mean) / std = v * a + b.
  float a[3], b[3];
  for (int c = 0; c < 3; ++c) {
    a[c] = 1.f / (255.f * nrm.std[c]);
    b[c] = -nrm.mean[c] / nrm.std[c];
  }
  const size_t plane = static_cast<size_t>(p.win_h) * p.win_w;
  run_plan(p, src, src_stride, [&](int r, const float* v) {
    float* o0 = dst + static_cast<size_t>(r) * p.win_w;
    float* o1 = o0 + plane;
    float* o2 = o1 + plane;
    for (int x = 0; x < p.win_w; ++x) {
      o0[x] = v[3 * x] * a[0] + b[0];
      o1[x] = v[3 * x + 1] * a[1] + b[1];
      o2[x] = v[3 * x + 2] * a[2] + b[2];
    }
  });
}

NormalizeTable::NormalizeTable(const Normalization& n, float brightness, float contrast) {
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v) / 255.f;
      if (brightness != 0.f || contrast != 1.f)
        x = std::min(1.f, std::max(0.f, (x - 0.5f) * contrast + 0.5f + brightness));
      value[c][v] = (x - n.mean[c]) / n.std[c];
    }
  }
}

void normalise_u8(const uint8_t* src, int h, int w, size_t src_stride, float* dst,
                  const NormalizeTable& t, bool flip) {
  const size_t plane = static_cast<size_t>(h) * w;
  const float* l0 = t.value[0];
  const float* l1 = t.value[1];
  const float* l2 = t.value[2];
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = src + static_cast<size_t>(y) * src_stride;
    float* o0 = dst + static_cast<size_t>(y) * w;
    float* o1 = o0 + plane;
    float* o2 = o1 + plane;
    for (int x = 0; x < w; ++x) {
      const uint8_t* px = row + 3 * (flip ? w - 1 - x : x);
      o0[x] = l0[px[0]];
      o1[x] = l1[px[1]];
      o2[x] = l2[px[2]];
    }
  }
}

}  // namespace cudl::data
