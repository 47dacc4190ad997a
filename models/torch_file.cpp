// torch.save zip archives -> named tensors (declared in models/weights_import.h).
//
// Layout written by PyTorch >= 1.6: <archive>/data.pkl (the pickled object, tensors as
// persistent ids), <archive>/data/<key> (one entry per storage, raw little-endian elements),
// <archive>/version, and since 2.x <archive>/byteorder. <archive> is usually the file's stem
// or "archive".
#include <cstring>
#include <map>
#include <set>

#include "models/raw_tensor.h"
#include "models/torch_pickle.h"
#include "models/weights_import.h"
#include "models/zip_archive.h"

namespace cudl {

namespace {

using torch_pickle::Value;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Printable, bounded form of a name taken from a file.
std::string shown(const std::string& s) {
  std::string r;
  for (char c : s) r += (c >= 32 && c < 127) ? c : '?';
  return r.size() > 120 ? r.substr(0, 120) + "..." : r;
}

class TensorBuilder {
 public:
  TensorBuilder(std::string file, const ZipArchive& zip, std::string prefix, uint64_t file_size)
      : file_(std::move(file)), zip_(zip), prefix_(std::move(prefix)), file_size_(file_size) {}

  Tensor build(const std::string& name, const Value& t) {
    const Value& s = *t.storage;
    const std::string what = str(file_, ": tensor '", shown(name), "'");
    const uint8_t* base = storage_bytes(s, what);

    // Every element the view can reach must lie in the storage.
    CUDL_CHECK(t.offset >= 0, what, ": negative storage offset ", t.offset);
    int64_t numel = 1, last = t.offset;
    bool broadcast = false;
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      CUDL_CHECK(t.sizes[d] >= 0 && t.strides[d] >= 0, what, ": negative size or stride (",
                 t.sizes[d], ", ", t.strides[d], ") in dimension ", d);
      CUDL_CHECK(!__builtin_mul_overflow(numel, t.sizes[d], &numel), what, ": size overflows");
      broadcast = broadcast || (t.strides[d] == 0 && t.sizes[d] > 1);
    }
    if (numel > 0) {
      for (size_t d = 0; d < t.sizes.size(); ++d) {
        int64_t reach;
        CUDL_CHECK(!__builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &reach) &&
                       !__builtin_add_overflow(last, reach, &last),
                   what, ": its strides overflow");
      }
      CUDL_CHECK(last < s.storage_numel, what, ": its view (offset ", t.offset, ", sizes ",
                 shape_str(Shape(t.sizes)), ", strides ", shape_str(Shape(t.strides)),
                 ") reaches element ", last, " of storage '", shown(s.storage_key), "', which has ",
                 s.storage_numel, " elements");
    }
    // Broadcast (stride-0) views are legal, but a hostile file could use them to ask for
    // terabytes: the tensors may not grow far beyond the file.
    const uint64_t out_elsize = raw_is_floating(s.storage_type) ? 4 : 8;
    uint64_t bytes = 0;
    bool huge = __builtin_mul_overflow(static_cast<uint64_t>(numel), out_elsize, &bytes) ||
                __builtin_add_overflow(total_bytes_, bytes, &total_bytes_);
    CUDL_CHECK(!broadcast || (!huge && total_bytes_ <= 16 * file_size_ + (64u << 20)), what,
               ": its broadcast (stride 0) view expands to ", numel,
               " elements, far more than the file holds; refusing");
    return gather_raw(s.storage_type, base, Shape(t.sizes.begin(), t.sizes.end()), t.strides,
                      t.offset);
  }

 private:
  const uint8_t* storage_bytes(const Value& s, const std::string& what) {
    auto it = storages_.find(s.storage_key);
    if (it != storages_.end()) {
      CUDL_CHECK(it->second.second == s.storage_type, what, ": storage '", shown(s.storage_key),
                 "' is used as both ", torch_pickle::storage_type_name(it->second.second), " and ",
                 torch_pickle::storage_type_name(s.storage_type));
      return it->second.first;
    }
    std::string entry_name = prefix_ + "data/" + s.storage_key;
    const ZipArchive::Entry* e = zip_.find(entry_name);
    CUDL_CHECK(e, what, ": its storage '", shown(s.storage_key), "' (zip entry '",
               shown(entry_name), "') is missing from the archive");
    size_t elsize = raw_element_size(s.storage_type);
    uint64_t need = 0;
    CUDL_CHECK(s.storage_numel >= 0 &&
                   !__builtin_mul_overflow(static_cast<uint64_t>(s.storage_numel), elsize, &need) &&
                   need == e->size,
               what, ": storage '", shown(s.storage_key), "' should hold ", s.storage_numel, " ",
               torch_pickle::storage_type_name(s.storage_type), " elements (", need,
               " bytes) but its zip entry has ", e->size, " bytes");
    const uint8_t* p = zip_.read(*e);  // checks the CRC-32
    storages_.emplace(s.storage_key, std::make_pair(p, s.storage_type));
    return p;
  }

  std::string file_;
  const ZipArchive& zip_;
  std::string prefix_;
  uint64_t file_size_;
  std::map<std::string, std::pair<const uint8_t*, RawType>> storages_;
  uint64_t total_bytes_ = 0;
};

bool all_tensors(const Value& dict) {
  if (dict.dict.empty()) return false;
  for (const auto& [k, v] : dict.dict)
    if (v->kind != Value::Kind::kTensor) return false;
  return true;
}

std::string key_list(const Value& dict) {
  std::string r;
  size_t n = 0;
  for (const auto& [k, v] : dict.dict) {
    if (n++ == 12) return r + ", ...";
    r += (r.empty() ? "" : ", ") +
         (k->kind == Value::Kind::kString ? "'" + shown(k->s) + "'" : std::string(k->kind_name()));
  }
  return r;
}

}  // namespace

NamedTensors read_torch_zip(const std::string& path, std::string* note) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  ZipArchive zip(path, bytes.data(), bytes.size());

  // The archive's single top folder holds data.pkl.
  const ZipArchive::Entry* pkl = nullptr;
  for (const auto& e : zip.entries()) {
    if (!ends_with(e.name, "/data.pkl") || e.name.find('/') != e.name.size() - 9) continue;
    CUDL_CHECK(!pkl, path, ": the archive has two data.pkl entries ('", shown(pkl->name), "' and '",
               shown(e.name), "')");
    pkl = &e;
  }
  if (!pkl) {
    bool torchscript = false;
    for (const auto& e : zip.entries())
      torchscript = torchscript || ends_with(e.name, "/constants.pkl") ||
                    e.name.find("/code/") != std::string::npos;
    CUDL_CHECK(!torchscript, path,
               ": this is a TorchScript archive (torch.jit.save), not a state dict; in Python, "
               "save the model's weights with torch.save(model.state_dict(), 'weights.pth')");
    CUDL_THROW(path, ": a zip archive without a data.pkl entry: not a torch.save file");
  }
  std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<archive>/"
  if (const ZipArchive::Entry* order = zip.find(prefix + "byteorder")) {
    const uint8_t* p = zip.read(*order);
    std::string bo(reinterpret_cast<const char*>(p), order->size);
    CUDL_CHECK(bo == "little", path, ": the tensors were saved in '", shown(bo),
               "' byte order; only little-endian files are supported");
  }

  const uint8_t* pkl_data = zip.read(*pkl);
  torch_pickle::Unpickled obj =
      torch_pickle::unpickle(pkl_data, pkl->size, path + ": " + shown(pkl->name));
  const Value* root = obj.root;
  CUDL_CHECK(root->kind == Value::Kind::kDict, path, ": data.pkl holds a ", root->kind_name(),
             ", not a state dict (a dict of tensors)");
  const Value* sd = root;
  if (!all_tensors(*root)) {
    sd = nullptr;
    for (const char* key : {"state_dict", "model"}) {
      for (const auto& [k, v] : root->dict) {
        if (!sd && k->kind == Value::Kind::kString && k->s == key &&
            v->kind == Value::Kind::kDict) {
          sd = v;
          if (note) *note = str("state dict read from the '", key, "' entry");
        }
      }
    }
    CUDL_CHECK(sd, path, ": data.pkl holds a dict with keys ", key_list(*root),
               " that is neither a state dict (all values tensors) nor holds one under "
               "'state_dict' or 'model'");
  }

  TensorBuilder builder(path, zip, prefix, bytes.size());
  NamedTensors out;
  std::set<std::string> seen;
  for (const auto& [k, v] : sd->dict) {
    CUDL_CHECK(k->kind == Value::Kind::kString, path, ": a state-dict key is a ", k->kind_name(),
               ", not a string");
    CUDL_CHECK(v->kind == Value::Kind::kTensor, path, ": state-dict entry '", shown(k->s),
               "' is a ", v->kind_name(), ", not a tensor");
    CUDL_CHECK(seen.insert(k->s).second, path, ": state-dict entry '", shown(k->s),
               "' appears twice");
    out.emplace_back(k->s, builder.build(k->s, *v));
  }
  CUDL_CHECK(!out.empty(), path, ": the state dict is empty");
  return out;
}

}  // namespace cudl
