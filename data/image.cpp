#include "data/image.h"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "data/transform.h"
#include "tensor/error.h"

namespace cudl::data {

const char* to_string(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    default:
      return "unknown";
  }
}

ImageFormat sniff_format(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::kJpeg;
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(d, png_sig, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

namespace {

// "ff d8 41 42 ('..AB')": the first bytes of a file that is not an image, for the message.
std::string first_bytes(const uint8_t* d, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string h, text;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    if (i) h += ' ';
    h += hex[d[i] >> 4];
    h += hex[d[i] & 15];
    text += (d[i] >= 32 && d[i] < 127) ? static_cast<char>(d[i]) : '.';
  }
  return h + " ('" + text + "')";
}

void check_pixels(const std::string& name, const char* what, int64_t h, int64_t w,
                  const DecodeOptions& o) {
  CUDL_CHECK(h > 0 && w > 0, name, ": ", what, " image has zero size (", w, "x", h,
             "): expected a width and height of at least 1 pixel");
  CUDL_CHECK(h * w <= o.max_pixels, name, ": ", what, " header declares ", w, "x", h, " = ", h * w,
             " pixels, more than the limit of ", o.max_pixels,
             " (DecodeOptions::max_pixels); refusing to decode it");
}

// ------------------------------------------------------------------------------------------
// JPEG through libjpeg(-turbo). Errors longjmp back into the decoding function, which turns
// them into cudl::Error. Everything mutable across setjmp lives behind a pointer that does not
// change (the rules of setjmp make changed automatic variables indeterminate after longjmp).

struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  bool strict = true;
  char message[JMSG_LENGTH_MAX] = {0};
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  cinfo->err->num_warnings++;
  const int code = cinfo->err->msg_code;
  const bool corrupt = code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER ||
                       code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC;
  if (err->strict && corrupt) {
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
  }
}

// Pixels a JPEG's components become: PIL's CMYK -> RGB on inverted (Adobe) CMYK samples.
inline uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}
void cmyk_row_to_rgb(const uint8_t* in, uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    // Stored samples are inverted: C = 255 - c, K = 255 - k, so 255 - K = k.
    const int nk = in[3];
    for (int c = 0; c < 3; ++c) {
      int v = nk - muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(v < 0 ? 0 : v);
    }
  }
}

int exif_orientation_of(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    int o = parse_exif_orientation(m->data, m->data_length);
    if (o != 1) return o;
  }
  return 1;
}

// The reduction M/8 for decoding an image of (h, w) whose shorter side becomes `shorter`.
int choose_scale_num(int h, int w, int shorter) {
  const Size2 need = resized_size(h, w, shorter);
  if (h < 2 * need.height || w < 2 * need.width) return 8;
  for (int m = 1; m < 8; ++m) {
    const int64_t sh = (static_cast<int64_t>(h) * m + 7) / 8,
                  sw = (static_cast<int64_t>(w) * m + 7) / 8;
    if (sh >= need.height && sw >= need.width) return m;
  }
  return 8;
}

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegError err;
  bool created = false;
  Image image;
  std::vector<uint8_t> cmyk_rows;
  int orientation = 1;
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const DecodeOptions& o) {
  auto st = std::make_unique<JpegState>();
  JpegState* s = st.get();
  std::memset(&s->cinfo, 0, sizeof(s->cinfo));
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = jpeg_on_error;
  s->err.pub.emit_message = jpeg_on_message;
  s->err.strict = o.strict;
  if (setjmp(s->err.jump)) {
    CUDL_CHECK(s->err.pub.msg_code != JERR_EMPTY_IMAGE, name,
               ": JPEG image has zero size (its header gives a width or height of 0): expected "
               "at least 1 x 1 pixel");
    CUDL_THROW(name, ": corrupt or truncated JPEG: ", s->err.message);
  }
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  if (o.apply_exif_orientation) jpeg_save_markers(&s->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&s->cinfo, TRUE);
  j_decompress_ptr c = &s->cinfo;
  check_pixels(name, "JPEG", c->image_height, c->image_width, o);
  if (o.apply_exif_orientation) s->orientation = exif_orientation_of(c);

  const bool cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
  if (cmyk) {
    c->out_color_space = JCS_CMYK;
  } else if (c->jpeg_color_space == JCS_GRAYSCALE || c->jpeg_color_space == JCS_YCbCr ||
             c->jpeg_color_space == JCS_RGB) {
    c->out_color_space = JCS_RGB;
  } else {
    CUDL_THROW(name, ": JPEG with ", c->num_components,
               " components in an unsupported colour space: expected greyscale, YCbCr, RGB, "
               "CMYK or YCCK");
  }
  int m = 8;
  if (o.scale_num > 0) {
    CUDL_CHECK(o.scale_num <= 8, "DecodeOptions::scale_num must be 1..8, got ", o.scale_num);
    m = o.scale_num;
  } else if (o.shorter_side > 0 && o.dct_scaling) {
    m = choose_scale_num(static_cast<int>(c->image_height), static_cast<int>(c->image_width),
                         o.shorter_side);
  }
  c->scale_num = static_cast<unsigned>(m);
  c->scale_denom = 8;
  jpeg_calc_output_dimensions(c);
  const int h = static_cast<int>(c->output_height), w = static_cast<int>(c->output_width);

  s->image = Image(h, w);
  s->image.full_height = static_cast<int>(c->image_height);
  s->image.full_width = static_cast<int>(c->image_width);
  int first = 0, last = h;
  if (o.rows_needed && s->orientation == 1) {
    const std::pair<int, int> r = o.rows_needed(h, w, s->image.full_height, s->image.full_width);
    first = std::min(std::max(r.first, 0), h);
    last = std::min(std::max(r.second, first), h);
  }
  jpeg_start_decompress(c);
  constexpr int kRows = 16;
  if (cmyk) s->cmyk_rows.resize(static_cast<size_t>(kRows) * w * 4);
  if (first > 0) jpeg_skip_scanlines(c, static_cast<JDIMENSION>(first));
  while (static_cast<int>(c->output_scanline) < last) {
    const int y = static_cast<int>(c->output_scanline);
    const int n = std::min(kRows, last - y);
    JSAMPROW rows[kRows];
    for (int i = 0; i < n; ++i)
      rows[i] = cmyk ? s->cmyk_rows.data() + static_cast<size_t>(i) * w * 4 : s->image.row(y + i);
    const int got = static_cast<int>(jpeg_read_scanlines(c, rows, static_cast<JDIMENSION>(n)));
    if (cmyk)
      for (int i = 0; i < got; ++i) cmyk_row_to_rgb(rows[i], s->image.row(y + i), w);
  }
  if (last < h) {
    // Skip to the last row and decode it (into scratch): skipping straight to the end would stop
    // reading the file, and a truncated or corrupt tail would go unnoticed.
    if (last < h - 1) jpeg_skip_scanlines(c, static_cast<JDIMENSION>(h - 1 - last));
    s->cmyk_rows.resize(static_cast<size_t>(w) * 4);
    JSAMPROW row = s->cmyk_rows.data();
    jpeg_read_scanlines(c, &row, 1);
  }
  jpeg_finish_decompress(c);
  Image out = std::move(s->image);
  if (s->orientation != 1) {
    out = apply_orientation(out, s->orientation);
  }
  return out;
}

ImageInfo jpeg_info(const uint8_t* data, size_t size, const std::string& name) {
  auto st = std::make_unique<JpegState>();
  JpegState* s = st.get();
  std::memset(&s->cinfo, 0, sizeof(s->cinfo));
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = jpeg_on_error;
  s->err.pub.emit_message = jpeg_on_message;
  if (setjmp(s->err.jump)) CUDL_THROW(name, ": corrupt or truncated JPEG: ", s->err.message);
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&s->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&s->cinfo, TRUE);
  ImageInfo info;
  info.format = ImageFormat::kJpeg;
  info.height = static_cast<int>(s->cinfo.image_height);
  info.width = static_cast<int>(s->cinfo.image_width);
  info.components = s->cinfo.num_components;
  info.progressive = s->cinfo.progressive_mode != 0;
  info.exif_orientation = exif_orientation_of(&s->cinfo);
  return info;
}

// ------------------------------------------------------------------------------------------
// PNG through libpng, with the same longjmp discipline.

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {0};
  std::vector<uint8_t> buffer;
  std::vector<png_bytep> rows;
  Image image;
  ~PngState() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}  // e.g. "known incorrect sRGB profile"

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

PngState* png_open(PngState* s, const uint8_t* data, size_t size) {
  s->data = data;
  s->size = size;
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_on_error, png_on_warning);
  CUDL_CHECK(s->png, "png_create_read_struct failed (out of memory)");
  s->info = png_create_info_struct(s->png);
  CUDL_CHECK(s->info, "png_create_info_struct failed (out of memory)");
  png_set_read_fn(s->png, s, png_read_memory);
  // Our own max_pixels check decides; libpng's default 1e6 x 1e6 limit stays as a backstop.
  return s;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const DecodeOptions& o) {
  // The IHDR chunk must come first (bytes 8..32): check the size before libpng sees the file, so
  // a zero or enormous size gets our message.
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return static_cast<int64_t>(uint32_t(data[at]) << 24 | uint32_t(data[at + 1]) << 16 |
                                  uint32_t(data[at + 2]) << 8 | uint32_t(data[at + 3]));
    };
    check_pixels(name, "PNG", be32(20), be32(16), o);
  }
  auto st = std::make_unique<PngState>();
  PngState* s = st.get();
  png_open(s, data, size);
  if (setjmp(png_jmpbuf(s->png))) CUDL_THROW(name, ": corrupt or truncated PNG: ", s->message);
  png_read_info(s->png, s->info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, type = 0, interlace = 0;
  png_get_IHDR(s->png, s->info, &w, &h, &depth, &type, &interlace, nullptr, nullptr);
  check_pixels(name, "PNG", h, w, o);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  if (depth == 16) png_set_strip_16(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  const int channels = png_get_channels(s->png, s->info);
  const size_t rowbytes = png_get_rowbytes(s->png, s->info);
  CUDL_CHECK(channels >= 1 && channels <= 4 && rowbytes == static_cast<size_t>(w) * channels, name,
             ": PNG decodes to an unexpected layout (", channels, " channels, ", rowbytes,
             " bytes per row of ", w, " pixels)");
  s->buffer.resize(rowbytes * h);
  s->rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) s->rows[y] = s->buffer.data() + rowbytes * y;
  png_read_image(s->png, s->rows.data());
  png_read_end(s->png, nullptr);
  s->image = Image(static_cast<int>(h), static_cast<int>(w));
  const int n = static_cast<int>(w);
  for (png_uint_32 y = 0; y < h; ++y) {
    const uint8_t* in = s->rows[y];
    uint8_t* out = s->image.row(static_cast<int>(y));
    for (int x = 0; x < n; ++x, in += channels, out += 3) {
      if (channels <= 2) {  // grey, grey + alpha
        out[0] = out[1] = out[2] = in[0];
      } else {  // RGB, RGBA: alpha dropped
        out[0] = in[0];
        out[1] = in[1];
        out[2] = in[2];
      }
    }
  }
  return std::move(s->image);
}

ImageInfo png_info(const uint8_t* data, size_t size, const std::string& name) {
  auto st = std::make_unique<PngState>();
  PngState* s = st.get();
  png_open(s, data, size);
  if (setjmp(png_jmpbuf(s->png))) CUDL_THROW(name, ": corrupt or truncated PNG: ", s->message);
  png_read_info(s->png, s->info);
  ImageInfo info;
  info.format = ImageFormat::kPng;
  info.width = static_cast<int>(png_get_image_width(s->png, s->info));
  info.height = static_cast<int>(png_get_image_height(s->png, s->info));
  info.components = png_get_channels(s->png, s->info);
  info.progressive = png_get_interlace_type(s->png, s->info) != PNG_INTERLACE_NONE;
  return info;
}

void check_image_bytes(const uint8_t* data, size_t size, const std::string& name, ImageFormat f) {
  CUDL_CHECK(size > 0, name, ": empty file (0 bytes): expected a JPEG or PNG image");
  CUDL_CHECK(f != ImageFormat::kUnknown, name, ": not a JPEG or PNG image (the file starts with ",
             first_bytes(data, size), "; expected ff d8 ff for JPEG or 89 50 4e 47 for PNG)");
}

// ------------------------------------------------------------------------------------------
// EXIF

uint32_t read_u16(const uint8_t* p, bool le) {
  return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1];
}
uint32_t read_u32(const uint8_t* p, bool le) {
  return le ? (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24)
            : (uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]));
}

// JPEG destination manager writing to a std::vector (libjpeg's jpeg_mem_dest uses malloc).
struct VectorDest {
  jpeg_destination_mgr pub;
  std::vector<uint8_t>* out;
  static constexpr size_t kChunk = 65536;
};
void dest_init(j_compress_ptr c) {
  auto* d = reinterpret_cast<VectorDest*>(c->dest);
  d->out->resize(VectorDest::kChunk);
  d->pub.next_output_byte = d->out->data();
  d->pub.free_in_buffer = d->out->size();
}
boolean dest_empty(j_compress_ptr c) {
  auto* d = reinterpret_cast<VectorDest*>(c->dest);
  const size_t used = d->out->size();
  d->out->resize(used * 2);
  d->pub.next_output_byte = d->out->data() + used;
  d->pub.free_in_buffer = d->out->size() - used;
  return TRUE;
}
void dest_term(j_compress_ptr c) {
  auto* d = reinterpret_cast<VectorDest*>(c->dest);
  d->out->resize(d->out->size() - d->pub.free_in_buffer);
}

struct JpegEncodeState {
  jpeg_compress_struct cinfo;
  JpegError err;
  VectorDest dest;
  bool created = false;
  std::vector<uint8_t> bytes;
  ~JpegEncodeState() {
    if (created) jpeg_destroy_compress(&cinfo);
  }
};

}  // namespace

int parse_exif_orientation(const uint8_t* p, size_t n) {
  // "Exif\0\0", then a TIFF header: byte order "II"/"MM", 42, offset of IFD0.
  if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = p + 6;
  const size_t tn = n - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I')
    le = true;
  else if (t[0] == 'M' && t[1] == 'M')
    le = false;
  else
    return 1;
  if (read_u16(t + 2, le) != 42) return 1;
  const uint32_t ifd = read_u32(t + 4, le);
  if (ifd > tn || tn - ifd < 2) return 1;
  const uint32_t count = read_u16(t + ifd, le);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + static_cast<size_t>(i) * 12;
    if (e + 12 > tn) return 1;
    if (read_u16(t + e, le) != 0x0112) continue;
    const uint32_t type = read_u16(t + e + 2, le);  // SHORT (3); some writers use LONG (4)
    uint32_t v = type == 4 ? read_u32(t + e + 8, le) : read_u16(t + e + 8, le);
    return (v >= 1 && v <= 8) ? static_cast<int>(v) : 1;
  }
  return 1;
}

Image apply_orientation(const Image& in, int o) {
  if (o <= 1 || o > 8) return in;
  const int H = in.height, W = in.width;
  const bool swap = o >= 5;
  Image out(swap ? W : H, swap ? H : W);
  out.full_height = swap ? in.full_width : in.full_height;
  out.full_width = swap ? in.full_height : in.full_width;
  for (int y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x, dst += 3) {
      int sy = y, sx = x;
      switch (o) {
        case 2:
          sx = W - 1 - x;
          break;  // mirror left-right
        case 3:
          sy = H - 1 - y;
          sx = W - 1 - x;
          break;  // rotate 180
        case 4:
          sy = H - 1 - y;
          break;  // mirror top-bottom
        case 5:
          sy = x;
          sx = y;
          break;  // transpose
        case 6:
          sy = H - 1 - x;
          sx = y;
          break;  // rotate 90 clockwise
        case 7:
          sy = H - 1 - x;
          sx = W - 1 - y;
          break;  // transverse
        case 8:
          sy = x;
          sx = W - 1 - y;
          break;  // rotate 90 counter-clockwise
      }
      const uint8_t* src = in.row(sy) + static_cast<size_t>(sx) * 3;
      dst[0] = src[0];
      dst[1] = src[1];
      dst[2] = src[2];
    }
  }
  return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) CUDL_THROW(path, ": cannot open image: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[65536];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = std::ferror(f) != 0;
  const int saved = errno;
  std::fclose(f);
  CUDL_CHECK(!failed, path, ": cannot read image: ", std::strerror(saved));
  return bytes;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) CUDL_THROW(path, ": cannot create file: ", std::strerror(errno));
  // (An empty vector's data() may be null, which fwrite may not be given even for 0 bytes.)
  const size_t put = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  const bool ok = put == bytes.size() && std::fclose(f) == 0;
  CUDL_CHECK(ok, path, ": cannot write file: ", std::strerror(errno));
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const DecodeOptions& o) {
  const ImageFormat f = sniff_format(data, size);
  check_image_bytes(data, size, name, f);
  return f == ImageFormat::kJpeg ? decode_jpeg(data, size, name, o)
                                 : decode_png(data, size, name, o);
}

Image decode_image(const std::string& path, const DecodeOptions& o) {
  const std::vector<uint8_t> bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path, o);
}

ImageInfo read_image_info(const uint8_t* data, size_t size, const std::string& name) {
  const ImageFormat f = sniff_format(data, size);
  check_image_bytes(data, size, name, f);
  return f == ImageFormat::kJpeg ? jpeg_info(data, size, name) : png_info(data, size, name);
}

ImageInfo read_image_info(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return read_image_info(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_jpeg(const Image& img, const JpegEncodeOptions& o) {
  CUDL_CHECK(img.height > 0 && img.width > 0 &&
                 img.pixels.size() == static_cast<size_t>(img.height) * img.width * 3,
             "encode_jpeg: expected a non-empty RGB image, got ", img.width, "x", img.height,
             " with ", img.pixels.size(), " bytes");
  CUDL_CHECK(o.quality >= 1 && o.quality <= 100, "encode_jpeg: quality must be 1..100, got ",
             o.quality);
  CUDL_CHECK(o.subsampling == 420 || o.subsampling == 422 || o.subsampling == 444,
             "encode_jpeg: subsampling must be 420, 422 or 444, got ", o.subsampling);
  auto st = std::make_unique<JpegEncodeState>();
  JpegEncodeState* s = st.get();
  std::memset(&s->cinfo, 0, sizeof(s->cinfo));
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = jpeg_on_error;
  if (setjmp(s->err.jump)) CUDL_THROW("encode_jpeg failed: ", s->err.message);
  jpeg_create_compress(&s->cinfo);
  s->created = true;
  j_compress_ptr c = &s->cinfo;
  s->dest.out = &s->bytes;
  s->dest.pub.init_destination = dest_init;
  s->dest.pub.empty_output_buffer = dest_empty;
  s->dest.pub.term_destination = dest_term;
  c->dest = &s->dest.pub;
  c->image_width = static_cast<JDIMENSION>(img.width);
  c->image_height = static_cast<JDIMENSION>(img.height);
  c->input_components = 3;
  c->in_color_space = JCS_RGB;
  jpeg_set_defaults(c);
  if (o.greyscale) jpeg_set_colorspace(c, JCS_GRAYSCALE);
  jpeg_set_quality(c, o.quality, TRUE);
  if (!o.greyscale) {
    c->comp_info[0].h_samp_factor = o.subsampling == 444 ? 1 : 2;
    c->comp_info[0].v_samp_factor = o.subsampling == 420 ? 2 : 1;
  }
  if (o.progressive) jpeg_simple_progression(c);
  jpeg_start_compress(c, TRUE);
  for (const auto& app1 : o.app1)
    jpeg_write_marker(c, JPEG_APP0 + 1, app1.data(), static_cast<unsigned>(app1.size()));
  while (c->next_scanline < c->image_height) {
    JSAMPROW row = const_cast<uint8_t*>(img.row(static_cast<int>(c->next_scanline)));
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  return std::move(s->bytes);
}

}  // namespace cudl::data
