// Optional training augmentation (all off by default, as in the notebook) and the step that turns
// a cached image into a normalised (3, S, S) float image.
//
// Each image's random choices come from Philox-4x32-10 (tensor/ops/philox.h) keyed by the
// loader's seed with a counter made of (epoch, dataset index), so they do not depend on which
// worker thread builds the batch or in what order.
// - flip: mirror left-right with probability 1/2.
// - random_resized_crop: as torchvision's RandomResizedCrop on the cached image (the resized
//   image, with its long side limited to 2 S, when the dataset keeps it uncropped; the S x S
//   crop otherwise): area fraction uniform in [min_scale, 1], log aspect ratio uniform in
//   [log 3/4, log 4/3], up to 10 tries, else the centre crop; the region is resized to S x S with
//   the same bilinear resampling as the main transform.
// - brightness b, contrast c: on values v in [0, 1], v' = clamp((v - 0.5) * k + 0.5 + d, 0, 1)
//   with d uniform in [-b, b] and k uniform in [1 - c, 1 + c], before normalisation.
#pragma once

#include <cstdint>

#include "data/load.h"
#include "data/transform.h"

namespace cudl::data {

struct AugmentOptions {
  bool flip = false;
  bool random_resized_crop = false;
  float min_scale = 0.35f;
  float brightness = 0.f;
  float contrast = 0.f;
  bool any() const { return flip || random_resized_crop || brightness > 0.f || contrast > 0.f; }
};

// The augmentation drawn for one image.
struct AugmentDraw {
  bool flip = false;
  int y = 0, x = 0, h = 0, w = 0;  // region of the cached image (the centre crop without RRC)
  float brightness = 0.f;
  float contrast = 1.f;
};
AugmentDraw draw_augment(const ResizedImage& img, int size, const AugmentOptions& aug,
                         uint64_t seed, int64_t epoch, int64_t index);

// Writes the cached image as a normalised (3, size, size) float image; `plain` is the table for
// unaugmented images (reused across calls).
void render_image(const ResizedImage& img, int size, const AugmentOptions& aug, uint64_t seed,
                  int64_t epoch, int64_t index, const Normalization& norm,
                  const NormalizeTable& plain, float* dst);

}  // namespace cudl::data
