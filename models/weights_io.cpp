#include "models/weights_io.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "models/hdf5_util.h"
#include "models/weights_import.h"

namespace cudl {

namespace {

using h5::H5File;

// Root attribute names (weights/README.md documents them).
constexpr const char* kAttrFormat = "format";
constexpr const char* kAttrVersion = "format_version";
constexpr const char* kAttrArch = "architecture";
constexpr const char* kAttrClasses = "class_names";
constexpr const char* kAttrInputSize = "input_size";
constexpr const char* kAttrMean = "normalization_mean";
constexpr const char* kAttrStd = "normalization_std";
constexpr const char* kAttrThreshold = "threshold";
constexpr const char* kAttrSource = "source";
constexpr const char* kAttrTask = "task";
constexpr const char* kAttrSplit = "split";
constexpr const char* kAttrEpoch = "epoch";
constexpr const char* kAttrSeed = "rng_seed";
constexpr const char* kAttrOffset = "rng_offset";
constexpr const char* kAttrSettings = "settings";
constexpr const char* kOptimizerGroup = "optimizer";

std::function<void(const std::string&, const std::string&)>& write_hook() {
  static std::function<void(const std::string&, const std::string&)> hook;
  return hook;
}

// Debian's HDF5 is built without thread safety: every HDF5 call below runs under this lock
// (readers hold it throughout, writers while they fill the file, not while it is fsync'ed), so
// a checkpoint written on a background thread (train/checkpoint_writer.h) never meets another
// HDF5 call.
std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

std::string dots_to_slashes(std::string s) {
  for (char& c : s)
    if (c == '.') c = '/';
  return s;
}

std::string slashes_to_dots(std::string s) {
  for (char& c : s)
    if (c == '/') c = '.';
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Names become HDF5 paths: refuse what cannot round-trip, before anything is written.
void check_names(const std::string& file, const NamedTensors& tensors, const char* kind) {
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    CUDL_CHECK(!name.empty(), file, ": a ", kind, " tensor has an empty name");
    CUDL_CHECK(name.find('/') == std::string::npos, file, ": ", kind, " tensor name '", name,
               "' contains '/' (names are dotted paths)");
    CUDL_CHECK(name.front() != '.' && name.back() != '.' && name.find("..") == std::string::npos,
               file, ": ", kind, " tensor name '", name, "' has an empty part");
    CUDL_CHECK(t.defined(), file, ": ", kind, " tensor '", name, "' is undefined");
    // Optimiser state may hold float64 hyper-parameters (learning rates); model tensors are
    // float32 or int64 as in PyTorch's state dicts.
    const bool f64_ok = std::string(kind) == "optimizer";
    CUDL_CHECK(t.dtype() == kFloat32 || t.dtype() == kInt64 || (f64_ok && t.dtype() == kFloat64),
               file, ": ", kind, " tensor '", name, "' has dtype ", toString(t.dtype()),
               "; a weights file stores float32 or int64",
               f64_ok ? " (float64 in the optimiser state)" : "");
    CUDL_CHECK(names.insert(name).second, file, ": ", kind, " tensor name '", name,
               "' appears twice");
  }
  for (const std::string& name : names) {
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
      std::string parent = name.substr(0, dot);
      CUDL_CHECK(!names.count(parent), file, ": ", kind, " tensor '", parent,
                 "' would be both a dataset and the group holding '", name, "'");
    }
  }
}

void write_meta(H5File& f, const WeightsMeta& m, const char* format) {
  f.write_string_attr(kAttrFormat, format);
  f.write_int64s_attr(kAttrVersion, {kWeightsFormatVersion}, true);
  if (m.architecture) f.write_string_attr(kAttrArch, *m.architecture);
  if (m.class_names) f.write_strings_attr(kAttrClasses, *m.class_names);
  if (m.input_size) f.write_int64s_attr(kAttrInputSize, *m.input_size, false);
  if (m.norm_mean) f.write_doubles_attr(kAttrMean, *m.norm_mean, false);
  if (m.norm_std) f.write_doubles_attr(kAttrStd, *m.norm_std, false);
  if (m.threshold) f.write_doubles_attr(kAttrThreshold, {*m.threshold}, true);
  if (m.source) f.write_string_attr(kAttrSource, *m.source);
  if (m.task) f.write_string_attr(kAttrTask, *m.task);
  if (m.split) f.write_string_attr(kAttrSplit, *m.split);
}

WeightsMeta read_meta(const H5File& f) {
  WeightsMeta m;
  if (f.has_attr(kAttrArch)) m.architecture = f.read_string_attr(kAttrArch);
  if (f.has_attr(kAttrClasses)) m.class_names = f.read_strings_attr(kAttrClasses);
  if (f.has_attr(kAttrInputSize)) m.input_size = f.read_int64s_attr(kAttrInputSize);
  if (f.has_attr(kAttrMean)) m.norm_mean = f.read_doubles_attr(kAttrMean);
  if (f.has_attr(kAttrStd)) m.norm_std = f.read_doubles_attr(kAttrStd);
  if (f.has_attr(kAttrThreshold)) {
    std::vector<double> t = f.read_doubles_attr(kAttrThreshold);
    CUDL_CHECK(t.size() == 1, f.path(), ": attribute 'threshold' should hold one number, holds ",
               t.size());
    m.threshold = t[0];
  }
  if (f.has_attr(kAttrSource)) m.source = f.read_string_attr(kAttrSource);
  if (f.has_attr(kAttrTask)) m.task = f.read_string_attr(kAttrTask);
  if (f.has_attr(kAttrSplit)) m.split = f.read_string_attr(kAttrSplit);
  return m;
}

void write_tensors(H5File& f, const NamedTensors& tensors, const std::string& group, bool fp16) {
  for (const auto& [name, t] : tensors) {
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    f.write_tensor((group.empty() ? "" : group + "/") + dots_to_slashes(name), c, fp16);
  }
}

NamedTensors read_tensors(const H5File& f, const std::string& group,
                          const std::vector<std::string>& skip, bool keep_float64 = false) {
  NamedTensors out;
  for (const std::string& rel : f.list_datasets(group, skip))
    out.emplace_back(slashes_to_dots(rel),
                     f.read_tensor(group.empty() ? rel : group + "/" + rel, keep_float64));
  return out;
}

std::string errno_text() {
  return std::strerror(errno);
}

// Makes sure the file can be opened before HDF5 tries, so a missing file or a permission
// problem gets the system's words instead of HDF5's.
void check_readable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  CUDL_CHECK(fd >= 0, "cannot open '", path, "': ", errno_text());
  ::close(fd);
}

// Points a user who passes a PyTorch or safetensors file straight to the converter.
H5File open_hdf5(const std::string& path) {
  try {
    return H5File::open_read(path);
  } catch (const Error&) {
    uint8_t head[512];
    size_t n = 0;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
      n = std::fread(head, 1, sizeof head, f);
      std::fclose(f);
    }
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path, ec);
    WeightsFileFormat format = detect_weights_format(head, n, ec ? 0 : size);
    if (format == WeightsFileFormat::kTorchZip || format == WeightsFileFormat::kSafetensors ||
        format == WeightsFileFormat::kTorchLegacy)
      CUDL_THROW(path, ": this is a ", weights_format_name(format),
                 " file, not a cudl HDF5 weights file; convert it with weights_import");
    throw;
  }
}

// Opens a weights or checkpoint file and checks its format attributes.
H5File open_checked(const std::string& path, std::string& format, int64_t& version) {
  check_readable(path);
  H5File f = open_hdf5(path);
  format.clear();
  version = 0;
  if (f.has_attr(kAttrFormat)) {
    format = f.read_string_attr(kAttrFormat);
    CUDL_CHECK(format == kWeightsFormat || format == kCheckpointFormat, path,
               ": not a cudl weights file (its 'format' attribute says '", format, "', expected '",
               kWeightsFormat, "' or '", kCheckpointFormat, "')");
    CUDL_CHECK(f.has_attr(kAttrVersion), path, ": the '", kAttrVersion, "' attribute is missing");
    std::vector<int64_t> v = f.read_int64s_attr(kAttrVersion);
    CUDL_CHECK(v.size() == 1, path, ": attribute '", kAttrVersion, "' should hold one integer");
    version = v[0];
    CUDL_CHECK(version >= 1 && version <= kWeightsFormatVersion, path, ": ", format,
               " format version ", version, " is not supported (this build reads versions 1 to ",
               kWeightsFormatVersion, "; a newer cudl wrote it?)");
  }
  return f;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  CUDL_CHECK(fd >= 0, "cannot open '", path, "' to sync it: ", errno_text());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  CUDL_CHECK(rc == 0, "cannot sync '", path, "' to disk: ", std::strerror(err));
}

// Removes the temporary file unless the rename made it the target.
struct TempFileGuard {
  std::string path;
  bool armed = true;
  ~TempFileGuard() {
    if (armed && ::unlink(path.c_str()) != 0 && errno != ENOENT)
      log_warning("cannot remove the temporary file '" + path + "': " + errno_text());
  }
};

// Temporary files of `base` left in `dir` by processes that no longer run (killed during a
// write: a checkpoint's is some 140 MB) are removed, once untouched for two minutes (a write
// takes seconds; the age also spares a live writer on another machine sharing the folder,
// whose process id means nothing here). A file whose process still runs stays.
void remove_stale_temporaries(const std::string& dir, const std::string& base) {
  const std::string prefix = "." + base + ".tmp-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "<pid>-<counter>"
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (end == rest.c_str() || *end != '-' || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still running
    std::error_code age;
    const auto modified = std::filesystem::last_write_time(e.path(), age);
    if (age || std::filesystem::file_time_type::clock::now() - modified < std::chrono::minutes(2))
      continue;
    std::error_code rm;
    if (std::filesystem::remove(e.path(), rm))
      log_warning("removed '" + e.path().string() + "', left by an interrupted write");
  }
}

// Writes `path` through a temporary file in the same directory (a rename is only atomic
// within one file system), so the previous file stays complete until the new one replaces it.
void write_atomically(const std::string& path, const std::function<void(H5File&)>& fill) {
  CUDL_CHECK(!path.empty(), "empty output file name");
  static std::atomic<unsigned> counter{0};
  std::string dir = parent_dir(path);
  std::string base = path.substr(path.find_last_of('/') + 1);
  CUDL_CHECK(!base.empty(), "'", path, "' names a directory, not a file");
  remove_stale_temporaries(dir.empty() ? "." : dir, base);
  std::string tmp;
  do {
    tmp = (dir == "/" ? "" : dir) + "/." + base + ".tmp-" + std::to_string(::getpid()) + "-" +
          std::to_string(counter++);
  } while (::access(tmp.c_str(), F_OK) == 0);
  TempFileGuard guard{tmp};
  {
    // HDF5 only under the lock: the fsync and rename below run while other threads use HDF5.
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    H5File f = H5File::create(tmp, path);
    fill(f);
    if (write_hook()) write_hook()("written", tmp);
    f.close();  // HDF5 writes its last metadata here
  }
  fsync_path(tmp, false);
  if (write_hook()) write_hook()("synced", tmp);
  CUDL_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, "cannot move '", tmp, "' to '", path,
             "': ", errno_text());
  guard.armed = false;
  // The new directory entry must survive a power cut too; the data already has.
  try {
    fsync_path(dir, true);
  } catch (const Error& e) {
    log_warning(e.message());
  }
}

std::string describe(const TensorSpec& s) {
  return str(toString(s.dtype), " ", shape_str(s.shape));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// weights

void save_weights(const std::string& path, const NamedTensors& tensors, const WeightsMeta& meta,
                  const SaveOptions& options) {
  check_names(path, tensors, "model");
  write_atomically(path, [&](H5File& f) {
    write_meta(f, meta, kWeightsFormat);
    write_tensors(f, tensors, "", options.fp16);
  });
}

WeightsFile load_weights(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  WeightsFile out;
  H5File f = open_checked(path, out.format, out.format_version);
  out.meta = read_meta(f);
  std::vector<std::string> skip;
  if (out.format == kCheckpointFormat) skip.push_back(kOptimizerGroup);
  out.tensors = read_tensors(f, "", skip);
  return out;
}

// ---------------------------------------------------------------------------------------------
// matching

bool name_matches(const std::string& pattern, const std::string& name) {
  // Iterative glob with backtracking to the last '*': linear in practice, no recursion.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

WeightsMapping torchvision_backbone_to_body() {
  WeightsMapping m;
  m.add_prefix = "body.";
  m.ignore = {"fc.*"};
  m.required_prefix = "body.";
  return m;
}

NamedTensors match_weights(const NamedTensors& tensors, const std::vector<TensorSpec>& expected,
                           const WeightsMapping& mapping, const std::string& what) {
  std::vector<std::string> missing, unexpected, wrong_shape, wrong_dtype;
  struct Found {
    std::string original;
    Tensor tensor;
  };
  std::map<std::string, Found> found;
  std::vector<std::string> found_order;
  for (const auto& [name, t] : tensors) {
    bool ignored = false;
    for (const std::string& pattern : mapping.ignore)
      ignored = ignored || name_matches(pattern, name);
    if (ignored) continue;
    std::string mapped = name;
    if (!mapping.strip_prefix.empty()) {
      if (!starts_with(name, mapping.strip_prefix)) {
        unexpected.push_back(str(name, " (does not start with '", mapping.strip_prefix, "')"));
        continue;
      }
      mapped = name.substr(mapping.strip_prefix.size());
    }
    mapped = mapping.add_prefix + mapped;
    if (!found.emplace(mapped, Found{name, t}).second) {
      unexpected.push_back(str(name, " (maps to '", mapped, "' a second time)"));
      continue;
    }
    found_order.push_back(mapped);
  }

  NamedTensors out;
  std::set<std::string> expected_names;
  for (const TensorSpec& spec : expected) {
    expected_names.insert(spec.name);
    auto it = found.find(spec.name);
    std::string in_file = it != found.end() && it->second.original != spec.name
                              ? str(" (in the file: ", it->second.original, ")")
                              : "";
    if (it == found.end()) {
      if (mapping.required_prefix.empty() || starts_with(spec.name, mapping.required_prefix))
        missing.push_back(str(spec.name, " ", describe(spec)));
      continue;
    }
    const Tensor& t = it->second.tensor;
    bool ok = true;
    if (t.shape() != spec.shape) {
      wrong_shape.push_back(str(spec.name, in_file, ": expected ", shape_str(spec.shape),
                                ", found ", shape_str(t.shape())));
      ok = false;
    }
    if (t.dtype() != spec.dtype) {
      wrong_dtype.push_back(str(spec.name, in_file, ": expected ", toString(spec.dtype), ", found ",
                                toString(t.dtype())));
      ok = false;
    }
    if (ok) out.emplace_back(spec.name, t);
  }
  for (const std::string& name : found_order) {
    if (expected_names.count(name)) continue;
    const Found& f = found.at(name);
    std::string shown = f.original == name ? name : str(name, " (in the file: ", f.original, ")");
    unexpected.push_back(
        str(shown, " ", toString(f.tensor.dtype()), " ", shape_str(f.tensor.shape())));
  }

  size_t problems = missing.size() + unexpected.size() + wrong_shape.size() + wrong_dtype.size();
  if (problems == 0) return out;
  std::string msg =
      str(what, " does not match: ", problems, problems == 1 ? " problem" : " problems", " (",
          missing.size(), " missing, ", unexpected.size(), " unexpected, ", wrong_shape.size(),
          " wrong shape, ", wrong_dtype.size(), " wrong dtype)");
  for (const auto& s : missing) msg += "\n  missing: " + s;
  for (const auto& s : unexpected) msg += "\n  unexpected: " + s;
  for (const auto& s : wrong_shape) msg += "\n  wrong shape: " + s;
  for (const auto& s : wrong_dtype) msg += "\n  wrong dtype: " + s;
  CUDL_THROW(msg);
}

NamedTensors match_weights_file(const WeightsFile& f, const std::string& path,
                                const std::vector<TensorSpec>& expected,
                                const WeightsMapping& mapping) {
  std::string what = "'" + path + "'";
  if (f.meta.architecture) what += " (" + *f.meta.architecture + ")";
  return match_weights(f.tensors, expected, mapping, what);
}

NamedTensors load_weights_checked(const std::string& path, const std::vector<TensorSpec>& expected,
                                  const WeightsMapping& mapping) {
  return match_weights_file(load_weights(path), path, expected, mapping);
}

// ---------------------------------------------------------------------------------------------
// checkpoints

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  check_names(path, ckpt.model, "model");
  check_names(path, ckpt.optimizer, "optimizer");
  for (const auto& [name, t] : ckpt.model)
    CUDL_CHECK(name != kOptimizerGroup && !starts_with(name, std::string(kOptimizerGroup) + "."),
               path, ": model tensor '", name, "' clashes with the checkpoint's optimizer group");
  write_atomically(path, [&](H5File& f) {
    write_meta(f, ckpt.meta, kCheckpointFormat);
    f.write_int64s_attr(kAttrEpoch, {ckpt.epoch}, true);
    f.write_uint64_attr(kAttrSeed, ckpt.rng_seed);
    f.write_uint64_attr(kAttrOffset, ckpt.rng_offset);
    if (!ckpt.settings.empty()) f.write_string_attr(kAttrSettings, ckpt.settings);
    write_tensors(f, ckpt.model, "", false);
    write_tensors(f, ckpt.optimizer, kOptimizerGroup, false);
  });
}

Checkpoint load_checkpoint(const std::string& path, bool tensors) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  std::string format;
  int64_t version = 0;
  H5File f = open_checked(path, format, version);
  CUDL_CHECK(format == kCheckpointFormat, path, ": not a checkpoint (format '",
             format.empty() ? "none" : format, "'; a checkpoint has format '", kCheckpointFormat,
             "' and holds the optimiser state; a weights file such as a model.h5 has none: it "
             "can start a new run (fridge_train --weights, or load_weights))");
  Checkpoint c;
  c.meta = read_meta(f);
  for (const char* attr : {kAttrEpoch, kAttrSeed, kAttrOffset})
    CUDL_CHECK(f.has_attr(attr), path, ": checkpoint attribute '", attr, "' is missing");
  std::vector<int64_t> epoch = f.read_int64s_attr(kAttrEpoch);
  CUDL_CHECK(epoch.size() == 1, path, ": attribute 'epoch' should hold one integer");
  c.epoch = epoch[0];
  c.rng_seed = f.read_uint64_attr(kAttrSeed);
  c.rng_offset = f.read_uint64_attr(kAttrOffset);
  if (f.has_attr(kAttrSettings)) c.settings = f.read_string_attr(kAttrSettings);
  if (!tensors) return c;
  c.model = read_tensors(f, "", {kOptimizerGroup});
  if (f.exists(kOptimizerGroup)) {
    CUDL_CHECK(f.is_group(kOptimizerGroup), path, ": '", kOptimizerGroup, "' is not a group");
    c.optimizer = read_tensors(f, kOptimizerGroup, {}, /*keep_float64=*/true);
  }
  return c;
}

namespace testing_hooks {
void set_atomic_write_hook(std::function<void(const std::string&, const std::string&)> hook) {
  write_hook() = std::move(hook);
}
}  // namespace testing_hooks

}  // namespace cudl
