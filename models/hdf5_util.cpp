#include "models/hdf5_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>

#include "models/float16.h"

namespace cudl::h5 {

// ---------------------------------------------------------------------------------------------
// handles and errors

void H5Handle::reset() {
  if (id_ < 0) return;
  herr_t rc = 0;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      rc = H5Fclose(id_);
      break;
    case H5I_GROUP:
      rc = H5Gclose(id_);
      break;
    case H5I_DATASET:
      rc = H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      rc = H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      rc = H5Tclose(id_);
      break;
    case H5I_ATTR:
      rc = H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      rc = H5Pclose(id_);
      break;
    default:
      rc = H5Idec_ref(id_) < 0 ? -1 : 0;
      break;
  }
  // While an exception unwinds, that error is the one to report: a close that fails after it
  // (the file's last metadata cannot be written either on a full disk) only follows from it.
  if (rc < 0 && std::uncaught_exceptions() == 0)
    log_warning("HDF5: closing an identifier failed: " + library_error());
  else if (rc < 0)
    H5Eclear2(H5E_DEFAULT);
  id_ = -1;
}

H5Handle& H5Handle::operator=(H5Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = -1;
  }
  return *this;
}

void prepare_library() {
  // Once, before the library initialises itself (i.e. before any other call).
  static const herr_t no_atexit = H5dont_atexit();
  (void)no_atexit;
  // Every time: a thread-safe HDF5 keeps one error stack setting per thread.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

namespace {

// HDF5's I/O errors spell out the system call ("file write failed: time = ..., filename = ...,
// file descriptor = 3, errno = 28, error message = 'No space left on device', buf = 0x..., ..."):
// kept as their first words and the system's message ("file write failed: No space left on
// device").
std::string short_description(const std::string& d) {
  const std::string key = "error message = '";
  const size_t m = d.find(key);
  const size_t end = m == std::string::npos ? m : d.find('\'', m + key.size());
  if (end == std::string::npos) return d;
  const size_t cut = std::min(d.find_first_of(":,"), m);
  std::string head = d.substr(0, cut);
  while (!head.empty() && head.back() == ' ') head.pop_back();
  return head + ": " + d.substr(m + key.size(), end - m - key.size());
}

herr_t collect_error(unsigned, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (e->desc && *e->desc) out->push_back(short_description(e->desc));
  return 0;
}

// Throws "<file>: <what>: <HDF5's reason>".
[[noreturn]] void fail(const std::string& file, const std::string& what) {
  CUDL_THROW(file, ": ", what, ": ", library_error());
}

hid_t checked(hid_t id, const std::string& file, const std::string& what) {
  if (id < 0) fail(file, what);
  return id;
}

void check_rc(herr_t rc, const std::string& file, const std::string& what) {
  if (rc < 0) fail(file, what);
}

// IEEE binary16, little-endian, described the way h5py describes numpy's float16, so h5py
// reads these datasets as float16 and h5dump prints them.
H5Handle half_type(const std::string& file) {
  H5Handle t(checked(H5Tcopy(H5T_IEEE_F32LE), file, "cannot build the float16 type"));
  if (H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_ebias(t.get(), 15) < 0)
    fail(file, "cannot build the float16 type");
  return t;
}

H5Handle vlen_string_type(const std::string& file) {
  H5Handle t(checked(H5Tcopy(H5T_C_S1), file, "cannot build the string type"));
  if (H5Tset_size(t.get(), H5T_VARIABLE) < 0 || H5Tset_cset(t.get(), H5T_CSET_UTF8) < 0)
    fail(file, "cannot build the string type");
  return t;
}

H5Handle group_create_plist(const std::string& file) {
  H5Handle p(checked(H5Pcreate(H5P_GROUP_CREATE), file, "cannot create a property list"));
  check_rc(H5Pset_link_creation_order(p.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), file,
           "cannot set the link creation order");
  return p;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

// The names of a group's links in creation order when the group records it (our files),
// name order otherwise (files written by other tools).
std::vector<std::string> link_names(hid_t group, const std::string& file,
                                    const std::string& where) {
  std::vector<std::string> names;
  H5Handle gcpl(H5Gget_create_plist(group));
  unsigned flags = 0;
  if (gcpl.valid() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 &&
      (flags & H5P_CRT_ORDER_INDEXED)) {
    hsize_t idx = 0;
    if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_link, &names) >= 0)
      return names;
    names.clear();
  }
  H5Eclear2(H5E_DEFAULT);
  hsize_t idx = 0;
  if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &names) < 0)
    fail(file, "cannot list group '" + where + "'");
  return names;
}

std::string join(const std::string& a, const std::string& b) {
  return a.empty() ? b : a + "/" + b;
}

}  // namespace

std::string library_error() {
  std::vector<std::string> descs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &descs);
  H5Eclear2(H5E_DEFAULT);
  if (descs.empty()) return "HDF5 reported no details";
  if (descs.size() == 1 || descs.front() == descs.back()) return descs.front();
  return descs.front() + " (" + descs.back() + ")";
}

// ---------------------------------------------------------------------------------------------
// files

H5File H5File::create(const std::string& path, const std::string& shown_as) {
  prepare_library();
  const std::string& name = shown_as.empty() ? path : shown_as;
  H5Handle fcpl(checked(H5Pcreate(H5P_FILE_CREATE), path, "cannot create a property list"));
  check_rc(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
           path, "cannot set the link creation order");
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_EXCL, fcpl.get(), H5P_DEFAULT);
  if (id < 0) fail(name, "cannot create the HDF5 file");
  return H5File(name, id);
}

H5File H5File::open_read(const std::string& path) {
  prepare_library();
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) fail(path, "cannot open as an HDF5 file");
  return H5File(path, id);
}

void H5File::close() {
  if (!file_.valid()) return;
  check_rc(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), path_, "cannot flush the file");
  // H5Fclose writes the last metadata; its failure must reach the caller, so the handle gives
  // the id up first (a destructor could only log it).
  if (H5Fclose(file_.release()) < 0) fail(path_, "cannot close the HDF5 file");
}

H5Handle H5File::ensure_group(const std::vector<std::string>& parts) {
  H5Handle group(
      checked(H5Gopen2(file_.get(), "/", H5P_DEFAULT), path_, "cannot open the root group"));
  std::string where;
  for (const std::string& part : parts) {
    where = join(where, part);
    htri_t exists = H5Lexists(group.get(), part.c_str(), H5P_DEFAULT);
    if (exists < 0) fail(path_, "cannot look up '" + where + "'");
    hid_t next;
    if (exists > 0) {
      next = H5Gopen2(group.get(), part.c_str(), H5P_DEFAULT);
      if (next < 0) fail(path_, "'" + where + "' exists and is not a group");
    } else {
      H5Handle gcpl = group_create_plist(path_);
      next = checked(H5Gcreate2(group.get(), part.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                     path_, "cannot create group '" + where + "'");
    }
    group = H5Handle(next);
  }
  return group;
}

bool H5File::exists(const std::string& path) const {
  std::string where;
  for (const std::string& part : split_path(path)) {
    where = join(where, part);
    htri_t e = H5Lexists(file_.get(), where.c_str(), H5P_DEFAULT);
    if (e < 0) fail(path_, "cannot look up '" + where + "'");
    if (e == 0) return false;
  }
  return true;
}

bool H5File::is_group(const std::string& path) const {
  if (!exists(path)) return false;
  H5Handle obj(H5Oopen(file_.get(), path.c_str(), H5P_DEFAULT));
  if (!obj.valid()) fail(path_, "cannot open '" + path + "'");
  return H5Iget_type(obj.get()) == H5I_GROUP;
}

// ---------------------------------------------------------------------------------------------
// datasets

void H5File::write_tensor(const std::string& path, const Tensor& t, bool as_float16) {
  std::string dotted = path;  // the tensor's own name, for messages
  for (char& c : dotted)
    if (c == '/') c = '.';
  CUDL_CHECK(t.device().is_cpu() && t.is_contiguous(), path_, ": dataset '", path,
             "': internal error, expected a contiguous CPU tensor, got ", t.info());
  std::vector<std::string> parts = split_path(path);
  CUDL_CHECK(!parts.empty(), path_, ": empty dataset name");
  std::string leaf = parts.back();
  parts.pop_back();
  H5Handle group = ensure_group(parts);
  htri_t exists = H5Lexists(group.get(), leaf.c_str(), H5P_DEFAULT);
  if (exists < 0) fail(path_, "cannot look up '" + path + "'");
  CUDL_CHECK(exists == 0, path_, ": '", path, "' is written twice (a tensor name that is also a ",
             "prefix of another name, or a duplicate)");

  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  H5Handle space(
      checked(dims.empty() ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
              path_, "cannot create the dataspace of '" + path + "'"));
  H5Handle half;
  hid_t file_type, mem_type;
  const void* data = t.data_ptr();
  std::vector<uint16_t> halves;
  if (t.dtype() == kInt64) {
    file_type = H5T_STD_I64LE;
    mem_type = H5T_NATIVE_INT64;
  } else if (t.dtype() == kFloat64) {  // optimiser hyper-parameters in checkpoints
    file_type = H5T_IEEE_F64LE;
    mem_type = H5T_NATIVE_DOUBLE;
  } else if (t.dtype() == kFloat32 && !as_float16) {
    file_type = H5T_IEEE_F32LE;
    mem_type = H5T_NATIVE_FLOAT;
  } else if (t.dtype() == kFloat32) {
    half = half_type(path_);
    file_type = mem_type = half.get();
    const float* src = t.data<float>();
    halves.resize(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < halves.size(); ++i) {
      halves[i] = float_to_half(src[i]);
      CUDL_CHECK(!std::isfinite(src[i]) || (halves[i] & 0x7c00u) != 0x7c00u, path_, ": tensor '",
                 dotted, "': value ", src[i], " at element ", i,
                 " is outside float16's range (|x| <= 65504); store it as float32");
    }
    data = halves.data();
  } else {
    CUDL_THROW(path_, ": tensor '", dotted, "' has dtype ", toString(t.dtype()),
               "; a weights file stores float32 or int64");
  }
  H5Handle dset(checked(H5Dcreate2(group.get(), leaf.c_str(), file_type, space.get(), H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT),
                        path_, "cannot create dataset '" + path + "'"));
  if (t.numel() > 0)
    check_rc(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path_,
             "cannot write dataset '" + path + "'");
}

Tensor H5File::read_tensor(const std::string& path, bool keep_float64) const {
  H5Handle dset(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT));
  if (!dset.valid()) fail(path_, "cannot open dataset '" + path + "'");
  H5Handle space(
      checked(H5Dget_space(dset.get()), path_, "cannot read the shape of '" + path + "'"));
  Shape shape;
  H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_SIMPLE) {
    int nd = H5Sget_simple_extent_ndims(space.get());
    if (nd < 0) fail(path_, "cannot read the shape of '" + path + "'");
    std::vector<hsize_t> dims(static_cast<size_t>(nd));
    if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0)
      fail(path_, "cannot read the shape of '" + path + "'");
    shape.assign(dims.begin(), dims.end());
  } else {
    CUDL_CHECK(sclass == H5S_SCALAR, path_, ": dataset '", path,
               "' has no data (null dataspace); expected a tensor");
  }
  H5Handle ftype(checked(H5Dget_type(dset.get()), path_, "cannot read the type of '" + path + "'"));
  H5T_class_t tclass = H5Tget_class(ftype.get());
  Tensor out;
  if (tclass == H5T_FLOAT && keep_float64 && H5Tget_size(ftype.get()) == 8) {
    out = empty(shape, kFloat64);
    if (out.numel() > 0 && H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                   out.data_ptr()) < 0)
      fail(path_, "cannot read dataset '" + path + "' as float64");
  } else if (tclass == H5T_FLOAT) {
    out = empty(shape, kFloat32);
    H5Handle half = half_type(path_);
    htri_t is_half = H5Tequal(ftype.get(), half.get());
    if (is_half > 0) {
      // Converted here rather than by HDF5 so the widening is the exact one in float16.h.
      std::vector<uint16_t> raw(static_cast<size_t>(out.numel()));
      if (!raw.empty() &&
          H5Dread(dset.get(), half.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
        fail(path_, "cannot read dataset '" + path + "'");
      float* dst = out.data<float>();
      for (size_t i = 0; i < raw.size(); ++i) dst[i] = half_to_float(raw[i]);
    } else if (out.numel() > 0 && H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                                          H5P_DEFAULT, out.data_ptr()) < 0) {
      fail(path_, "cannot read dataset '" + path + "' as float32");
    }
  } else if (tclass == H5T_INTEGER) {
    out = empty(shape, kInt64);
    if (out.numel() > 0 &&
        H5Dread(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0)
      fail(path_, "cannot read dataset '" + path + "' as int64");
  } else {
    CUDL_THROW(path_, ": dataset '", path, "' is neither floating point nor integer (HDF5 type ",
               "class ", static_cast<int>(tclass), ")");
  }
  return out;
}

namespace {
// Weights names are a few levels deep; the limit only stops a hostile file's recursion.
constexpr int kMaxGroupDepth = 64;

void walk_group(hid_t group, const std::string& file, const std::string& abs,
                const std::string& rel, const std::vector<std::string>& skip, int depth,
                std::vector<std::string>& out) {
  CUDL_CHECK(depth < kMaxGroupDepth, file, ": groups nested deeper than ", kMaxGroupDepth,
             " levels at '", abs, "'");
  for (const std::string& name : link_names(group, file, abs)) {
    std::string child_abs = join(abs, name), child_rel = join(rel, name);
    H5Handle obj(H5Oopen(group, name.c_str(), H5P_DEFAULT));
    if (!obj.valid()) fail(file, "cannot open '" + child_abs + "'");
    H5I_type_t type = H5Iget_type(obj.get());
    if (type == H5I_DATASET) {
      out.push_back(child_rel);
    } else if (type == H5I_GROUP) {
      bool skipped = false;
      for (const std::string& s : skip) skipped = skipped || s == child_abs;
      if (!skipped) walk_group(obj.get(), file, child_abs, child_rel, skip, depth + 1, out);
    }
  }
}
}  // namespace

std::vector<std::string> H5File::list_datasets(const std::string& group,
                                               const std::vector<std::string>& skip) const {
  H5Handle g(H5Gopen2(file_.get(), group.empty() ? "/" : group.c_str(), H5P_DEFAULT));
  if (!g.valid()) fail(path_, "cannot open group '" + group + "'");
  std::vector<std::string> out;
  walk_group(g.get(), path_, group, "", skip, 0, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// root attributes

bool H5File::has_attr(const std::string& name) const {
  htri_t e = H5Aexists(file_.get(), name.c_str());
  if (e < 0) fail(path_, "cannot look up attribute '" + name + "'");
  return e > 0;
}

void H5File::write_attr(const std::string& name, hid_t file_type, hid_t mem_type, hid_t space,
                        const void* data) {
  H5Handle attr(
      checked(H5Acreate2(file_.get(), name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
              path_, "cannot create attribute '" + name + "'"));
  if (H5Sget_simple_extent_npoints(space) > 0)  // an empty list has nothing to write
    check_rc(H5Awrite(attr.get(), mem_type, data), path_, "cannot write attribute '" + name + "'");
}

namespace {
H5Handle make_space(const std::string& file, size_t n, bool scalar) {
  if (scalar) {
    CUDL_CHECK(n == 1, file, ": internal error, a scalar attribute needs one value");
    return H5Handle(checked(H5Screate(H5S_SCALAR), file, "cannot create a dataspace"));
  }
  hsize_t dim = n;
  return H5Handle(checked(H5Screate_simple(1, &dim, nullptr), file, "cannot create a dataspace"));
}
}  // namespace

void H5File::write_string_attr(const std::string& name, const std::string& value) {
  H5Handle type = vlen_string_type(path_);
  H5Handle space = make_space(path_, 1, true);
  const char* p = value.c_str();
  write_attr(name, type.get(), type.get(), space.get(), &p);
}

void H5File::write_strings_attr(const std::string& name, const std::vector<std::string>& values) {
  H5Handle type = vlen_string_type(path_);
  H5Handle space = make_space(path_, values.size(), false);
  std::vector<const char*> ptrs;
  for (const std::string& v : values) ptrs.push_back(v.c_str());
  write_attr(name, type.get(), type.get(), space.get(), ptrs.data());
}

void H5File::write_int64s_attr(const std::string& name, const std::vector<int64_t>& values,
                               bool scalar) {
  H5Handle space = make_space(path_, values.size(), scalar);
  write_attr(name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data());
}

void H5File::write_uint64_attr(const std::string& name, uint64_t value) {
  H5Handle space = make_space(path_, 1, true);
  write_attr(name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.get(), &value);
}

void H5File::write_doubles_attr(const std::string& name, const std::vector<double>& values,
                                bool scalar) {
  H5Handle space = make_space(path_, values.size(), scalar);
  write_attr(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), values.data());
}

H5Handle H5File::open_root_attr(const std::string& name) const {
  H5Handle attr(H5Aopen(file_.get(), name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) fail(path_, "cannot open attribute '" + name + "'");
  return attr;
}

size_t H5File::attr_size(const std::string& name) const {
  H5Handle attr = open_root_attr(name);
  H5Handle space(checked(H5Aget_space(attr.get()), path_, "cannot read attribute '" + name + "'"));
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail(path_, "cannot read the size of attribute '" + name + "'");
  return static_cast<size_t>(n);
}

std::vector<std::string> H5File::read_strings_attr(const std::string& name) const {
  H5Handle attr = open_root_attr(name);
  H5Handle space(checked(H5Aget_space(attr.get()), path_, "cannot read attribute '" + name + "'"));
  H5Handle ftype(checked(H5Aget_type(attr.get()), path_, "cannot read attribute '" + name + "'"));
  CUDL_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, path_, ": attribute '", name,
             "' should hold text but holds another type");
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail(path_, "cannot read the size of attribute '" + name + "'");
  std::vector<std::string> out;
  htri_t vlen = H5Tis_variable_str(ftype.get());
  if (vlen < 0) fail(path_, "cannot read the type of attribute '" + name + "'");
  if (vlen > 0) {
    H5Handle mtype = vlen_string_type(path_);
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (n > 0 && H5Aread(attr.get(), mtype.get(), ptrs.data()) < 0)
      fail(path_, "cannot read attribute '" + name + "'");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n > 0) H5Dvlen_reclaim(mtype.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    // One more byte than stored: fixed-length strings may fill their width without a NUL
    // (h5py writes numpy 'S' arrays null-padded), and the read adds the terminator.
    size_t width = H5Tget_size(ftype.get()) + 1;
    CUDL_CHECK(width > 1, path_, ": attribute '", name, "' has a zero-width string type");
    H5Handle mtype(checked(H5Tcopy(H5T_C_S1), path_, "cannot build the string type"));
    check_rc(H5Tset_size(mtype.get(), width), path_, "cannot build the string type");
    std::vector<char> buf(width * static_cast<size_t>(n));
    if (n > 0 && H5Aread(attr.get(), mtype.get(), buf.data()) < 0)
      fail(path_, "cannot read attribute '" + name + "'");
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * width;
      size_t len = strnlen(s, width);
      while (len > 0 && s[len - 1] == ' ') --len;  // space-padded strings (Fortran style)
      out.emplace_back(s, len);
    }
  }
  return out;
}

std::string H5File::read_string_attr(const std::string& name) const {
  std::vector<std::string> v = read_strings_attr(name);
  CUDL_CHECK(v.size() == 1, path_, ": attribute '", name, "' should hold one string, holds ",
             v.size());
  return v[0];
}

void H5File::read_numeric_attr(const std::string& name, hid_t mem_type, H5T_class_t want, void* out,
                               size_t count) const {
  H5Handle attr = open_root_attr(name);
  H5Handle ftype(checked(H5Aget_type(attr.get()), path_, "cannot read attribute '" + name + "'"));
  H5T_class_t c = H5Tget_class(ftype.get());
  bool ok = c == want || (want == H5T_FLOAT && c == H5T_INTEGER);
  CUDL_CHECK(ok, path_, ": attribute '", name, "' should hold ",
             want == H5T_FLOAT ? "numbers" : "integers", " but holds another type");
  if (count > 0 && H5Aread(attr.get(), mem_type, out) < 0)
    fail(path_, "cannot read attribute '" + name + "'");
}

std::vector<int64_t> H5File::read_int64s_attr(const std::string& name) const {
  std::vector<int64_t> v(attr_size(name));
  read_numeric_attr(name, H5T_NATIVE_INT64, H5T_INTEGER, v.data(), v.size());
  return v;
}

uint64_t H5File::read_uint64_attr(const std::string& name) const {
  size_t n = attr_size(name);
  CUDL_CHECK(n == 1, path_, ": attribute '", name, "' should hold one integer, holds ", n);
  uint64_t v = 0;
  read_numeric_attr(name, H5T_NATIVE_UINT64, H5T_INTEGER, &v, 1);
  return v;
}

std::vector<double> H5File::read_doubles_attr(const std::string& name) const {
  std::vector<double> v(attr_size(name));
  read_numeric_attr(name, H5T_NATIVE_DOUBLE, H5T_FLOAT, v.data(), v.size());
  return v;
}

}  // namespace cudl::h5
