// Decoded pixels against PIL (tests/reference/data.py writes the files with PIL from known
// content and saves PIL's Image.open(...).convert("RGB")).
//
// Tolerance for JPEG: at most 2 levels per value, mean below 0.25. Debian's PIL links the same
// system libjpeg-turbo with the same settings (accurate integer IDCT, fancy upsampling), and the
// pixels agree exactly there; a Pillow wheel bundles its own (3.x), and another libjpeg-turbo build (SIMD or C IDCT and upsampling paths,
// other versions) can differ by a level or two, while a wrong colour conversion, upsampling or
// channel order shows tens of levels. PNG is lossless: exact.
#include <gtest/gtest.h>

#include <cmath>

#include "data/image.h"
#include "tests/common/test_util.h"

namespace cudl::data {
namespace {

std::string file(const std::string& name) {
  return cudl::testing::reference_dir("decode") + "/" + name;
}

// Compares a decoded image with PIL's (H, W, 3) uint8 array.
::testing::AssertionResult matches_pil(const Image& img, const std::string& ref_name, int max_diff,
                                       double max_mean) {
  const Tensor ref = cudl::testing::load_reference("decode", ref_name);
  if (ref.dim() != 3 || ref.size(0) != img.height || ref.size(1) != img.width || ref.size(2) != 3)
    return ::testing::AssertionFailure() << ref_name << ": PIL's shape " << shape_str(ref.shape())
                                         << " vs ours " << img.height << "x" << img.width << "x3";
  const std::vector<uint8_t> r = ref.to_vector<uint8_t>();
  int worst = 0;
  size_t where = 0;
  double sum = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const int d = std::abs(int(img.pixels[i]) - int(r[i]));
    sum += d;
    if (d > worst) {
      worst = d;
      where = i;
    }
  }
  const double mean = sum / r.size();
  if (worst > max_diff || mean > max_mean)
    return ::testing::AssertionFailure()
           << ref_name << ": max |diff| " << worst << " at pixel " << where / 3 << " channel "
           << where % 3 << " (ours " << int(img.pixels[where]) << ", PIL " << int(r[where])
           << "), mean " << mean << "; allowed " << max_diff << " and " << max_mean;
  return ::testing::AssertionSuccess() << ref_name << ": max " << worst << ", mean " << mean;
}

TEST(DecodeParity, JpegFlavoursMatchPil) {
  for (const char* name :
       {"rgb_q90_420.jpg", "rgb_q95_444.jpg", "rgb_q85_422.jpg", "progressive.jpg", "grey.jpg",
        "cmyk.jpg", "odd_17x33.jpg", "big_320x240.jpg"}) {
    std::string ref = name;
    ref.replace(ref.find('.'), 1, "_");
    EXPECT_TRUE(matches_pil(decode_image(file(name)), ref, 2, 0.25));
  }
}

TEST(DecodeParity, PngFlavoursMatchPilExactly) {
  for (const char* name : {"rgb.png", "rgba.png", "grey.png", "grey_alpha.png", "palette.png",
                           "palette_trns.png", "bilevel.png", "rgb16.png"}) {
    std::string ref = name;
    ref.replace(ref.find('.'), 1, "_");
    EXPECT_TRUE(matches_pil(decode_image(file(name)), ref, 0, 0));
  }
  // 16-bit grey keeps the high byte (PIL's convert would clip instead; see data/image.h).
  EXPECT_TRUE(matches_pil(decode_image(file("grey16.png")), "grey16_png", 0, 0));
  EXPECT_TRUE(matches_pil(decode_image(file("rgb16.png")), "rgb16_png_expected", 0, 0));
}

TEST(DecodeParity, ReducedScalesMatchPilDraft) {
  for (int s : {2, 4, 8}) {
    DecodeOptions o;
    o.scale_num = 8 / s;
    const Image img = decode_image(file("big_320x240.jpg"), o);
    EXPECT_EQ(img.full_width, 320);
    EXPECT_TRUE(matches_pil(img, "big_scale_1_" + std::to_string(s), 2, 0.25));
  }
}

TEST(DecodeParity, ExifOrientationMatchesPilExifTranspose) {
  for (int o = 1; o <= 8; ++o) {
    const std::string name = "exif_" + std::to_string(o);
    EXPECT_EQ(read_image_info(file(name + ".jpg")).exif_orientation, o);
    EXPECT_TRUE(matches_pil(decode_image(file(name + ".jpg")), name + "_raw", 2, 0.25));
    DecodeOptions d;
    d.apply_exif_orientation = true;
    EXPECT_TRUE(matches_pil(decode_image(file(name + ".jpg"), d), name + "_upright", 2, 0.25));
  }
}

}  // namespace
}  // namespace cudl::data
