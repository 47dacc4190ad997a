// The readers behind weights_import on hand-made input: the zip parser, the restricted pickle
// machine and the safetensors reader, including every truncation of a valid file (each must be
// a clean cudl::Error, never a crash or an out-of-bounds read) and hostile content. The files
// real PyTorch writes are covered by test_weights_parity.cpp.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <string>
#include <vector>

#include "models/torch_pickle.h"
#include "models/weights_import.h"
#include "models/zip_archive.h"
#include "tests/models/weights_test_util.h"

namespace cudl {
namespace {

using testing::error_of;
using testing::ScratchDir;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint32_t v) {
  b.push_back(v & 0xff);
  b.push_back((v >> 8) & 0xff);
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}
void put64(Bytes& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v));
  put32(b, static_cast<uint32_t>(v >> 32));
}
void put(Bytes& b, const std::string& s) {
  b.insert(b.end(), s.begin(), s.end());
}

struct ZipItem {
  std::string name, data;
  uint16_t method = 0;
};

// A minimal zip archive as torch.save lays it out (stored entries); with zip64, every size and
// offset goes through the Zip64 extra field and end records instead.
Bytes make_zip(const std::vector<ZipItem>& items, bool zip64 = false) {
  Bytes b;
  std::vector<uint32_t> offsets, crcs;
  for (const auto& it : items) {
    offsets.push_back(static_cast<uint32_t>(b.size()));
    uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(it.data.data()),
                                               static_cast<uInt>(it.data.size())));
    crcs.push_back(crc);
    put32(b, 0x04034b50);
    put16(b, 20);
    put16(b, 0);
    put16(b, it.method);
    put32(b, 0);
    put32(b, crc);
    put32(b, static_cast<uint32_t>(it.data.size()));
    put32(b, static_cast<uint32_t>(it.data.size()));
    put16(b, static_cast<uint32_t>(it.name.size()));
    put16(b, 3);  // an extra field of padding, as torch's aligned entries have
    put(b, it.name);
    put(b, std::string(3, 'Z'));
    put(b, it.data);
  }
  uint64_t cd_start = b.size();
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    put32(b, 0x02014b50);
    put16(b, 45);
    put16(b, 45);
    put16(b, 0);
    put16(b, it.method);
    put32(b, 0);
    put32(b, crcs[i]);
    uint32_t sz = zip64 ? 0xffffffffu : static_cast<uint32_t>(it.data.size());
    put32(b, sz);
    put32(b, sz);
    put16(b, static_cast<uint32_t>(it.name.size()));
    put16(b, zip64 ? 28 : 0);
    put16(b, 0);
    put16(b, 0);
    put16(b, 0);
    put32(b, 0);
    put32(b, zip64 ? 0xffffffffu : offsets[i]);
    put(b, it.name);
    if (zip64) {
      put16(b, 0x0001);
      put16(b, 24);
      put64(b, it.data.size());
      put64(b, it.data.size());
      put64(b, offsets[i]);
    }
  }
  uint64_t cd_size = b.size() - cd_start;
  if (zip64) {
    uint64_t z = b.size();
    put32(b, 0x06064b50);
    put64(b, 44);
    put16(b, 45);
    put16(b, 45);
    put32(b, 0);
    put32(b, 0);
    put64(b, items.size());
    put64(b, items.size());
    put64(b, cd_size);
    put64(b, cd_start);
    put32(b, 0x07064b50);
    put32(b, 0);
    put64(b, z);
    put32(b, 1);
  }
  put32(b, 0x06054b50);
  put16(b, 0);
  put16(b, 0);
  put16(b, zip64 ? 0xffff : static_cast<uint32_t>(items.size()));
  put16(b, zip64 ? 0xffff : static_cast<uint32_t>(items.size()));
  put32(b, zip64 ? 0xffffffffu : static_cast<uint32_t>(cd_size));
  put32(b, zip64 ? 0xffffffffu : static_cast<uint32_t>(cd_start));
  put16(b, 0);
  return b;
}

std::string entry_text(const ZipArchive& z, const std::string& name) {
  const ZipArchive::Entry* e = z.find(name);
  if (!e) return "<missing>";
  return std::string(reinterpret_cast<const char*>(z.read(*e)), e->size);
}

TEST(ZipReader, ReadsStoredEntriesPlainAndZip64) {
  for (bool zip64 : {false, true}) {
    Bytes b = make_zip({{"a/data.pkl", "hello"}, {"a/data/0", std::string(40, 'x')}}, zip64);
    ZipArchive z("t.zip", b.data(), b.size());
    ASSERT_EQ(z.entries().size(), 2u) << zip64;
    EXPECT_EQ(entry_text(z, "a/data.pkl"), "hello");
    EXPECT_EQ(entry_text(z, "a/data/0"), std::string(40, 'x'));
    EXPECT_EQ(z.find("nope"), nullptr);
  }
}

TEST(ZipReader, EveryTruncationIsACleanError) {
  for (bool zip64 : {false, true}) {
    Bytes b = make_zip({{"a/data.pkl", "hello"}, {"a/data/0", "0123456789"}}, zip64);
    for (size_t n = 0; n < b.size(); ++n) {
      Bytes cut(b.begin(), b.begin() + n);
      EXPECT_THROW(
          {
            ZipArchive z("t.zip", cut.data(), cut.size());
            for (const auto& e : z.entries()) z.read(e);
          },
          Error)
          << "truncated to " << n << " of " << b.size() << " bytes (zip64 " << zip64 << ")";
    }
  }
}

// Offsets of fields in the first central-directory record of make_zip's output.
size_t central_start(const Bytes& b) {
  for (size_t i = 0; i + 4 <= b.size(); ++i)
    if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2) return i;
  return 0;
}

void patch32(Bytes& b, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = (v >> (8 * k)) & 0xff;
}

TEST(ZipReader, OffsetsAndSizesPastTheEndAreRefused) {
  Bytes good = make_zip({{"a/data/0", "0123456789"}});
  size_t cd = central_start(good);

  Bytes offset = good;
  patch32(offset, cd + 42, static_cast<uint32_t>(good.size() + 100));
  std::string msg = error_of([&] { ZipArchive("t.zip", offset.data(), offset.size()); });
  EXPECT_TRUE(contains(msg, "t.zip") && contains(msg, "'a/data/0' points past the end")) << msg;

  Bytes size = good;
  patch32(size, cd + 20, 0xfffffff0u);
  patch32(size, cd + 24, 0xfffffff0u);
  msg = error_of([&] { ZipArchive("t.zip", size.data(), size.size()); });
  EXPECT_TRUE(contains(msg, "points past the end")) << msg;

  Bytes dir = good;  // the central directory itself beyond the end
  patch32(dir, dir.size() - 6, 0x7fffffffu);
  msg = error_of([&] { ZipArchive("t.zip", dir.data(), dir.size()); });
  EXPECT_TRUE(contains(msg, "central directory")) << msg;
}

TEST(ZipReader, CompressedEntriesAndCorruptDataAreRefused) {
  Bytes deflated = make_zip({{"a/data/0", "0123456789", 8}});
  std::string msg = error_of([&] { ZipArchive("t.zip", deflated.data(), deflated.size()); });
  EXPECT_TRUE(contains(msg, "compressed (method 8)")) << msg;

  Bytes flipped = make_zip({{"a/data/0", "0123456789"}});
  flipped[30 + 8 + 3 + 4] ^= 1;  // inside the entry's data
  ZipArchive z("t.zip", flipped.data(), flipped.size());
  msg = error_of([&] { z.read(z.entries()[0]); });
  EXPECT_TRUE(contains(msg, "corrupt") && contains(msg, "CRC-32")) << msg;
}

// ---- the pickle machine -------------------------------------------------------------------------

Bytes bytes(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

std::string unpickle_error(const std::string& pkl) {
  Bytes b = bytes(pkl);
  return error_of([&] { torch_pickle::unpickle(b.data(), b.size(), "data.pkl"); });
}

// A string literal with its embedded NUL bytes.
template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

// Pickle pieces: BINUNICODE, BININT1, BINPUT.
std::string U(const std::string& s) {
  Bytes n;
  put32(n, static_cast<uint32_t>(s.size()));
  return "X" + std::string(n.begin(), n.end()) + s;
}
std::string K(int v) {
  return std::string("K") + static_cast<char>(v);
}
std::string q(int i) {
  return std::string("q") + static_cast<char>(i);
}

// What torch.save writes (protocol 2) for {"a": torch.arange(6.).view(2, 3)[...]}, with the
// tensor's storage offset as a parameter.
std::string state_dict_pickle(int offset = 0) {
  return "\x80\x02}" + q(0) + U("a") + q(1) + "ctorch._utils\n_rebuild_tensor_v2\n" + q(2) + "((" +
         U("storage") + q(3) + "ctorch\nFloatStorage\n" + q(4) + U("0") + q(5) + U("cpu") + q(6) +
         K(6) + "t" + q(7) + "Q" + K(offset) + K(2) + K(3) + "\x86" + q(8) + K(3) + K(1) + "\x86" +
         q(9) + "\x89" + "ccollections\nOrderedDict\n" + q(10) + ")R" + q(11) + "t" + q(12) + "R" +
         q(13) + "s.";
}
const std::string kStateDictPickle = state_dict_pickle();

TEST(Pickle, ReadsATorchStateDict) {
  Bytes b = bytes(kStateDictPickle);
  torch_pickle::Unpickled u = torch_pickle::unpickle(b.data(), b.size(), "data.pkl");
  ASSERT_EQ(u.root->kind, torch_pickle::Value::Kind::kDict);
  ASSERT_EQ(u.root->dict.size(), 1u);
  EXPECT_EQ(u.root->dict[0].first->s, "a");
  const torch_pickle::Value* t = u.root->dict[0].second;
  ASSERT_EQ(t->kind, torch_pickle::Value::Kind::kTensor);
  EXPECT_EQ(t->sizes, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->strides, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(t->storage->storage_key, "0");
  EXPECT_EQ(t->storage->storage_numel, 6);
  EXPECT_EQ(t->storage->storage_type, RawType::kF32);
}

TEST(Pickle, RefusesEveryGlobalOutsideTheAllowList) {
  // What pickle writes for os.system("echo pwned") on Linux, protocol 2 (GLOBAL) ...
  std::string msg =
      unpickle_error(lit("\x80\x02"
                         "cposix\nsystem\nq\x00"
                         "X\x0a\x00\x00\x00"
                         "echo pwned\x85R."));
  EXPECT_TRUE(contains(msg, "refusing to load global 'posix.system' (byte 2)")) << msg;
  EXPECT_TRUE(contains(msg, "Nothing from the file was run")) << msg;
  // ... and builtins.eval through protocol 4's STACK_GLOBAL.
  msg =
      unpickle_error(lit("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"
                         "\x8c\x08"
                         "builtins\x94\x8c\x04"
                         "eval\x94\x93\x94."));
  EXPECT_TRUE(contains(msg, "'builtins.eval'")) << msg;
  for (const char* g :
       {"torch\nload", "torch._utils\n_rebuild_tensor", "collections\nOrderedDictX",
        "torch\nFloatStorageX", "torch\nStorage", "numpy.core.multiarray\n_reconstruct",
        "subprocess\nPopen", "builtins\ngetattr"}) {
    msg = unpickle_error(std::string("\x80\x02"
                                     "c") +
                         g + "\n.");
    std::string dotted = g;
    dotted[dotted.find('\n')] = '.';
    EXPECT_TRUE(contains(msg, "refusing to load global '" + dotted + "'")) << msg;
  }
}

TEST(Pickle, RefusesOpcodesThatBuildArbitraryObjects) {
  // INST, OBJ, NEWOBJ, NEWOBJ_EX, PERSID (text), EXT1: none appear in a state dict.
  for (std::string op : {std::string("i"), std::string("o"), std::string("\x81"),
                         std::string("\x92"), std::string("P"), std::string("\x82")}) {
    std::string msg = unpickle_error("\x80\x02" + op + "...");
    EXPECT_TRUE(contains(msg, "unsupported pickle opcode")) << msg;
  }
}

TEST(Pickle, MalformedStreamsAreCleanErrors) {
  // Every truncation of a valid pickle.
  for (size_t n = 0; n < kStateDictPickle.size(); ++n)
    EXPECT_FALSE(unpickle_error(kStateDictPickle.substr(0, n)).empty()) << "cut at " << n;
  EXPECT_TRUE(contains(unpickle_error("\x80\x02h\x05."), "memo entry 5")) << "get before put";
  EXPECT_TRUE(contains(unpickle_error("\x80\x02R."), "stack is empty"));
  EXPECT_TRUE(contains(unpickle_error("\x80\x02(N1R."), "stack is empty"))
      << "POP_MARK then REDUCE";
  EXPECT_TRUE(contains(unpickle_error("\x80\x02NNR."), "not a global"));
  EXPECT_TRUE(contains(unpickle_error("\x80\x02]Nb."), "BUILD on a list"));
  EXPECT_TRUE(contains(unpickle_error("\x80\x09."), "protocol 9"));
  EXPECT_TRUE(contains(unpickle_error("\x80\x02"
                                      "ctorch._utils\n_rebuild_tensor_v2\n(NNt\x85R."),
                       "6 or 7"));
  EXPECT_TRUE(contains(unpickle_error("\x80\x02"
                                      "ctorch\nFloatStorage\n)R."),
                       "is called"));
  EXPECT_TRUE(
      contains(unpickle_error("\x80\x02(" + U("storage") + "NNNNtQ."), "not a torch.*Storage"));
}

TEST(Pickle, DeepNestingAndObjectFloodsAreBounded) {
  // 200000 nested lists: built and freed without recursion.
  std::string deep = "\x80\x02" + std::string(200000, ']') + std::string(199999, 'a') + ".";
  Bytes b = bytes(deep);
  EXPECT_NO_THROW(torch_pickle::unpickle(b.data(), b.size(), "data.pkl"));
  std::string flood = "\x80\x02" + std::string(1100000, ']') + ".";
  EXPECT_TRUE(contains(unpickle_error(flood), "more than 1000000 objects"));
}

TEST(Pickle, Numbers) {
  // [LONG1 -2 (1 byte), LONG1 2^40, BININT -5, BINFLOAT 1.5]
  std::string p =
      lit("\x80\x02]q\x00(\x8a\x01\xfe\x8a\x06\x00\x00\x00\x00\x00\x01"
          "J\xfb\xff\xff\xff"
          "G\x3f\xf8\x00\x00\x00\x00\x00\x00"
          "e.");
  Bytes b = bytes(p);
  torch_pickle::Unpickled u = torch_pickle::unpickle(b.data(), b.size(), "data.pkl");
  ASSERT_EQ(u.root->items.size(), 4u);
  EXPECT_EQ(u.root->items[0]->i, -2);
  EXPECT_EQ(u.root->items[1]->i, int64_t{1} << 40);
  EXPECT_EQ(u.root->items[2]->i, -5);
  EXPECT_EQ(u.root->items[3]->f, 1.5);
}

// ---- torch.save archives built by hand ----------------------------------------------------------

std::string write_file(const ScratchDir& dir, const std::string& name, const Bytes& b) {
  std::string p = dir / name;
  std::FILE* f = std::fopen(p.c_str(), "wb");
  EXPECT_NE(f, nullptr) << p;
  if (!f) return p;
  if (!b.empty()) std::fwrite(b.data(), 1, b.size(), f);  // an empty vector's data() may be null
  std::fclose(f);
  return p;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

TEST(TorchZip, ReadsAHandMadeArchive) {
  ScratchDir dir;
  Bytes zip = make_zip({{"archive/data.pkl", kStateDictPickle},
                        {"archive/data/0", floats({0, 1, 2, 3, 4, 5})},
                        {"archive/version", "3\n"}});
  NamedTensors t = read_torch_zip(write_file(dir, "a.pth", zip));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "a");
  EXPECT_EQ(t[0].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(t[0].second.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(TorchZip, ViewsAndStoragesAreCheckedAgainstTheData) {
  ScratchDir dir;
  auto read_err = [&](std::vector<ZipItem> items) {
    return error_of([&] { read_torch_zip(write_file(dir, "a.pth", make_zip(items))); });
  };
  // The storage holds 5 floats but the pickle says 6.
  std::string msg = read_err(
      {{"archive/data.pkl", kStateDictPickle}, {"archive/data/0", floats({0, 1, 2, 3, 4})}});
  EXPECT_TRUE(contains(msg, "should hold 6 FloatStorage elements (24 bytes)") &&
              contains(msg, "20 bytes"))
      << msg;
  msg = read_err({{"archive/data.pkl", kStateDictPickle}});
  EXPECT_TRUE(contains(msg, "'archive/data/0') is missing")) << msg;
  // The view (2, 3) with stride (3, 1) at offset 1 needs element 6 of a 6-element storage.
  msg = read_err(
      {{"archive/data.pkl", state_dict_pickle(1)}, {"archive/data/0", floats({0, 1, 2, 3, 4, 5})}});
  EXPECT_TRUE(contains(msg, "reaches element 6 of storage '0', which has 6 elements")) << msg;
  msg = read_err({{"archive/byteorder", "big"}, {"archive/data.pkl", kStateDictPickle}});
  EXPECT_TRUE(contains(msg, "'big' byte order")) << msg;
  msg = read_err({{"m/code/__torch__.py", "x"}, {"m/constants.pkl", "x"}});
  EXPECT_TRUE(contains(msg, "TorchScript")) << msg;
  msg = read_err({{"a/data.pkl", kStateDictPickle}, {"b/data.pkl", kStateDictPickle}});
  EXPECT_TRUE(contains(msg, "two data.pkl")) << msg;
}

// ---- safetensors --------------------------------------------------------------------------------

Bytes safetensors(const std::string& header, const std::string& data) {
  Bytes b;
  put64(b, header.size());
  put(b, header);
  put(b, data);
  return b;
}

TEST(Safetensors, ReadsEveryDtypeInHeaderOrder) {
  ScratchDir dir;
  std::string data = floats({1.5f, -2.0f});                    // F32 [0,8)
  data += std::string("\x00\x3c\x00\xc0", 4);                  // F16 1, -2
  data += std::string("\x80\x3f\xf7\xc2", 4);                  // BF16 1, -123.5
  data += std::string("\xfd\xff\xff\xff\xff\xff\xff\xff", 8);  // I64 -3
  data += std::string("\x01\x00\x01", 3);                      // BOOL
  std::string header = R"({"z": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                       R"( "__metadata__": {"format": "pt"},)"
                       R"( "h": {"dtype": "F16", "shape": [2, 1], "data_offsets": [8, 12]},)"
                       R"( "b": {"dtype": "BF16", "shape": [2], "data_offsets": [12, 16]},)"
                       R"( "n": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]},)"
                       R"( "m": {"dtype": "BOOL", "shape": [3], "data_offsets": [24, 27]}})";
  NamedTensors t = read_safetensors(write_file(dir, "a.safetensors", safetensors(header, data)));
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0].first, "z");  // file order, not sorted
  EXPECT_EQ(t[0].second.to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(t[1].second.shape(), (Shape{2, 1}));
  EXPECT_EQ(t[1].second.to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(t[2].second.to_vector<float>(), (std::vector<float>{1.0f, -123.5f}));
  EXPECT_EQ(t[3].second.dtype(), kInt64);
  EXPECT_EQ(t[3].second.shape(), Shape{});
  EXPECT_EQ(t[3].second.item<int64_t>(), -3);
  EXPECT_EQ(t[4].second.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));

  // Every truncation is a clean error.
  Bytes whole = safetensors(header, data);
  for (size_t n = 0; n < whole.size(); ++n) {
    Bytes cut(whole.begin(), whole.begin() + n);
    EXPECT_THROW(read_safetensors(write_file(dir, "cut.safetensors", cut)), Error) << n;
  }
}

TEST(Safetensors, BadHeadersAreRefused) {
  ScratchDir dir;
  auto err = [&](const std::string& header, const std::string& data) {
    return error_of([&] { read_safetensors(write_file(dir, "a.st", safetensors(header, data))); });
  };
  std::string four = floats({1});
  EXPECT_TRUE(
      contains(err(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", four),
               "point past the end"));
  EXPECT_TRUE(
      contains(err(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", four),
               "needs 8 bytes but data_offsets give 4"));
  EXPECT_TRUE(
      contains(err(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 4]}})", four),
               "non-negative integer"));
  EXPECT_TRUE(
      contains(err(R"({"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", four),
               "'F8_E4M3'"));
  EXPECT_TRUE(contains(err(R"({"x": {"dtype": "F32"}})", four), "dtype, shape and data_offsets"));
  EXPECT_TRUE(contains(err(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                           R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                           floats({1, 2})),
                       "tensors 'a' (bytes 0 to 8) and 'b' (bytes 4 to 8) overlap"));
  EXPECT_TRUE(contains(err(R"({"x": )", four), "not valid JSON"));
  EXPECT_TRUE(contains(err(R"([1, 2])", four), "not a JSON object"));
  Bytes liar;
  put64(liar, 1000);
  put(liar, "{}");
  std::string msg = error_of([&] { read_safetensors(write_file(dir, "l.st", liar)); });
  EXPECT_TRUE(contains(msg, "claims 1000 bytes")) << msg;
}

// ---- format detection ---------------------------------------------------------------------------

TEST(Detect, RecognisesFormatsByContent) {
  auto detect = [](const std::string& head, uint64_t size) {
    return detect_weights_format(reinterpret_cast<const uint8_t*>(head.data()), head.size(), size);
  };
  EXPECT_EQ(detect("PK\x03\x04rest", 100), WeightsFileFormat::kTorchZip);
  EXPECT_EQ(detect(std::string("\x89HDF\r\n\x1a\n", 8), 100), WeightsFileFormat::kCudlHdf5);
  EXPECT_EQ(detect(std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\"", 12), 100),
            WeightsFileFormat::kSafetensors);
  EXPECT_EQ(detect(std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\"", 12), 20),
            WeightsFileFormat::kUnknown);  // header longer than the file
  EXPECT_EQ(detect(std::string("\x80\x02\x8a\x0a", 4), 100), WeightsFileFormat::kTorchLegacy);
  EXPECT_EQ(detect("hello world", 11), WeightsFileFormat::kUnknown);
  EXPECT_EQ(detect("", 0), WeightsFileFormat::kUnknown);
}

TEST(Detect, ImportNamesTheProblem) {
  ScratchDir dir;
  std::string msg = error_of([&] { import_weights(dir / "none.pth"); });
  EXPECT_TRUE(contains(msg, "none.pth") && contains(msg, "No such file")) << msg;
  msg = error_of([&] { import_weights(write_file(dir, "empty.pth", {})); });
  EXPECT_TRUE(contains(msg, "is empty")) << msg;
  msg = error_of([&] { import_weights(write_file(dir, "t.txt", bytes("just some text"))); });
  EXPECT_TRUE(contains(msg, "not a recognised weights file") && contains(msg, "6a 75 73 74"))
      << msg;
}

}  // namespace
}  // namespace cudl
