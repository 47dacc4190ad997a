// JPEG/PNG decoding without a reference: round trips, reduced DCT scales, EXIF orientation,
// CMYK/YCCK written with libjpeg, and every bad image file of the issue with its message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <sys/resource.h>

#include <cmath>
#include <csetjmp>
#include <cstdio>

#include "data/image.h"
#include "data/load.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

namespace cudl::data {
namespace {

using ::cudl::testing::error_of;

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

double max_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.width, b.width);
  double m = 0;
  for (size_t i = 0; i < std::min(a.pixels.size(), b.pixels.size()); ++i)
    m = std::max(m, std::fabs(double(a.pixels[i]) - b.pixels[i]));
  return m;
}

// ---- PNG bytes by hand (the tests need headers that no encoder would write) ------------------
uint32_t crc32(const uint8_t* d, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= d[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}
// Signature and an IHDR chunk for an 8-bit RGB image of w x h.
std::vector<uint8_t> png_header(uint32_t w, uint32_t h) {
  std::vector<uint8_t> v = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  std::vector<uint8_t> chunk = {'I', 'H', 'D', 'R'};
  put32(chunk, w);
  put32(chunk, h);
  chunk.insert(chunk.end(), {8, 2, 0, 0, 0});
  put32(v, 13);
  v.insert(v.end(), chunk.begin(), chunk.end());
  put32(v, crc32(chunk.data(), chunk.size()));
  return v;
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// ---- round trips -------------------------------------------------------------------------------

TEST(Decode, JpegRoundTripKeepsContentAndOrientation) {
  const Image src = testing::test_image(61, 47);
  JpegEncodeOptions o;
  o.quality = 100;
  o.subsampling = 444;
  const std::vector<uint8_t> bytes = encode_jpeg(src, o);
  const Image out = decode_image(bytes.data(), bytes.size(), "roundtrip.jpg");
  ASSERT_EQ(out.height, 61);
  ASSERT_EQ(out.width, 47);
  // Quality 100 without subsampling: only the DCT rounding and colour conversion remain.
  EXPECT_LE(max_abs_diff(out, src), 8);
  EXPECT_EQ(read_image_info(bytes.data(), bytes.size(), "x").format, ImageFormat::kJpeg);
}

TEST(Decode, GreyJpegBecomesThreeEqualChannels) {
  JpegEncodeOptions o;
  o.greyscale = true;
  const std::vector<uint8_t> bytes = encode_jpeg(testing::test_image(20, 30), o);
  EXPECT_EQ(read_image_info(bytes.data(), bytes.size(), "grey.jpg").components, 1);
  const Image out = decode_image(bytes.data(), bytes.size(), "grey.jpg");
  for (size_t i = 0; i < out.pixels.size(); i += 3) {
    ASSERT_EQ(out.pixels[i], out.pixels[i + 1]);
    ASSERT_EQ(out.pixels[i], out.pixels[i + 2]);
  }
}

TEST(Decode, ProgressiveJpegDecodesLikeBaseline) {
  JpegEncodeOptions o;
  o.progressive = true;
  const std::vector<uint8_t> prog = encode_jpeg(testing::test_image(40, 56), o);
  o.progressive = false;
  const std::vector<uint8_t> base = encode_jpeg(testing::test_image(40, 56), o);
  EXPECT_TRUE(read_image_info(prog.data(), prog.size(), "p").progressive);
  // Same quantised coefficients, different scan order: identical pixels.
  EXPECT_EQ(max_abs_diff(decode_image(prog.data(), prog.size(), "p"),
                         decode_image(base.data(), base.size(), "b")),
            0);
}

// A CMYK or YCCK JPEG written with libjpeg the way Adobe writes them (inverted samples).
std::vector<uint8_t> cmyk_jpeg(const std::vector<uint8_t>& cmyk, int h, int w,
                               J_COLOR_SPACE space) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, space);  // writes the Adobe marker for CMYK and YCCK
  for (int i = 0; i < 4; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(cmyk.data()) + static_cast<size_t>(c.next_scanline) * w * 4;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

TEST(Decode, CmykAndYcckJpegsBecomeRgbWithAdobeInvertedConvention) {
  const int h = 24, w = 32;
  std::vector<uint8_t> inv(static_cast<size_t>(h) * w * 4);  // stored (inverted) samples
  std::vector<uint8_t> expect(static_cast<size_t>(h) * w * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int C = x * 255 / (w - 1), M = y * 255 / (h - 1), Y = 60, K = (x + y) * 2;
      uint8_t* p = &inv[(static_cast<size_t>(y) * w + x) * 4];
      p[0] = static_cast<uint8_t>(255 - C);
      p[1] = static_cast<uint8_t>(255 - M);
      p[2] = static_cast<uint8_t>(255 - Y);
      p[3] = static_cast<uint8_t>(255 - K);
      const int cmy[3] = {C, M, Y};
      for (int c = 0; c < 3; ++c)  // R = (255 - C)(255 - K) / 255
        expect[(static_cast<size_t>(y) * w + x) * 3 + c] =
            static_cast<uint8_t>(std::lround((255 - cmy[c]) * (255 - K) / 255.0));
    }
  for (J_COLOR_SPACE space : {JCS_CMYK, JCS_YCCK}) {
    const std::vector<uint8_t> bytes = cmyk_jpeg(inv, h, w, space);
    EXPECT_EQ(read_image_info(bytes.data(), bytes.size(), "cmyk").components, 4);
    const Image out = decode_image(bytes.data(), bytes.size(), "cmyk.jpg");
    Image e(h, w);
    e.pixels = expect;
    // Quality 100, no subsampling: JPEG rounding (YCCK adds a colour conversion) and the
    // product's rounding leave a few levels.
    EXPECT_LE(max_abs_diff(out, e), 6) << (space == JCS_YCCK ? "YCCK" : "CMYK");
  }
}

// ---- reduced DCT scale -------------------------------------------------------------------------

TEST(Decode, DctScalingOnlyWhenTwiceTheNeededSizeAndDocumentedScale) {
  const std::vector<uint8_t> bytes = testing::test_jpeg(600, 800);
  auto decoded = [&](int shorter, bool enabled = true) {
    DecodeOptions o;
    o.shorter_side = shorter;
    o.dct_scaling = enabled;
    return decode_image(bytes.data(), bytes.size(), "big.jpg", o);
  };
  // Needs 100 x 133: 2/8 gives 150 x 200 (1/8 would give 75 x 100, too small).
  Image a = decoded(100);
  EXPECT_EQ(a.height, 150);
  EXPECT_EQ(a.width, 200);
  EXPECT_EQ(a.full_height, 600);
  EXPECT_EQ(a.full_width, 800);
  // Needs 300 x 400, exactly half: 4/8.
  EXPECT_EQ(decoded(300).height, 300);
  // Needs 301 x 401: less than twice as large, decoded in full.
  EXPECT_EQ(decoded(301).height, 600);
  EXPECT_EQ(decoded(100, false).height, 600);
  EXPECT_EQ(decoded(0).height, 600);
  // The transform computes the target from the full size: same shape, close pixels.
  LoadOptions lo;
  lo.size = 100;
  const ResizedImage scaled = load_resized(bytes.data(), bytes.size(), "big.jpg", lo);
  lo.decode.dct_scaling = false;
  const ResizedImage full = load_resized(bytes.data(), bytes.size(), "big.jpg", lo);
  ASSERT_EQ(scaled.pixels.size(), full.pixels.size());
  double sum = 0;
  for (size_t i = 0; i < full.pixels.size(); ++i)
    sum += std::fabs(double(scaled.pixels[i]) - full.pixels[i]);
  // Two antialiasing filters (8x8 DCT-domain reduction vs area average) of the same picture.
  EXPECT_LT(sum / full.pixels.size(), 3.0);
}

// ---- decoding only the rows a crop needs --------------------------------------------------------

TEST(Decode, RowWindowGivesTheSameRowsAndStillChecksTheWholeFile) {
  const Image src = testing::test_image(100, 80, 3);
  std::vector<std::vector<uint8_t>> files;
  for (int sub : {420, 422, 444}) {
    JpegEncodeOptions o;
    o.subsampling = sub;
    files.push_back(encode_jpeg(src, o));
  }
  JpegEncodeOptions o;
  o.progressive = true;
  files.push_back(encode_jpeg(src, o));
  o.progressive = false;
  o.greyscale = true;
  files.push_back(encode_jpeg(src, o));
  std::vector<uint8_t> cmyk(100 * 80 * 4);
  for (size_t i = 0; i < cmyk.size(); ++i) cmyk[i] = static_cast<uint8_t>(i * 7 % 251);
  files.push_back(cmyk_jpeg(cmyk, 100, 80, JCS_YCCK));
  for (size_t f = 0; f < files.size(); ++f) {
    const Image full = decode_image(files[f].data(), files[f].size(), "w.jpg");
    for (auto [first, last] : {std::pair<int, int>{23, 61}, {0, 9}, {90, 100}, {17, 18}}) {
      DecodeOptions d;
      d.rows_needed = [=](int h, int w, int fh, int fw) {
        EXPECT_EQ(h, 100);
        EXPECT_EQ(fw, 80);
        return std::pair<int, int>{first, last};
      };
      const Image part = decode_image(files[f].data(), files[f].size(), "w.jpg", d);
      for (int y = first; y < last; ++y)
        ASSERT_TRUE(std::equal(part.row(y), part.row(y) + 240, full.row(y)))
            << "file " << f << ", window [" << first << ", " << last << "), row " << y;
    }
    // A truncated file is still refused when the window ends early.
    std::vector<uint8_t> cut(files[f].begin(), files[f].begin() + files[f].size() * 3 / 4);
    DecodeOptions d;
    d.rows_needed = [](int, int, int, int) { return std::pair<int, int>{0, 10}; };
    EXPECT_THAT(error_of([&] { decode_image(cut.data(), cut.size(), "cut.jpg", d); }),
                HasSubstr("Premature end of JPEG file"))
        << "file " << f;
  }
  // The dataset's loads (which decode only the crop's rows) equal a full decode then resize.
  LoadOptions lo;
  lo.size = 40;
  lo.decode.dct_scaling = false;
  const Image tall = testing::test_image(150, 60, 1);
  const std::vector<uint8_t> j = encode_jpeg(tall, JpegEncodeOptions{});
  EXPECT_EQ(load_resized(j.data(), j.size(), "tall.jpg", lo).pixels,
            resize_decoded(decode_image(j.data(), j.size(), "tall.jpg"), lo).pixels);
  // Same for the straight-to-float path the benchmark times.
  std::vector<float> direct(3 * 40 * 40), reference(3 * 40 * 40);
  load_normalised(j.data(), j.size(), "tall.jpg", direct.data(), lo);
  const Image full = decode_image(j.data(), j.size(), "tall.jpg");
  resize_normalise(plan_recipe(150, 60, 150, 60, 40), full.pixels.data(), 60 * 3, reference.data());
  EXPECT_EQ(direct, reference);
}

// ---- EXIF orientation --------------------------------------------------------------------------

std::vector<uint8_t> exif_block(int orientation, bool big_endian) {
  std::vector<uint8_t> e = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](uint32_t v) {
    if (big_endian)
      e.insert(e.end(), {uint8_t(v >> 8), uint8_t(v)});
    else
      e.insert(e.end(), {uint8_t(v), uint8_t(v >> 8)});
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian)
      e.insert(e.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
    else
      e.insert(e.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)});
  };
  e.push_back(big_endian ? 'M' : 'I');
  e.push_back(big_endian ? 'M' : 'I');
  u16(42);
  u32(8);  // IFD0 right after the header
  u16(2);  // two entries: an unrelated tag, then Orientation
  u16(0x010F);
  u16(2);
  u32(4);
  u32(0x41424300);  // Make = "ABC"
  u16(0x0112);
  u16(3);
  u32(1);
  u16(static_cast<uint32_t>(orientation));
  u16(0);
  u32(0);
  return e;
}

TEST(Exif, ParsesBothByteOrdersAndIgnoresJunk) {
  for (bool be : {false, true})
    for (int o = 1; o <= 8; ++o) {
      const auto e = exif_block(o, be);
      EXPECT_EQ(parse_exif_orientation(e.data(), e.size()), o);
    }
  auto e = exif_block(6, true);
  EXPECT_EQ(parse_exif_orientation(e.data(), e.size() - 20), 1);  // cut short
  e[6] = 'X';
  EXPECT_EQ(parse_exif_orientation(e.data(), e.size()), 1);  // bad byte order
  const uint8_t junk[] = "Exif\0\0II*\0\xff\xff\xff\x7f";
  EXPECT_EQ(parse_exif_orientation(junk, sizeof(junk)), 1);  // IFD offset out of range
}

TEST(Exif, OrientationIgnoredByDefaultAndAppliedOnRequest) {
  const Image src = testing::test_image(20, 30);
  for (int o = 1; o <= 8; ++o) {
    JpegEncodeOptions jo;
    jo.app1.push_back(exif_block(o, o % 2 == 0));
    const std::vector<uint8_t> bytes = encode_jpeg(src, jo);
    EXPECT_EQ(read_image_info(bytes.data(), bytes.size(), "e").exif_orientation, o);
    const Image plain = decode_image(bytes.data(), bytes.size(), "e.jpg");
    EXPECT_EQ(plain.height, 20);
    DecodeOptions d;
    d.apply_exif_orientation = true;
    const Image upright = decode_image(bytes.data(), bytes.size(), "e.jpg", d);
    EXPECT_EQ(upright.height, o >= 5 ? 30 : 20) << "orientation " << o;
    EXPECT_EQ(max_abs_diff(upright, apply_orientation(plain, o)), 0) << "orientation " << o;
  }
}

TEST(Exif, ApplyOrientationMapsCornersAsTheExifSpecification) {
  // 2 x 3 image whose pixel (y, x) has red = 10 y + x.
  Image img(2, 3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) img.row(y)[3 * x] = static_cast<uint8_t>(10 * y + x);
  auto red = [](const Image& i, int y, int x) { return int(i.row(y)[3 * x]); };
  // Top-left pixel of the upright image, and its size, for each orientation.
  const int top_left[9] = {0, 0, 2, 12, 10, 0, 10, 12, 2};
  for (int o = 1; o <= 8; ++o) {
    const Image r = apply_orientation(img, o);
    EXPECT_EQ(red(r, 0, 0), top_left[o]) << "orientation " << o;
    EXPECT_EQ(r.height, o >= 5 ? 3 : 2);
  }
  // 6 (rotate 90 clockwise): the left column, read bottom to top, becomes the top row.
  const Image r6 = apply_orientation(img, 6);
  EXPECT_EQ(red(r6, 0, 0), 10);
  EXPECT_EQ(red(r6, 0, 1), 0);
  EXPECT_EQ(red(r6, 2, 1), 2);
}

// ---- bad image files ---------------------------------------------------------------------------

TEST(BadImage, MissingFile) {
  TempDir dir;
  const std::string msg = error_of([&] { decode_image(dir / "nope.jpg"); });
  EXPECT_THAT(
      msg, AllOf(HasSubstr("nope.jpg"), HasSubstr("cannot open image"), HasSubstr("No such file")));
}

TEST(BadImage, EmptyFile) {
  TempDir dir;
  testing::write_text(dir / "empty.jpg", "");
  EXPECT_THAT(error_of([&] { decode_image(dir / "empty.jpg"); }),
              AllOf(HasSubstr("empty.jpg"), HasSubstr("empty file (0 bytes)")));
}

TEST(BadImage, TruncatedJpeg) {
  TempDir dir;
  std::vector<uint8_t> j = testing::test_jpeg(64, 48);
  j.resize(j.size() / 2);
  write_file(dir / "half.jpg", j);
  EXPECT_THAT(error_of([&] { decode_image(dir / "half.jpg"); }),
              AllOf(HasSubstr("half.jpg"), HasSubstr("truncated"),
                    HasSubstr("Premature end of JPEG file")));
  // Cut inside the header.
  j.resize(40);
  write_file(dir / "head.jpg", j);
  EXPECT_THAT(error_of([&] { decode_image(dir / "head.jpg"); }),
              AllOf(HasSubstr("head.jpg"), HasSubstr("corrupt or truncated JPEG")));
  // PIL would load the half file with a grey bottom; so do we when asked.
  DecodeOptions lenient;
  lenient.strict = false;
  std::vector<uint8_t> half = testing::test_jpeg(64, 48);
  half.resize(half.size() / 2);
  EXPECT_EQ(decode_image(half.data(), half.size(), "half.jpg", lenient).height, 64);
}

TEST(BadImage, CorruptJpegScanData) {
  TempDir dir;
  std::vector<uint8_t> j = testing::test_jpeg(160, 200);
  size_t sos = 0;  // start of scan: the entropy-coded data follows its header
  for (size_t i = 2; i + 1 < j.size() && !sos; ++i)
    if (j[i] == 0xFF && j[i + 1] == 0xDA) sos = i;
  const size_t from = sos + 64, to = j.size() - 64;
  ASSERT_GT(sos, 0u);
  ASSERT_LT(from + 1000, to);
  // Garbage over the middle of the entropy-coded data (a fixed pseudo-random pattern).
  uint32_t x = 12345;
  for (size_t i = from; i < to; ++i) {
    x = x * 1103515245u + 12345u;
    j[i] = static_cast<uint8_t>(x >> 16);
  }
  write_file(dir / "garbage.jpg", j);
  EXPECT_THAT(error_of([&] { decode_image(dir / "garbage.jpg"); }),
              AllOf(HasSubstr("garbage.jpg"), HasSubstr("corrupt or truncated JPEG")));
  // A marker in the middle of the entropy-coded data (here an early EOI): libjpeg only warns
  // ("Corrupt JPEG data: premature end of data segment") and fills the rest with grey; strict
  // decoding turns the warning into an error. (Random bits without markers often decode
  // silently: a JPEG has no checksum.)
  std::vector<uint8_t> k = testing::test_jpeg(160, 200);
  k[(from + to) / 2] = 0xFF;
  k[(from + to) / 2 + 1] = 0xD9;
  write_file(dir / "bits.jpg", k);
  EXPECT_THAT(error_of([&] { decode_image(dir / "bits.jpg"); }),
              AllOf(HasSubstr("bits.jpg"), HasSubstr("Corrupt JPEG data")));
}

TEST(BadImage, CorruptJpegHeader) {
  std::vector<uint8_t> j = testing::test_jpeg(64, 48);
  const size_t s = testing::sof_offset(j);
  j[s + 2] = 0;  // SOF segment length 0..1: impossible
  j[s + 3] = 1;
  EXPECT_THAT(error_of([&] { decode_image(j.data(), j.size(), "badsof.jpg"); }),
              AllOf(HasSubstr("badsof.jpg"), HasSubstr("corrupt or truncated JPEG")));
}

TEST(BadImage, NotAnImage) {
  TempDir dir;
  testing::write_text(dir / "notes.jpg", "filename,labels\n1.jpg,can\n");
  EXPECT_THAT(
      error_of([&] { decode_image(dir / "notes.jpg"); }),
      AllOf(HasSubstr("notes.jpg"), HasSubstr("not a JPEG or PNG image"), HasSubstr("'filename'")));
  testing::write_text(dir / "anim.gif", "GIF89a\x01\x00\x01\x00");
  EXPECT_THAT(
      error_of([&] { decode_image(dir / "anim.gif"); }),
      AllOf(HasSubstr("anim.gif"), HasSubstr("47 49 46 38"), HasSubstr("expected ff d8 ff")));
}

TEST(BadImage, ZeroSizeJpegAndPng) {
  const std::vector<uint8_t> j = testing::with_jpeg_size(testing::test_jpeg(16, 16), 0, 16);
  EXPECT_THAT(error_of([&] { decode_image(j.data(), j.size(), "flat.jpg"); }),
              AllOf(HasSubstr("flat.jpg"), HasSubstr("zero size")));
  const std::vector<uint8_t> p = png_header(0, 5);
  EXPECT_THAT(error_of([&] { decode_image(p.data(), p.size(), "flat.png"); }),
              AllOf(HasSubstr("flat.png"), HasSubstr("zero size")));
}

TEST(BadImage, EnormousHeaderIsRefusedBeforeAllocating) {
  const long before = peak_rss_kb();
  const std::vector<uint8_t> j = testing::with_jpeg_size(testing::test_jpeg(16, 16), 30000, 30000);
  EXPECT_THAT(
      error_of([&] { decode_image(j.data(), j.size(), "huge.jpg"); }),
      AllOf(HasSubstr("huge.jpg"), HasSubstr("30000x30000"), HasSubstr("limit of 100000000")));
  const std::vector<uint8_t> p = png_header(30000, 30000);
  EXPECT_THAT(error_of([&] { decode_image(p.data(), p.size(), "huge.png"); }),
              AllOf(HasSubstr("huge.png"), HasSubstr("30000x30000")));
  // Decoding would need 2.7 GB; the peak resident size must not have moved by anything close.
  EXPECT_LT(peak_rss_kb() - before, 200 * 1024);
  // The limit is an option.
  const std::vector<uint8_t> small = testing::test_jpeg(40, 50);
  DecodeOptions o;
  o.max_pixels = 1999;
  EXPECT_THAT(error_of([&] { decode_image(small.data(), small.size(), "small.jpg", o); }),
              HasSubstr("limit of 1999"));
  o.max_pixels = 2000;
  EXPECT_EQ(decode_image(small.data(), small.size(), "small.jpg", o).width, 50);
}

TEST(BadImage, TruncatedPng) {
  std::vector<uint8_t> p = png_header(10, 10);  // no IDAT, no IEND
  EXPECT_THAT(error_of([&] { decode_image(p.data(), p.size(), "cut.png"); }),
              AllOf(HasSubstr("cut.png"), HasSubstr("truncated PNG")));
}

}  // namespace
}  // namespace cudl::data
