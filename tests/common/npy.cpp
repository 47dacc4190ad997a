#include "tests/common/npy.h"

#include <cstring>
#include <fstream>
#include <vector>

namespace cudl::testing {

Tensor load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CUDL_CHECK(in, "cannot open reference file ", path,
             " (was the PyTorch reference script run? see tests/reference/)");
  char magic[8];
  in.read(magic, 8);
  CUDL_CHECK(in && std::memcmp(magic, "\x93NUMPY", 6) == 0, path, ": not a .npy file");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  }
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  CUDL_CHECK(in, path, ": truncated header");

  auto value_of = [&](const std::string& key) {
    size_t k = header.find("'" + key + "'");
    CUDL_CHECK(k != std::string::npos, path, ": header has no ", key);
    size_t colon = header.find(':', k);
    return header.substr(colon + 1);
  };
  std::string descr = value_of("descr");
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  CUDL_CHECK(value_of("fortran_order").find("False") < 3, path, ": Fortran order not supported");
  std::string shape_s = value_of("shape");
  shape_s = shape_s.substr(shape_s.find('(') + 1, shape_s.find(')') - shape_s.find('(') - 1);
  Shape shape;
  size_t pos = 0;
  while (pos < shape_s.size()) {
    size_t comma = shape_s.find(',', pos);
    std::string tok = shape_s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (tok.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(tok));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }

  DType dtype;
  bool is_bool = false;
  if (descr == "<f4") dtype = kFloat32;
  else if (descr == "<f8") dtype = kFloat64;
  else if (descr == "<i8") dtype = kInt64;
  else if (descr == "|u1") dtype = kUInt8;
  else if (descr == "|b1") { dtype = kUInt8; is_bool = true; }
  else CUDL_THROW(path, ": unsupported dtype ", descr);
  (void)is_bool;

  Tensor t = empty(shape, dtype);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  CUDL_CHECK(in, path, ": truncated data (expected ", t.nbytes(), " bytes)");
  return t;
}

}  // namespace cudl::testing
