#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/error.h"
#include "tensor/ops/philox.h"

namespace cudl::data {

namespace {
// Philox block k of one image's stream: key = seed', counter = (epoch, index, k). Each option uses
// its own blocks (flip: 0, random resized crop attempt a: 1 + a, colour: 11), so enabling one
// option does not change the draws of another.
struct ImageRandom {
  uint64_t seed, base;
  ImageRandom(uint64_t s, int64_t epoch, int64_t index)
      : seed(s ^ 0xA0761D6478BD642Full),
        base((static_cast<uint64_t>(epoch) << 40) ^ (static_cast<uint64_t>(index) << 4)) {}
  // The 4 uniforms in [0, 1) of block k.
  void block(int k, float u[4]) const {
    const philox::Uint4 b = philox::block(seed, base + static_cast<uint64_t>(k));
    u[0] = philox::to_unit(b.x);
    u[1] = philox::to_unit(b.y);
    u[2] = philox::to_unit(b.z);
    u[3] = philox::to_unit(b.w);
  }
};
}  // namespace

AugmentDraw draw_augment(const ResizedImage& img, int size, const AugmentOptions& aug,
                         uint64_t seed, int64_t epoch, int64_t index) {
  AugmentDraw d;
  d.y = img.crop_y;
  d.x = img.crop_x;
  d.h = std::min(size, img.height);
  d.w = std::min(size, img.width);
  const ImageRandom rng(seed, epoch, index);
  float u[4];
  if (aug.flip) {
    rng.block(0, u);
    d.flip = u[0] < 0.5f;
  }
  if (aug.random_resized_crop) {
    const double area = static_cast<double>(img.height) * img.width;
    const double lr0 = std::log(3.0 / 4.0), lr1 = std::log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; ++attempt) {
      rng.block(1 + attempt, u);
      const double target = area * (aug.min_scale + (1.0 - aug.min_scale) * u[0]);
      const double ratio = std::exp(lr0 + (lr1 - lr0) * u[1]);
      const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
      const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
      if (w > 0 && h > 0 && w <= img.width && h <= img.height) {
        d.h = h;
        d.w = w;
        d.y = std::min(img.height - h,
                       static_cast<int>(u[2] * static_cast<float>(img.height - h + 1)));
        d.x =
            std::min(img.width - w, static_cast<int>(u[3] * static_cast<float>(img.width - w + 1)));
        break;
      }
    }
  }
  if (aug.brightness > 0.f || aug.contrast > 0.f) {
    rng.block(11, u);
    if (aug.brightness > 0.f) d.brightness = aug.brightness * (2.f * u[0] - 1.f);
    if (aug.contrast > 0.f) d.contrast = 1.f + aug.contrast * (2.f * u[1] - 1.f);
  }
  return d;
}

void render_image(const ResizedImage& img, int size, const AugmentOptions& aug, uint64_t seed,
                  int64_t epoch, int64_t index, const Normalization& norm,
                  const NormalizeTable& plain, float* dst) {
  CUDL_CHECK(img.height >= size && img.width >= size, "render_image: cached image ", img.width, "x",
             img.height, " is smaller than the ", size, "x", size, " output");
  if (!aug.any()) {
    normalise_u8(img.crop(), size, size, img.stride(), dst, plain, false);
    return;
  }
  const AugmentDraw d = draw_augment(img, size, aug, seed, epoch, index);
  const NormalizeTable table(norm, d.brightness, d.contrast);
  const uint8_t* region = img.pixels.data() + static_cast<size_t>(d.y) * img.stride() + d.x * 3;
  if (d.h == size && d.w == size) {
    normalise_u8(region, size, size, img.stride(), dst, table, d.flip);
    return;
  }
  const ResizePlan plan = plan_resize(d.h, d.w, size, size, 0, 0, size, size, true);
  std::vector<uint8_t> tmp(static_cast<size_t>(size) * size * 3);
  resize_u8(plan, region, img.stride(), tmp.data());
  normalise_u8(tmp.data(), size, size, static_cast<size_t>(size) * 3, dst, table, d.flip);
}

}  // namespace cudl::data
