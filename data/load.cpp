#include "data/load.h"

#include <algorithm>

#include "tensor/error.h"

namespace cudl::data {

namespace {
// The window of the resized image (length `big`) kept around a centred crop of `size`.
void keep_window(int big, int size, bool uncropped, int* start, int* length, int* crop) {
  const int c = centre_crop_offset(big, size);
  if (!uncropped) {
    *start = c;
    *length = std::min(size, big);
    *crop = 0;
    return;
  }
  *length = std::min(big, 2 * size);
  *start = std::min(std::max(0, c - (*length - size) / 2), big - *length);
  *crop = c - *start;
}

// The plan for an image decoded at (h, w) from a file of (full_h, full_w); fills the kept size
// and crop offsets of `meta`.
ResizePlan plan_for(const LoadOptions& o, int h, int w, int full_h, int full_w,
                    ResizedImage* meta) {
  const Size2 r = resized_size(full_h, full_w, o.size);
  int wy, wx;
  keep_window(r.height, o.size, o.keep_uncropped, &wy, &meta->height, &meta->crop_y);
  keep_window(r.width, o.size, o.keep_uncropped, &wx, &meta->width, &meta->crop_x);
  return plan_resize(h, w, r.height, r.width, wy, wx, meta->height, meta->width, o.antialias);
}

DecodeOptions decode_options(const LoadOptions& o) {
  CUDL_CHECK(o.size > 0, "LoadOptions::size must be positive, got ", o.size);
  DecodeOptions d = o.decode;
  d.shorter_side = o.size;
  // Only the rows the resampling reads are decoded in full.
  d.rows_needed = [o](int h, int w, int full_h, int full_w) {
    ResizedImage meta;
    return source_rows(plan_for(o, h, w, full_h, full_w, &meta));
  };
  return d;
}
}  // namespace

ResizedImage resize_decoded(const Image& img, const LoadOptions& o) {
  const int full_h = img.full_height > 0 ? img.full_height : img.height;
  const int full_w = img.full_width > 0 ? img.full_width : img.width;
  ResizedImage out;
  const ResizePlan plan = plan_for(o, img.height, img.width, full_h, full_w, &out);
  out.pixels.resize(static_cast<size_t>(out.height) * out.width * 3);
  resize_u8(plan, img.pixels.data(), static_cast<size_t>(img.width) * 3, out.pixels.data());
  return out;
}

ResizedImage load_resized(const uint8_t* bytes, size_t n, const std::string& name,
                          const LoadOptions& o) {
  return resize_decoded(decode_image(bytes, n, name, decode_options(o)), o);
}

ResizedImage load_resized(const std::string& path, const LoadOptions& o) {
  return resize_decoded(decode_image(path, decode_options(o)), o);
}

void load_normalised(const uint8_t* bytes, size_t n, const std::string& name, float* dst,
                     const LoadOptions& o, const Normalization& norm) {
  const Image img = decode_image(bytes, n, name, decode_options(o));
  const ResizePlan plan =
      plan_recipe(img.full_height, img.full_width, img.height, img.width, o.size, o.antialias);
  CUDL_CHECK(plan.win_h == o.size && plan.win_w == o.size, name, ": resized image ", plan.out_w,
             "x", plan.out_h, " is smaller than the ", o.size, "x", o.size, " crop");
  resize_normalise(plan, img.pixels.data(), static_cast<size_t>(img.width) * 3, dst, norm);
}

}  // namespace cudl::data
