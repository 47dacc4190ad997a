// Image files: JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB, JPEG encoding.
//
// Every decoded image is RGB, 8 bits per channel, rows top to bottom, pixels interleaved
// (H, W, 3), as PIL's Image.convert("RGB") gives it:
// - JPEG: YCbCr and RGB files as stored; greyscale replicated to three channels; CMYK and YCCK
//   files through libjpeg's CMYK output and PIL's conversion (Adobe's inverted CMYK convention,
//   R = K' - K'(255 - C')/255 in stored, inverted values), progressive and arithmetic-coded
//   files alike. Default libjpeg settings (accurate integer IDCT, fancy upsampling), as PIL.
// - PNG: palette, grey (1/2/4/8/16 bits), grey+alpha, RGB, RGBA, 8 or 16 bits, interlaced or
//   not. Alpha (and palette transparency) is dropped, 16-bit samples keep their high byte
//   (PIL does the same for 16-bit RGB; for 16-bit grey PIL clips instead, which we do not copy).
//
// Safety: the header's size is checked before any pixel buffer exists, so a 30000 x 30000 JPEG
// header is refused without allocating (DecodeOptions::max_pixels). libjpeg and libpng report
// errors through longjmp into our code, never exit(): every failure, including a truncated file
// and corrupt entropy-coded data, becomes a cudl::Error whose message starts with the file name.
//
// Reduced-size decoding: DecodeOptions::shorter_side tells the decoder that the image will be
// resized so that its shorter side becomes that many pixels (RECIPE.md). When the JPEG is at least
// twice the resized size on both sides, it is decoded at the smallest libjpeg-turbo scale M/8
// (M = 1..8) that still gives at least the resized size on both sides: the IDCT then does most of
// the shrinking (an exact 8x8 block average at 1/8) and the resampler the rest. Smaller
// reductions are not worth the change of pixels, so the notebook's 499x666 photos resized to 300
// are decoded at full size, exactly as PIL decodes them.
//
// EXIF orientation (JPEG APP1 "Exif" tag 0x0112) is ignored by default, as in the notebook (PIL's
// Image.open ignores it), and applied when DecodeOptions::apply_exif_orientation is set.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cudl::data {

// 8-bit RGB, (height, width, 3) interleaved, rows contiguous.
struct Image {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;
  // Size of the image described by the file (after EXIF orientation when applied): differs from
  // (height, width) when the JPEG was decoded at a reduced DCT scale.
  int full_height = 0;
  int full_width = 0;

  Image() = default;
  Image(int h, int w)
      : height(h),
        width(w),
        pixels(static_cast<size_t>(h) * w * 3),
        full_height(h),
        full_width(w) {}
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
};

enum class ImageFormat { kUnknown, kJpeg, kPng };
const char* to_string(ImageFormat f);
// From the first bytes (JPEG: FF D8 FF; PNG: the 8-byte signature).
ImageFormat sniff_format(const uint8_t* data, size_t size);

struct DecodeOptions {
  // Refuse images whose header declares more pixels than this (checked before allocating).
  int64_t max_pixels = 100'000'000;
  // Apply the JPEG EXIF orientation tag (rotate/flip to the upright view).
  bool apply_exif_orientation = false;
  // > 0: the caller resizes so that the shorter side becomes this; allows reduced DCT scaling of
  // JPEGs that are >= 2x larger on both sides (see the header comment). 0: always full size.
  int shorter_side = 0;
  // Reduced-size decoding on/off (only consulted when shorter_side > 0).
  bool dct_scaling = true;
  // 1..8: decode JPEGs at exactly scale_num/8 (tests); 0: automatic (above).
  int scale_num = 0;
  // Treat libjpeg's corrupt-data warnings (premature end of file, bad Huffman code, lost
  // synchronisation) as errors. PIL loads such files with grey or garbage blocks; a training set
  // should not.
  bool strict = true;
  // Optional: the rows [first, last) of the decoded image that the caller will read, given the
  // decoded size (height, width) and the file's (full_height, full_width). A JPEG's other rows
  // are skipped with jpeg_skip_scanlines (still entropy-decoded, so truncation and corruption are
  // still found, but without IDCT, upsampling and colour conversion) and left as zeros. Ignored
  // for PNG and when an EXIF orientation is applied.
  std::function<std::pair<int, int>(int height, int width, int full_height, int full_width)>
      rows_needed;
};

// Header facts without decoding the pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int height = 0;  // as stored (EXIF orientation not applied)
  int width = 0;
  int components = 0;  // JPEG: 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK; PNG: 1..4
  bool progressive = false;
  int exif_orientation = 1;  // 1..8 (1 = upright or no tag)
};

// Reads the whole file; throws "<path>: cannot open image: <reason>" or "<path>: empty file".
std::vector<uint8_t> read_file(const std::string& path);
// Writes bytes to a file (replacing it).
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

// Decodes a JPEG or PNG file to RGB. `name` (usually the path) starts every error message.
Image decode_image(const std::string& path, const DecodeOptions& options = {});
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const DecodeOptions& options = {});
ImageInfo read_image_info(const uint8_t* data, size_t size, const std::string& name);
ImageInfo read_image_info(const std::string& path);

// The EXIF orientation (1..8) of a JPEG's APP1 "Exif" payload (the bytes after the marker
// length), 1 when absent or unreadable.
int parse_exif_orientation(const uint8_t* app1, size_t size);
// Returns the image as seen upright for an EXIF orientation 1..8 (5..8 swap height and width).
Image apply_orientation(const Image& img, int orientation);

struct JpegEncodeOptions {
  int quality = 90;
  bool progressive = false;
  // Chroma subsampling of the colour planes: 420 (2x2, libjpeg's default), 422 (2x1) or 444.
  int subsampling = 420;
  bool greyscale = false;  // write a one-component JPEG (from the G channel's luma)
  // Raw APP1 payloads (e.g. an EXIF block) written after the JFIF header.
  std::vector<std::vector<uint8_t>> app1;
};
std::vector<uint8_t> encode_jpeg(const Image& img, const JpegEncodeOptions& options = {});

}  // namespace cudl::data
