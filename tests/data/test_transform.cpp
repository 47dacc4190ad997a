// RECIPE.md's resize + centre crop against PyTorch (tests/reference/data.py): fastai v1's rule
// (area pre-pass when shrinking more than 2x, then interpolate(bilinear, align_corners=True)),
// then the crop. Cases: the notebook's 499x666 portrait and landscape, identity, one-pixel
// changes, 3.3x upscaling, area pre-pass at 2.3x, 12x and 7.5x, tiny and odd sizes.
//
// Tolerances: float input in [0, 1): 1e-5 absolute (the bound; we sample in float32
// exactly as PyTorch's kernel and differ only in the order of a few float additions, ~1e-7).
// Byte-valued input in [0, 255] (the cached path): uint8 output within 0.5 + 1e-3 of PyTorch's
// float result (it is rounded to nearest), normalised output within 1e-5 after division by 255.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/transform.h"
#include "tests/common/test_util.h"

namespace cudl::data {
namespace {

using testing::load_reference;

constexpr int kCases = 10;
const int kSizes[kCases] = {300, 300, 300, 300, 300, 300, 100, 8, 1, 64};

ResizePlan plan_for(const Tensor& in, int size) {
  const int H = static_cast<int>(in.size(0)), W = static_cast<int>(in.size(1));
  return plan_recipe(H, W, H, W, size);
}

TEST(ResizeParity, PlanSizesMatchFastaiAndPyTorch) {
  for (int k = 0; k < kCases; ++k) {
    const Tensor in = load_reference("resize", "float_" + std::to_string(k) + "_in");
    const std::vector<int64_t> sizes =
        load_reference("resize", "sizes_" + std::to_string(k)).to_vector<int64_t>();
    const ResizePlan p = plan_for(in, kSizes[k]);
    EXPECT_EQ(p.out_h, sizes[0]) << "case " << k;
    EXPECT_EQ(p.out_w, sizes[1]) << "case " << k;
    EXPECT_EQ(p.pool_h, sizes[2]) << "case " << k << ": area pre-pass height";
    EXPECT_EQ(p.pool_w, sizes[3]) << "case " << k << ": area pre-pass width";
    EXPECT_EQ(p.win_h, kSizes[k]);
    EXPECT_EQ(p.win_w, kSizes[k]);
  }
}

TEST(ResizeParity, FloatInputMatchesPyTorchWithin1e5) {
  for (int k = 0; k < kCases; ++k) {
    const Tensor in = load_reference("resize", "float_" + std::to_string(k) + "_in");  // (H, W, 3)
    const Tensor ref =
        load_reference("resize", "float_" + std::to_string(k) + "_out");  // (S, S, 3)
    const ResizePlan p = plan_for(in, kSizes[k]);
    Tensor out = empty(ref.shape());
    resize_float(p, in.data<float>(), static_cast<size_t>(in.size(1)) * 3, out.data<float>());
    EXPECT_TRUE(testing::all_close(out, ref, 1e-5, 0)) << "case " << k << ": " << in.info();
  }
}

TEST(ResizeParity, BytePathRoundsPyTorchsFloatResult) {
  for (int k = 0; k < kCases; ++k) {
    const Tensor in =
        load_reference("resize", "byte_" + std::to_string(k) + "_in");  // uint8 (H, W, 3)
    const Tensor ref =
        load_reference("resize", "byte_" + std::to_string(k) + "_out");  // float, 0..255
    const ResizePlan p = plan_for(in, kSizes[k]);
    Tensor out = empty(ref.shape(), TensorOptions(kUInt8));
    resize_u8(p, in.data<uint8_t>(), static_cast<size_t>(in.size(1)) * 3, out.data<uint8_t>());
    EXPECT_TRUE(testing::all_close(out.to(kFloat32), ref, 0.5 + 1e-3, 0)) << "case " << k;
  }
}

TEST(ResizeParity, NormalisedPathMatchesPyTorchThenNormalize) {
  const Normalization n;
  for (int k = 0; k < kCases; ++k) {
    const Tensor in = load_reference("resize", "byte_" + std::to_string(k) + "_in");
    const Tensor ref = load_reference("resize", "byte_" + std::to_string(k) + "_out");  // (S, S, 3)
    const int S = kSizes[k];
    const ResizePlan p = plan_for(in, S);
    Tensor out = empty({3, S, S});
    resize_normalise(p, in.data<uint8_t>(), static_cast<size_t>(in.size(1)) * 3, out.data<float>(),
                     n);
    const std::vector<float> r = ref.to_vector<float>();
    std::vector<float> expect(r.size());
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x)
        for (int c = 0; c < 3; ++c)
          expect[(static_cast<size_t>(c) * S + y) * S + x] =
              (r[(static_cast<size_t>(y) * S + x) * 3 + c] / 255.f - n.mean[c]) / n.std[c];
    EXPECT_TRUE(testing::all_close(out, from_vector(expect, {3, S, S}), 1e-5, 0)) << "case " << k;
  }
}

TEST(Transform, ResizedSizeRoundsHalfToEvenLikePython) {
  // 3 x 5 -> shorter side 2: W = 5 / 1.5 = 3.333 -> 3; 5 x 2 at size 4: 10 exactly.
  EXPECT_EQ(resized_size(3, 5, 2).width, 3);
  // 10 x 25 -> 4: 25 / 2.5 = 10; 6 x 15 -> 4: 15 / 1.5 = 10.
  EXPECT_EQ(resized_size(10, 25, 4).width, 10);
  // A half: 4 x 10 -> 1 gives ratio 4 and width 2.5, which Python rounds to 2.
  EXPECT_EQ(resized_size(4, 10, 1).width, 2);
  // 4 x 14 -> 1: 3.5 rounds to 4.
  EXPECT_EQ(resized_size(4, 14, 1).width, 4);
  EXPECT_EQ(resized_size(666, 499, 300).height, 400);
  EXPECT_EQ(centre_crop_offset(400, 300), 50);
  EXPECT_EQ(centre_crop_offset(401, 300), 51);  // int((401 - 300 + 1) * 0.5)
  EXPECT_EQ(centre_crop_offset(300, 300), 0);
  EXPECT_THROW(resized_size(0, 10, 3), Error);
}

TEST(Transform, NormaliseTableAndFlip) {
  // 1 x 2 image: pixel 0 = (255, 0, 128), pixel 1 = (0, 255, 64).
  const std::vector<uint8_t> px = {255, 0, 128, 0, 255, 64};
  const Normalization n;
  const NormalizeTable t(n);
  float out[6];
  normalise_u8(px.data(), 1, 2, 6, out, t, false);
  EXPECT_FLOAT_EQ(out[0], (1.f - n.mean[0]) / n.std[0]);
  EXPECT_FLOAT_EQ(out[1], (0.f - n.mean[0]) / n.std[0]);
  EXPECT_FLOAT_EQ(out[4], (128.f / 255.f - n.mean[2]) / n.std[2]);
  normalise_u8(px.data(), 1, 2, 6, out, t, true);  // mirrored
  EXPECT_FLOAT_EQ(out[0], (0.f - n.mean[0]) / n.std[0]);
  EXPECT_FLOAT_EQ(out[3], (0.f - n.mean[1]) / n.std[1]);
  // Brightness +1 saturates everything to 1.
  const NormalizeTable bright(n, 1.f, 1.f);
  normalise_u8(px.data(), 1, 2, 6, out, bright, false);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(out[c * 2], (1.f - n.mean[c]) / n.std[c]);
}

}  // namespace
}  // namespace cudl::data
