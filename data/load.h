// One image file -> RECIPE's transform: decode (JPEG at a reduced DCT scale when it is >= 2x
// larger than needed), resize the shorter side to `size`, centre crop, and either keep 8-bit
// pixels (the dataset cache) or normalise straight to float CHW (no intermediate rounding).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/transform.h"

namespace cudl::data {

struct LoadOptions {
  int size = 300;         // RECIPE: shorter side -> size, then a size x size centre crop
  DecodeOptions decode;   // max_pixels, EXIF orientation, DCT scaling (shorter_side is set here)
  bool antialias = true;  // area pre-pass when shrinking more than 2x (fastai's rule)
  // Keep more than the centre crop: the resized image with its long side limited to 2 * size
  // around the centre (what random resized crop draws from).
  bool keep_uncropped = false;
};

// A resized image as cached: (height, width, 3) uint8; (crop_y, crop_x) is the top-left corner
// of the size x size centre crop. Without keep_uncropped, height = width = size and the crop is
// at (0, 0).
struct ResizedImage {
  int height = 0;
  int width = 0;
  int crop_y = 0;
  int crop_x = 0;
  std::vector<uint8_t> pixels;
  size_t stride() const { return static_cast<size_t>(width) * 3; }
  const uint8_t* crop() const {
    return pixels.data() + static_cast<size_t>(crop_y) * stride() + crop_x * 3;
  }
};

ResizedImage load_resized(const std::string& path, const LoadOptions& options = {});
ResizedImage load_resized(const uint8_t* bytes, size_t n, const std::string& name,
                          const LoadOptions& options = {});
// Decoded pixels -> the resized image (img.full_* give the size the target is computed from).
ResizedImage resize_decoded(const Image& img, const LoadOptions& options = {});

// Decode, resize, crop and normalise into dst (3, size, size) float32.
void load_normalised(const uint8_t* bytes, size_t n, const std::string& name, float* dst,
                     const LoadOptions& options = {}, const Normalization& norm = {});

}  // namespace cudl::data
