#include "models/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "tensor/error.h"

namespace cudl {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  CUDL_CHECK(f, "cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  bool failed = std::ferror(f);
  int err = errno;
  std::fclose(f);
  CUDL_CHECK(!failed, "cannot read '", path, "': ", std::strerror(err));
  return bytes;
}

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kCentralSize = 46, kLocalSize = 30;
constexpr size_t kZip64EndSize = 56, kZip64LocatorSize = 20;

// Little-endian reads at a position the caller has bounds-checked.
uint16_t u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const uint8_t* p) {
  return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

// True when [offset, offset + length) lies inside a file of `size` bytes (no overflow).
bool fits(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace

ZipArchive::ZipArchive(std::string file, const uint8_t* data, size_t size)
    : file_(std::move(file)), data_(data), size_(size) {
  // The end-of-central-directory record is the last 22 bytes plus an optional comment of up
  // to 64 KiB, so search backwards for its signature.
  CUDL_CHECK(size_ >= kEndSize, file_, ": not a zip archive (", size_,
             " bytes is too short; truncated?)");
  size_t end = std::numeric_limits<size_t>::max();
  size_t lowest = size_ - kEndSize > 0xffff ? size_ - kEndSize - 0xffff : 0;
  for (size_t pos = size_ - kEndSize + 1; pos-- > lowest;) {
    if (u32(data_ + pos) == kEndSig && pos + kEndSize + u16(data_ + pos + 20) <= size_) {
      end = pos;
      break;
    }
  }
  CUDL_CHECK(end != std::numeric_limits<size_t>::max(), file_,
             ": the zip archive's end-of-central-directory record is missing (the file is "
             "truncated or not a zip archive)");
  const uint8_t* e = data_ + end;
  uint64_t count = u16(e + 10);
  uint64_t cd_size = u32(e + 12);
  uint64_t cd_offset = u32(e + 16);
  CUDL_CHECK(u16(e + 4) == 0 && u16(e + 6) == 0 && u16(e + 8) == count, file_,
             ": multi-volume zip archives are not supported");
  if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    // Zip64: a locator just before the end record points at the 64-bit end record.
    CUDL_CHECK(end >= kZip64LocatorSize && u32(e - kZip64LocatorSize) == kZip64LocatorSig, file_,
               ": the zip archive needs Zip64 records but has no Zip64 locator (corrupt)");
    uint64_t z_off = u64(e - kZip64LocatorSize + 8);
    CUDL_CHECK(fits(z_off, kZip64EndSize, end) && u32(data_ + z_off) == kZip64EndSig, file_,
               ": the Zip64 end-of-central-directory record at offset ", z_off,
               " is outside the file or damaged (truncated or corrupt)");
    const uint8_t* z = data_ + z_off;
    count = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
  }
  CUDL_CHECK(fits(cd_offset, cd_size, end), file_, ": the zip central directory (offset ",
             cd_offset, ", ", cd_size, " bytes) points past the end of its data (the file has ",
             size_, " bytes; truncated or corrupt)");
  // Each entry takes at least 46 bytes, which bounds the count a corrupt file can claim.
  CUDL_CHECK(count <= cd_size / kCentralSize, file_, ": the zip archive claims ", count,
             " entries in a ", cd_size, "-byte central directory (corrupt)");

  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  entries_.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    CUDL_CHECK(fits(pos, kCentralSize, cd_end) && u32(data_ + pos) == kCentralHeaderSig, file_,
               ": zip central directory entry ", i, " at offset ", pos, " is damaged");
    const uint8_t* c = data_ + pos;
    uint16_t flags = u16(c + 8), method = u16(c + 10);
    uint64_t csize = u32(c + 20), usize = u32(c + 24), local = u32(c + 42);
    uint32_t crc = u32(c + 16);
    size_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    CUDL_CHECK(fits(pos + kCentralSize, name_len + extra_len + comment_len, cd_end), file_,
               ": zip central directory entry ", i, " runs past the central directory (corrupt)");
    Entry entry;
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    entry.crc32 = crc;
    // Zip64 extended information replaces the fields saturated at 0xffffffff, in this order.
    const uint8_t* x = c + kCentralSize + name_len;
    const uint8_t* x_end = x + extra_len;
    while (x + 4 <= x_end) {
      uint16_t id = u16(x), len = u16(x + 2);
      CUDL_CHECK(x + 4 + len <= x_end, file_, ": zip entry '", entry.name,
                 "' has a damaged extra field");
      if (id == 0x0001) {
        const uint8_t* v = x + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xffffffffu) return;
          CUDL_CHECK(v + 8 <= x + 4 + len, file_, ": zip entry '", entry.name,
                     "' has a short Zip64 extra field");
          field = u64(v);
          v += 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      x += 4 + len;
    }
    CUDL_CHECK(!(flags & 0x1), file_, ": zip entry '", entry.name,
               "' is encrypted; torch.save never writes encrypted entries");
    CUDL_CHECK(method == 0, file_, ": zip entry '", entry.name, "' is compressed (method ", method,
               "); torch.save stores entries uncompressed, so this archive was repacked by "
               "another tool: load it in PyTorch and save it again with torch.save");
    CUDL_CHECK(csize == usize, file_, ": zip entry '", entry.name,
               "' is stored but its sizes differ (", csize, " vs ", usize, "; corrupt)");
    CUDL_CHECK(fits(local, kLocalSize, size_), file_, ": zip entry '", entry.name,
               "' points past the end of the file (local header at offset ", local, ", file size ",
               size_, ")");
    const uint8_t* l = data_ + local;
    CUDL_CHECK(u32(l) == kLocalHeaderSig, file_, ": zip entry '", entry.name,
               "' has no local header at offset ", local, " (corrupt)");
    uint64_t data_offset = local + kLocalSize + u16(l + 26) + u16(l + 28);
    CUDL_CHECK(fits(data_offset, csize, size_), file_, ": zip entry '", entry.name,
               "' points past the end of the file (", csize, " bytes at offset ", data_offset,
               ", file size ", size_, "; truncated or corrupt)");
    entry.data_offset = data_offset;
    entry.size = csize;
    entries_.push_back(std::move(entry));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const uint8_t* ZipArchive::read(const Entry& e) const {
  const uint8_t* p = data_ + e.data_offset;
  // zlib's crc32 takes a uInt length: feed large entries in pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < e.size;) {
    uInt n = static_cast<uInt>(std::min<uint64_t>(e.size - done, 1u << 30));
    crc = crc32(crc, p + done, n);
    done += n;
  }
  if (crc != e.crc32) {
    char got[16], want[16];
    std::snprintf(got, sizeof got, "%08lx", static_cast<unsigned long>(crc));
    std::snprintf(want, sizeof want, "%08lx", static_cast<unsigned long>(e.crc32));
    CUDL_THROW(file_, ": zip entry '", e.name, "' is corrupt (its CRC-32 is ", got,
               ", the archive records ", want, ")");
  }
  return p;
}

}  // namespace cudl
