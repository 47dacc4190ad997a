// RECIPE.md's image transform: resize so the shorter side becomes `size`, centre crop to
// size x size, normalise with the ImageNet mean and std. All on interleaved RGB (H, W, 3).
//
// Resize (fastai v1's `transform(size=S)` without augmentation):
//   ratio = min(H/S, W/S); (h, w) = (round(H/ratio), round(W/ratio)) with Python's round (half to
//   even), computed in double as Python does.
//   Antialiasing (fastai's rule): d = min(H/h, W/w) / 2; when d > 1 (a downscale of more than 2x)
//   the image is first area-averaged to (floor(H * (1/d)), floor(W * (1/d))), exactly PyTorch's
//   F.interpolate(mode="area") = adaptive_avg_pool2d (windows [floor(i*in/out),
//   ceil((i+1)*in/out))). Then bilinear with corner-aligned sampling, PyTorch's
//   interpolate(align_corners=True): scale = float32(in-1) / float32(out-1), src = double(scale) *
//   dst, i0 = int(src), i1 = min(i0+1, in-1), lambda = float32(src - i0) (PyTorch 1.13's CPU
//   arithmetic, to the bit); out = (1-ly)((1-lx) a + lx b) + ly((1-lx) c + lx d) in float32.
// Crop: offset int((big - S + 1) * 0.5) on each side (0 on the shorter one).
// Only the cropped window is computed, row by row (separable: each needed source row is
// interpolated horizontally once into a float row, then two such rows are blended), so the cost
// is a few multiply-adds per output value plus one pass over the source rows in the window.
//
// When a JPEG was decoded at a reduced DCT scale, (H, W) above is the file's full size (the target
// size and crop do not change) and the resampling starts from the decoded pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace cudl::data {

struct Size2 {
  int height = 0;
  int width = 0;
};

// Size after resizing (height, width) so that the shorter side becomes `size`.
Size2 resized_size(int height, int width, int size);
// Offset of a centred crop of `size` in `big`: int((big - size + 1) * 0.5).
int centre_crop_offset(int big, int size);

// How one image is resampled: from (in_h, in_w) pixels, through the area pre-pass (pool_h,
// pool_w; equal to the input when there is none) to a resized image of (out_h, out_w), of which
// only the window [win_y, win_y + win_h) x [win_x, win_x + win_w) is computed.
struct ResizePlan {
  int in_h = 0, in_w = 0;
  int pool_h = 0, pool_w = 0;
  int out_h = 0, out_w = 0;
  int win_y = 0, win_x = 0, win_h = 0, win_w = 0;
  bool has_area_prepass() const { return pool_h != in_h || pool_w != in_w; }
};

// Plan for resizing (in_h, in_w) -> (out_h, out_w) and computing the given window; the area
// pre-pass follows fastai's rule when `antialias` (else plain bilinear).
ResizePlan plan_resize(int in_h, int in_w, int out_h, int out_w, int win_y, int win_x, int win_h,
                       int win_w, bool antialias = true);
// RECIPE's transform of an image whose file size is (full_h, full_w), decoded to (in_h, in_w):
// shorter side -> size, centre crop size x size.
ResizePlan plan_recipe(int full_h, int full_w, int in_h, int in_w, int size, bool antialias = true);

// Rows [first, last) of the (in_h, in_w) input that running the plan reads.
std::pair<int, int> source_rows(const ResizePlan& p);

// Per-channel normalisation out = (v / 255 - mean[c]) / std[c] of 8-bit values v.
struct Normalization {
  float mean[3] = {0.485f, 0.456f, 0.406f};  // ImageNet
  float std[3] = {0.229f, 0.224f, 0.225f};
};

// Run a plan on RGB pixels; `src_stride` is the distance between source rows in elements
// (in_w * 3 for a whole image; larger for a window of a bigger image).
// dst: (win_h, win_w, 3) uint8, each value rounded to nearest.
void resize_u8(const ResizePlan& p, const uint8_t* src, size_t src_stride, uint8_t* dst);
// dst: (win_h, win_w, 3) float, same scale as the input (used by the PyTorch parity tests).
void resize_float(const ResizePlan& p, const float* src, size_t src_stride, float* dst);
// dst: (3, win_h, win_w) float, normalised (v / 255 - mean) / std without intermediate rounding.
void resize_normalise(const ResizePlan& p, const uint8_t* src, size_t src_stride, float* dst,
                      const Normalization& n = {});

// 256-entry table per channel for normalising 8-bit values (optionally after a brightness and
// contrast change v' = clamp((v/255 - 0.5) * contrast + 0.5 + brightness, 0, 1)).
struct NormalizeTable {
  float value[3][256];
  explicit NormalizeTable(const Normalization& n = {}, float brightness = 0.f,
                          float contrast = 1.f);
};
// (h, w, 3) uint8 window with row stride `src_stride` (elements) -> (3, h, w) float through the
// table; `flip` mirrors left-right.
void normalise_u8(const uint8_t* src, int h, int w, size_t src_stride, float* dst,
                  const NormalizeTable& table, bool flip = false);

}  // namespace cudl::data
