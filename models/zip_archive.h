// A read-only view of a zip archive held in memory: the container of PyTorch's torch.save
// files since 1.6. Only what those files use is supported: stored (uncompressed) entries,
// optionally Zip64 records. Every offset and size read from the archive is checked against the
// file before it is used, and an entry's bytes are checked against its CRC-32 when read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cudl {

// The whole content of a file, read into memory. Throws naming the file when it cannot.
std::vector<uint8_t> read_file_bytes(const std::string& path);

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint64_t data_offset = 0;  // of the entry's bytes in the archive
    uint64_t size = 0;
    uint32_t crc32 = 0;
  };

  // Parses the end-of-central-directory record and the central directory. `file` names the
  // archive in error messages; the bytes must outlive the archive.
  ZipArchive(std::string file, const uint8_t* data, size_t size);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;  // nullptr when absent
  // The entry's bytes after checking its CRC-32.
  const uint8_t* read(const Entry& e) const;

 private:
  std::string file_;
  const uint8_t* data_;
  size_t size_;
  std::vector<Entry> entries_;
};

}  // namespace cudl
