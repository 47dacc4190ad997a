#include "data/demo_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>

#include "data/split.h"
#include "tensor/error.h"

namespace cudl::data {

namespace {

constexpr float kPi = 3.14159265358979f;

struct RGB {
  float r = 0, g = 0, b = 0;
};
RGB operator*(RGB c, float s) {
  return {c.r * s, c.g * s, c.b * s};
}
RGB mix(RGB a, RGB b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}
float clamp01(float v) {
  return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
}

// Random numbers of one image: NumPy's legacy generator seeded with [seed lo, seed hi, index].
class Rng {
 public:
  Rng(uint64_t seed, int64_t index)
      : rs_(std::vector<uint32_t>{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                                  static_cast<uint32_t>(index)}) {}
  float u() { return static_cast<float>(rs_.random_sample()); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * u(); }
  int randint(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(rs_.random_interval(static_cast<uint64_t>(hi - lo)));
  }
  bool chance(float p) { return u() < p; }
  // HSV with the given ranges of saturation and value.
  RGB colour(float s0, float s1, float v0, float v1) {
    return hsv(u(), uniform(s0, s1), uniform(v0, v1));
  }
  static RGB hsv(float h, float s, float v) {
    const float h6 = h * 6.f;
    const int i = static_cast<int>(h6) % 6;
    const float f = h6 - std::floor(h6);
    const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (i) {
      case 0:
        return {v, t, p};
      case 1:
        return {q, v, p};
      case 2:
        return {p, v, t};
      case 3:
        return {p, q, v};
      case 4:
        return {t, p, v};
      default:
        return {v, p, q};
    }
  }
  // Approximately normal (sum of three uniforms), mean 0, std 1.
  float normalish() { return (u() + u() + u() - 1.5f) * 2.f; }

 private:
  RandomState rs_;
};

struct Canvas {
  int h, w;
  std::vector<float> px;  // (h, w, 3)
  Canvas(int h_, int w_) : h(h_), w(w_), px(static_cast<size_t>(h_) * w_ * 3) {}
  float* at(int x, int y) { return px.data() + (static_cast<size_t>(y) * w + x) * 3; }
  void blend(int x, int y, RGB c, float a) {
    float* p = at(x, y);
    p[0] += (c.r - p[0]) * a;
    p[1] += (c.g - p[1]) * a;
    p[2] += (c.b - p[2]) * a;
  }
};

// Fills the shape sdf(x, y) < 0 (signed distance in pixels) inside the box with colour(x, y),
// with one-pixel antialiased edges and opacity alpha.
template <class Sdf, class Colour>
void draw(Canvas& c, float bx0, float by0, float bx1, float by1, Sdf&& sdf, Colour&& colour,
          float alpha = 1.f) {
  const int x0 = std::max(0, static_cast<int>(std::floor(bx0)) - 1);
  const int y0 = std::max(0, static_cast<int>(std::floor(by0)) - 1);
  const int x1 = std::min(c.w, static_cast<int>(std::ceil(bx1)) + 1);
  const int y1 = std::min(c.h, static_cast<int>(std::ceil(by1)) + 1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const float fx = x + 0.5f, fy = y + 0.5f;
      const float cover = clamp01(0.5f - sdf(fx, fy));
      if (cover > 0.f) c.blend(x, y, colour(fx, fy), cover * alpha);
    }
  }
}

float sd_box(float px, float py, float cx, float cy, float hx, float hy, float r) {
  r = std::min(r, std::min(hx, hy));
  const float qx = std::fabs(px - cx) - (hx - r), qy = std::fabs(py - cy) - (hy - r);
  const float ox = std::max(qx, 0.f), oy = std::max(qy, 0.f);
  return std::sqrt(ox * ox + oy * oy) + std::min(std::max(qx, qy), 0.f) - r;
}

float sd_ellipse(float px, float py, float cx, float cy, float a, float b) {
  const float dx = (px - cx) / a, dy = (py - cy) / b;
  return (std::sqrt(dx * dx + dy * dy) - 1.f) * std::min(a, b);
}

// Convex polygon: largest signed distance to the edge lines (exact inside, close enough outside).
struct Poly {
  std::vector<std::pair<float, float>> v;
  float sd(float px, float py) const {
    float area = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const auto& a = v[i];
      const auto& b = v[(i + 1) % v.size()];
      area += a.first * b.second - b.first * a.second;
    }
    const float sign = area > 0 ? 1.f : -1.f;
    float d = -1e9f;
    for (size_t i = 0; i < v.size(); ++i) {
      const auto& a = v[i];
      const auto& b = v[(i + 1) % v.size()];
      const float ex = b.first - a.first, ey = b.second - a.second;
      const float len = std::sqrt(ex * ex + ey * ey);
      // Outward normal of a counter-clockwise (in x right, y down: clockwise on screen) polygon.
      const float nx = sign * ey / len, ny = -sign * ex / len;
      d = std::max(d, (px - a.first) * nx + (py - a.second) * ny);
    }
    return d;
  }
  float x0() const {
    float m = 1e9f;
    for (auto& p : v) m = std::min(m, p.first);
    return m;
  }
  float x1() const {
    float m = -1e9f;
    for (auto& p : v) m = std::max(m, p.first);
    return m;
  }
  float y0() const {
    float m = 1e9f;
    for (auto& p : v) m = std::min(m, p.second);
    return m;
  }
  float y1() const {
    float m = -1e9f;
    for (auto& p : v) m = std::max(m, p.second);
    return m;
  }
};

template <class Colour>
void draw_poly(Canvas& c, const Poly& p, Colour&& colour, float alpha = 1.f) {
  draw(
      c, p.x0(), p.y0(), p.x1(), p.y1(), [&](float x, float y) { return p.sd(x, y); }, colour,
      alpha);
}

// Brightness across a cylinder seen from the front, u in [0, 1] left to right: darker edges and
// a highlight left of centre.
float cylinder(float u, float highlight) {
  const float s = std::sin(kPi * clamp01(u));
  const float hl = std::exp(-((u - 0.3f) * (u - 0.3f)) / (2 * 0.06f * 0.06f));
  return 0.45f + 0.55f * std::sqrt(s) + highlight * hl;
}

RGB pick(Rng& rng, std::initializer_list<RGB> options) {
  const int i = rng.randint(0, static_cast<int>(options.size()) - 1);
  return *(options.begin() + i);
}

// ---- backgrounds -----------------------------------------------------------------------------

void background(Canvas& c, Rng& rng) {
  const RGB c1 = rng.colour(0.05f, 0.6f, 0.25f, 0.95f);
  const RGB c2 = rng.colour(0.05f, 0.6f, 0.25f, 0.95f);
  const int kind = rng.randint(0, 3);
  const float angle = rng.uniform(0, 2 * kPi);
  const float ca = std::cos(angle), sa = std::sin(angle);
  const float period = rng.uniform(8, 40);
  // Smooth colour noise: a coarse grid of random colours, bilinearly interpolated.
  const int gh = rng.randint(2, 6), gw = rng.randint(2, 6);
  std::vector<RGB> grid(static_cast<size_t>(gh + 1) * (gw + 1));
  for (auto& g : grid) g = rng.colour(0.05f, 0.6f, 0.25f, 0.95f);
  std::vector<float> shelves;
  for (int i = rng.randint(1, 3); i > 0; --i) shelves.push_back(rng.uniform(0.05f, 0.95f) * c.h);
  const float shelf_thick = rng.uniform(5, 14);
  const RGB shelf = rng.colour(0.0f, 0.15f, 0.7f, 0.98f);
  const float diag = std::sqrt(static_cast<float>(c.w * c.w + c.h * c.h));
  for (int y = 0; y < c.h; ++y) {
    for (int x = 0; x < c.w; ++x) {
      RGB v;
      const float proj = x * ca + y * sa;
      switch (kind) {
        case 0:
          v = mix(c1, c2, clamp01(0.5f + proj / diag));
          break;
        case 1: {
          const float s = 0.5f + 0.5f * std::sin(2 * kPi * proj / period);
          v = mix(c1, c2, clamp01((s - 0.5f) * 3.f + 0.5f));
          break;
        }
        case 2: {
          const float gy = static_cast<float>(y) / c.h * gh, gx = static_cast<float>(x) / c.w * gw;
          const int iy = std::min(gh - 1, static_cast<int>(gy)),
                    ix = std::min(gw - 1, static_cast<int>(gx));
          const float fy = gy - iy, fx = gx - ix;
          auto g = [&](int a, int b) { return grid[static_cast<size_t>(a) * (gw + 1) + b]; };
          v = mix(mix(g(iy, ix), g(iy, ix + 1), fx), mix(g(iy + 1, ix), g(iy + 1, ix + 1), fx), fy);
          break;
        }
        default: {
          v = mix(c1, c1 * 0.7f, static_cast<float>(y) / c.h);
          for (float sy : shelves) {
            if (y >= sy && y < sy + shelf_thick)
              v = shelf;
            else if (y >= sy + shelf_thick && y < sy + 2 * shelf_thick)
              v = v * 0.8f;  // shadow
          }
        }
      }
      float* p = c.at(x, y);
      p[0] = v.r;
      p[1] = v.g;
      p[2] = v.b;
    }
  }
  // Faint stripes over some of the other kinds.
  if (kind != 1 && rng.chance(0.4f)) {
    const RGB sc = rng.colour(0.0f, 0.5f, 0.2f, 1.0f);
    const float p2 = rng.uniform(4, 16), a2 = rng.uniform(0, kPi);
    const float c2a = std::cos(a2), s2a = std::sin(a2);
    for (int y = 0; y < c.h; ++y)
      for (int x = 0; x < c.w; ++x)
        if (std::sin(2 * kPi * (x * c2a + y * s2a) / p2) > 0.6f) c.blend(x, y, sc, 0.15f);
  }
}

void distractors(Canvas& c, Rng& rng) {
  for (int i = rng.randint(0, 3); i > 0; --i) {
    const RGB col = rng.colour(0.1f, 0.8f, 0.2f, 0.9f);
    const float r = rng.uniform(0.04f, 0.1f) * c.h;
    const float cx = rng.uniform(0, static_cast<float>(c.w)),
                cy = rng.uniform(0, static_cast<float>(c.h));
    const float ax = r * rng.uniform(0.6f, 1.6f);
    const float alpha = rng.uniform(0.5f, 1.f);
    if (rng.chance(0.5f))
      draw(
          c, cx - ax, cy - r, cx + ax, cy + r,
          [&](float x, float y) { return sd_ellipse(x, y, cx, cy, ax, r); },
          [&](float, float) { return col; }, alpha);
    else
      draw(
          c, cx - ax, cy - r, cx + ax, cy + r,
          [&](float x, float y) { return sd_box(x, y, cx, cy, ax, r, r * 0.3f); },
          [&](float, float) { return col; }, alpha);
  }
}

// ---- the four kinds of objects, each in its box (x0, y0, w, h) --------------------------------

void draw_can(Canvas& c, Rng& rng, float x0, float y0, float w, float h) {
  const RGB base = pick(rng, {{0.80f, 0.08f, 0.10f},
                              {0.10f, 0.22f, 0.75f},
                              {0.72f, 0.73f, 0.76f},
                              {0.10f, 0.55f, 0.22f},
                              {0.12f, 0.12f, 0.14f},
                              {0.90f, 0.45f, 0.05f}});
  const RGB band = pick(rng, {{0.95f, 0.95f, 0.95f}, {0.95f, 0.85f, 0.15f}, {0.10f, 0.10f, 0.10f}});
  const float band_y = y0 + h * rng.uniform(0.35f, 0.5f), band_h = h * rng.uniform(0.1f, 0.2f);
  const float rim = 0.07f * h;
  const float cx = x0 + w / 2;
  auto shade = [&](float x, float y, RGB col) {
    const bool in_band = y > band_y && y < band_y + band_h;
    return (in_band ? band : col) * cylinder((x - x0) / w, 0.35f);
  };
  draw(
      c, x0, y0 + rim, x0 + w, y0 + h - rim,
      [&](float x, float y) { return sd_box(x, y, cx, y0 + h / 2, w / 2, h / 2 - rim, w * 0.06f); },
      [&](float x, float y) { return shade(x, y, base); });
  const RGB metal{0.78f, 0.78f, 0.8f};
  // Top lid and bottom rim.
  draw(
      c, x0, y0, x0 + w, y0 + 2 * rim,
      [&](float x, float y) { return sd_ellipse(x, y, cx, y0 + rim, w / 2, rim); },
      [&](float x, float) { return metal * (0.8f + 0.3f * cylinder((x - x0) / w, 0.2f) * 0.5f); });
  draw(
      c, x0, y0 + h - 2 * rim, x0 + w, y0 + h,
      [&](float x, float y) { return sd_ellipse(x, y, cx, y0 + h - rim, w / 2, rim); },
      [&](float x, float) { return metal * 0.6f * cylinder((x - x0) / w, 0.2f); });
}

void draw_carton(Canvas& c, Rng& rng, float x0, float y0, float w, float h) {
  const RGB base = pick(rng, {{0.95f, 0.95f, 0.93f},
                              {0.98f, 0.90f, 0.35f},
                              {0.55f, 0.75f, 0.95f},
                              {0.98f, 0.65f, 0.30f},
                              {0.85f, 0.95f, 0.80f}});
  const RGB band = pick(
      rng,
      {{0.80f, 0.10f, 0.10f}, {0.10f, 0.30f, 0.80f}, {0.15f, 0.60f, 0.20f}, {0.45f, 0.20f, 0.60f}});
  const float roof = 0.2f * h, fin = 0.05f * h;
  const float side = x0 + w * 0.72f;  // the darker side face starts here
  const float band_y = y0 + roof + (h - roof) * rng.uniform(0.2f, 0.45f),
              band_h = (h - roof) * 0.25f;
  // Fin on top of the gable, then the gable, then the body.
  draw(
      c, x0 + w * 0.1f, y0, x0 + w * 0.9f, y0 + fin + 2,
      [&](float x, float y) {
        return sd_box(x, y, x0 + w / 2, y0 + fin / 2 + 1, w * 0.38f, fin / 2 + 1, 1);
      },
      [&](float, float) { return base * 0.85f; });
  Poly gable{{{x0, y0 + roof + 1},
              {x0 + w * 0.1f, y0 + fin},
              {x0 + w * 0.9f, y0 + fin},
              {x0 + w, y0 + roof + 1}}};
  draw_poly(c, gable, [&](float x, float) { return base * (x > side ? 0.7f : 0.92f); });
  draw(
      c, x0, y0 + roof, x0 + w, y0 + h,
      [&](float x, float y) {
        return sd_box(x, y, x0 + w / 2, y0 + (roof + h) / 2, w / 2, (h - roof) / 2, 1.5f);
      },
      [&](float x, float y) {
        RGB v = (y > band_y && y < band_y + band_h) ? band : base;
        return v * (x > side ? 0.72f : 1.f);
      });
}

void draw_milk(Canvas& c, Rng& rng, float x0, float y0, float w, float h) {
  const RGB body = RGB{0.96f, 0.96f, 0.94f} * rng.uniform(0.93f, 1.03f);
  const RGB cap = pick(rng, {{0.85f, 0.10f, 0.10f},
                             {0.10f, 0.30f, 0.85f},
                             {0.15f, 0.65f, 0.20f},
                             {0.90f, 0.75f, 0.10f},
                             {0.55f, 0.20f, 0.65f}});
  const bool has_label = rng.chance(0.6f);
  const RGB label =
      pick(rng, {{0.15f, 0.35f, 0.80f}, {0.80f, 0.15f, 0.15f}, {0.20f, 0.60f, 0.25f}});
  const float cx = x0 + w / 2;
  const float body_top = y0 + 0.32f * h, label_y = y0 + h * rng.uniform(0.5f, 0.65f);
  auto white = [&](float x, float y) {
    RGB v = (has_label && y > label_y && y < label_y + 0.15f * h) ? label : body;
    return v * std::min(1.05f, 0.7f + 0.4f * cylinder((x - x0) / w, 0.15f));
  };
  draw(
      c, x0, body_top - 2, x0 + w, y0 + h,
      [&](float x, float y) {
        return sd_box(x, y, cx, (body_top + y0 + h) / 2, w / 2, (y0 + h - body_top) / 2, w * 0.2f);
      },
      white);
  Poly shoulder{{{x0 + 0.3f * w, y0 + 0.15f * h},
                 {x0 + 0.7f * w, y0 + 0.15f * h},
                 {x0 + w, y0 + 0.34f * h},
                 {x0, y0 + 0.34f * h}}};
  draw_poly(c, shoulder, white);
  draw(
      c, x0 + 0.3f * w, y0 + 0.06f * h, x0 + 0.7f * w, y0 + 0.17f * h,
      [&](float x, float y) { return sd_box(x, y, cx, y0 + 0.115f * h, 0.2f * w, 0.055f * h, 1); },
      white);
  draw(
      c, x0 + 0.25f * w, y0, x0 + 0.75f * w, y0 + 0.08f * h,
      [&](float x, float y) { return sd_box(x, y, cx, y0 + 0.04f * h, 0.24f * w, 0.04f * h, 2); },
      [&](float x, float) { return cap * cylinder((x - x0 - 0.25f * w) / (0.5f * w), 0.2f); });
}

void draw_water(Canvas& c, Rng& rng, float x0, float y0, float w, float h) {
  const RGB tint = pick(rng, {{0.55f, 0.80f, 0.95f}, {0.65f, 0.88f, 0.98f}, {0.50f, 0.75f, 0.90f}});
  const RGB cap = pick(rng, {{0.10f, 0.30f, 0.85f}, {0.92f, 0.92f, 0.95f}, {0.05f, 0.55f, 0.75f}});
  const RGB label =
      pick(rng, {{0.92f, 0.92f, 0.95f}, {0.10f, 0.35f, 0.80f}, {0.20f, 0.65f, 0.35f}});
  const float alpha = rng.uniform(0.55f, 0.75f);
  const float cx = x0 + w / 2, body_top = y0 + 0.22f * h;
  const float ridge = 0.07f * h;
  const float label_y = y0 + h * rng.uniform(0.45f, 0.6f), label_h = 0.12f * h;
  auto glass = [&](float x, float y) {
    const float r = std::fmod(y - body_top, ridge);
    RGB v = tint * (0.75f + 0.35f * cylinder((x - x0) / w, 0.5f));
    return (r >= 0 && r < ridge * 0.22f) ? v * 0.7f : v;
  };
  draw(
      c, x0, body_top - 2, x0 + w, y0 + h,
      [&](float x, float y) {
        return sd_box(x, y, cx, (body_top + y0 + h) / 2, w / 2, (y0 + h - body_top) / 2, w * 0.25f);
      },
      glass, alpha);
  Poly shoulder{{{x0 + 0.32f * w, y0 + 0.09f * h},
                 {x0 + 0.68f * w, y0 + 0.09f * h},
                 {x0 + w, y0 + 0.23f * h},
                 {x0, y0 + 0.23f * h}}};
  draw_poly(c, shoulder, glass, alpha);
  draw(
      c, x0, label_y, x0 + w, label_y + label_h,
      [&](float x, float y) {
        return sd_box(x, y, cx, label_y + label_h / 2, w / 2, label_h / 2, 1);
      },
      [&](float x, float) { return label * (0.8f + 0.25f * cylinder((x - x0) / w, 0.1f)); });
  draw(
      c, x0 + 0.3f * w, y0, x0 + 0.7f * w, y0 + 0.1f * h,
      [&](float x, float y) { return sd_box(x, y, cx, y0 + 0.05f * h, 0.2f * w, 0.05f * h, 1.5f); },
      [&](float x, float) { return cap * cylinder((x - x0 - 0.3f * w) / (0.4f * w), 0.25f); });
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    CUDL_THROW(path, ": cannot create folder: ", std::strerror(errno));
  struct stat sb;
  CUDL_CHECK(::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode), path,
             ": exists and is not a folder");
}

void make_dirs(const std::string& path) {
  for (size_t p = path.find('/', 1); p != std::string::npos; p = path.find('/', p + 1))
    make_dir(path.substr(0, p));
  make_dir(path);
}

}  // namespace

const std::vector<std::string>& demo_classes() {
  static const std::vector<std::string> classes{"can", "carton", "milk_bottle", "water_bottle"};
  return classes;
}

Image render_demo_image(const DemoDataOptions& o, int64_t index, std::vector<int>* labels) {
  CUDL_CHECK(o.height >= 32 && o.width >= 32, "demo data: images must be at least 32x32, got ",
             o.width, "x", o.height);
  Rng rng(o.seed, index);
  const int mask = rng.randint(1, 15);  // a non-empty subset of the 4 kinds
  std::vector<int> kinds;
  for (int k = 0; k < 4; ++k)
    if (mask & (1 << k)) kinds.push_back(k);
  if (labels) *labels = kinds;

  Canvas c(o.height, o.width);
  background(c, rng);
  distractors(c, rng);

  // Sizes relative to the image height: (height, width / height) per kind.
  const float H = static_cast<float>(o.height), W = static_cast<float>(o.width);
  struct Obj {
    int kind;
    float w, h, x, y;
  };
  std::vector<Obj> objs;
  for (int k : kinds) {
    const float s = rng.uniform(0.85f, 1.15f);
    float h = 0, aspect = 0;
    switch (k) {
      case 0:
        h = 0.31f;
        aspect = rng.uniform(0.58f, 0.68f);
        break;  // can
      case 1:
        h = 0.45f;
        aspect = rng.uniform(0.48f, 0.58f);
        break;  // carton
      case 2:
        h = 0.45f;
        aspect = rng.uniform(0.38f, 0.44f);
        break;  // milk bottle
      default:
        h = 0.58f;
        aspect = rng.uniform(0.27f, 0.32f);
        break;  // water bottle
    }
    objs.push_back({k, h * H * s * aspect, h * H * s, 0, 0});
  }
  // Random left-to-right order and gaps; shrink everything if the row is too wide.
  for (size_t i = objs.size(); i-- > 1;)
    std::swap(objs[i], objs[static_cast<size_t>(rng.randint(0, static_cast<int>(i)))]);
  float total = 0;
  for (const auto& ob : objs) total += ob.w;
  const float room = W * 0.96f;
  if (total > room) {
    const float f = room / total;
    for (auto& ob : objs) {
      ob.w *= f;
      ob.h *= f;
    }
    total = room;
  }
  std::vector<float> gaps(objs.size() + 1);
  float gsum = 0;
  for (auto& g : gaps) gsum += (g = rng.uniform(0.2f, 1.f));
  float x = W * 0.02f;
  const float shelf = H * rng.uniform(0.62f, 0.84f);  // where the objects stand
  for (size_t i = 0; i < objs.size(); ++i) {
    x += gaps[i] / gsum * (room - total);
    objs[i].x = x;
    const float bottom = std::min(H * 0.87f, shelf + H * rng.uniform(-0.04f, 0.04f));
    objs[i].y = std::max(H * 0.13f, bottom - objs[i].h);
    x += objs[i].w;
  }
  // Draw back to front: the ones standing higher first.
  std::vector<size_t> order(objs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return objs[a].y + objs[a].h < objs[b].y + objs[b].h; });
  for (size_t i : order) {
    const Obj& ob = objs[i];
    switch (ob.kind) {
      case 0:
        draw_can(c, rng, ob.x, ob.y, ob.w, ob.h);
        break;
      case 1:
        draw_carton(c, rng, ob.x, ob.y, ob.w, ob.h);
        break;
      case 2:
        draw_milk(c, rng, ob.x, ob.y, ob.w, ob.h);
        break;
      default:
        draw_water(c, rng, ob.x, ob.y, ob.w, ob.h);
        break;
    }
  }

  // Lighting, colour cast and noise.
  const float gain = rng.uniform(0.8f, 1.15f);
  const float cast[3] = {rng.uniform(0.93f, 1.07f), rng.uniform(0.93f, 1.07f),
                         rng.uniform(0.93f, 1.07f)};
  const float noise = rng.uniform(0.01f, 0.035f);
  const float vx = rng.uniform(0.2f, 0.8f) * W, vy = rng.uniform(0.2f, 0.8f) * H;
  const float vr = std::sqrt(W * W + H * H);
  Image img(o.height, o.width);
  for (int yy = 0; yy < o.height; ++yy) {
    uint8_t* row = img.row(yy);
    for (int xx = 0; xx < o.width; ++xx) {
      const float d = std::hypot(xx - vx, yy - vy) / vr;
      const float light = gain * (1.05f - 0.35f * d * d);
      const float* p = c.at(xx, yy);
      for (int ch = 0; ch < 3; ++ch) {
        const float v = p[ch] * light * cast[ch] + noise * rng.normalish();
        row[3 * xx + ch] = static_cast<uint8_t>(std::lround(clamp01(v) * 255.f));
      }
    }
  }
  return img;
}

DemoDataSummary write_demo_data(const std::string& dir, const DemoDataOptions& o) {
  CUDL_CHECK(!dir.empty(), "write_demo_data: no output folder given");
  CUDL_CHECK(o.num_images >= 1, "write_demo_data: num_images must be >= 1, got ", o.num_images);
  DemoDataSummary s;
  s.csv_path = dir + "/labels.csv";
  s.image_dir = dir + "/images";
  s.num_images = o.num_images;
  s.classes = demo_classes();
  s.class_counts.assign(s.classes.size(), 0);
  make_dirs(s.image_dir);

  std::vector<std::vector<int>> labels(static_cast<size_t>(o.num_images));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(o.num_images));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < o.num_images;) {
      try {
        const Image img = render_demo_image(o, i, &labels[static_cast<size_t>(i)]);
        JpegEncodeOptions jo;
        jo.quality = o.quality;
        write_file(s.image_dir + "/" + std::to_string(i + 1) + ".jpg", encode_jpeg(img, jo));
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  };
  int nt = o.threads > 0 ? o.threads
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nt = static_cast<int>(std::min<int64_t>(nt, o.num_images));
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  std::string csv = "filename,labels\n";
  for (int64_t i = 0; i < o.num_images; ++i) {
    csv += std::to_string(i + 1) + ".jpg,";
    const auto& l = labels[static_cast<size_t>(i)];
    for (size_t k = 0; k < l.size(); ++k) {
      csv += (k ? " " : "") + s.classes[static_cast<size_t>(l[k])];
      s.class_counts[static_cast<size_t>(l[k])]++;
    }
    csv += "\n";
  }
  const std::string tmp = s.csv_path + ".tmp";
  write_file(tmp, std::vector<uint8_t>(csv.begin(), csv.end()));
  if (std::rename(tmp.c_str(), s.csv_path.c_str()) != 0)
    CUDL_THROW(s.csv_path, ": cannot write (rename from ", tmp, " failed: ", std::strerror(errno),
               ")");
  return s;
}

}  // namespace cudl::data
