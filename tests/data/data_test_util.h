// Helpers for the data tests: a temporary folder removed afterwards, files with given bytes,
// synthetic images and JPEG bytes with patched headers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image.h"
#include "tensor/error.h"

namespace cudl::data::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cudl_data_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* made = ::mkdtemp(buf.data());
    if (!made) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// A deterministic (h, w) test picture: gradients and a bright square, distinct in every quadrant.
inline Image test_image(int h, int w, int seed = 0) {
  Image img(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.row(y) + 3 * x;
      p[0] = static_cast<uint8_t>((x * 255) / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>((y * 255) / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>((x * 7 + y * 13 + seed * 50) % 256);
      if (x < w / 4 && y < h / 4) p[0] = p[1] = p[2] = 250;
    }
  return img;
}

inline std::vector<uint8_t> test_jpeg(int h, int w, int seed = 0, int quality = 90) {
  JpegEncodeOptions o;
  o.quality = quality;
  return encode_jpeg(test_image(h, w, seed), o);
}

// Offset of the first SOF0/SOF2 marker (FF C0 / FF C2) of a JPEG; its height is at +5, width at +7.
inline size_t sof_offset(const std::vector<uint8_t>& j) {
  for (size_t i = 2; i + 9 < j.size(); ++i)
    if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) return i;
  ADD_FAILURE() << "no SOF marker";
  return 0;
}

inline std::vector<uint8_t> with_jpeg_size(std::vector<uint8_t> j, int h, int w) {
  const size_t s = sof_offset(j);
  j[s + 5] = static_cast<uint8_t>(h >> 8);
  j[s + 6] = static_cast<uint8_t>(h);
  j[s + 7] = static_cast<uint8_t>(w >> 8);
  j[s + 8] = static_cast<uint8_t>(w);
  return j;
}

}  // namespace cudl::data::testing
