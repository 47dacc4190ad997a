// Thin RAII layer over the HDF5 C library for the weights files (models/weights_io.cpp).
//
// Every identifier is owned by an H5Handle that closes it; HDF5's automatic error printing is
// switched off and each failure becomes a cudl::Error that names the file, the object (dataset,
// group or attribute) and the library's own description taken from its error stack.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cudl::h5 {

class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(H5Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();      // closes (errors are logged, never thrown)
  hid_t release() {  // gives up ownership without closing
    hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
};

// Prepares the library before any other HDF5 call (idempotent): no clean-up at process exit
// (H5dont_atexit) and no error stacks printed to stderr. HDF5 1.10's clean-up at exit crashes
// on a file whose close failed (a full disk: its last metadata could not be written), turning
// the program's exit status 1 into a segmentation fault; every file cudl opens is closed by
// its handle before that, so there is nothing for it to do.
void prepare_library();
// "what failed (innermost reason)" from HDF5's current error stack, then clears it.
std::string library_error();

// One HDF5 file open for writing (created new, fails if it exists) or reading. Names are
// slash paths relative to the root ("layer1/0/conv1/weight"); groups along the way are created
// on demand and keep their links in creation order, so a reader lists tensors in the order
// they were written (the PyTorch state-dict order).
class H5File {
 public:
  // Exclusive: the file must not exist. Errors name `shown_as` (default: `path`), e.g. the
  // target of an atomic write rather than its temporary file.
  static H5File create(const std::string& path, const std::string& shown_as = "");
  static H5File open_read(const std::string& path);

  const std::string& path() const { return path_; }
  // Flushes and closes, reporting a failure (a destructor would have to swallow it).
  void close();

  // ---- datasets ----
  // Writes a CPU tensor (float32, float64 or int64; float32 optionally as IEEE float16).
  void write_tensor(const std::string& path, const Tensor& t, bool as_float16);
  // Reads a dataset: any floating type -> float32, any integer type -> int64; shape () for
  // scalar dataspaces.
  // Floating datasets become float32 unless keep_float64 and the file stores 64-bit floats.
  Tensor read_tensor(const std::string& path, bool keep_float64 = false) const;
  bool exists(const std::string& path) const;  // link exists (checks each parent first)
  bool is_group(const std::string& path) const;
  // Every dataset below `group` (recursively), as slash paths relative to `group`, in creation
  // order when the file tracks it, name order otherwise; groups in `skip` (relative to the
  // root) are not entered.
  std::vector<std::string> list_datasets(const std::string& group,
                                         const std::vector<std::string>& skip = {}) const;

  // ---- attributes on the root group ----
  bool has_attr(const std::string& name) const;
  void write_string_attr(const std::string& name, const std::string& value);
  void write_strings_attr(const std::string& name, const std::vector<std::string>& values);
  void write_int64s_attr(const std::string& name, const std::vector<int64_t>& values, bool scalar);
  void write_uint64_attr(const std::string& name, uint64_t value);
  void write_doubles_attr(const std::string& name, const std::vector<double>& values, bool scalar);
  std::string read_string_attr(const std::string& name) const;
  std::vector<std::string> read_strings_attr(const std::string& name) const;
  std::vector<int64_t> read_int64s_attr(const std::string& name) const;
  uint64_t read_uint64_attr(const std::string& name) const;
  std::vector<double> read_doubles_attr(const std::string& name) const;

 private:
  H5File(std::string path, hid_t id) : path_(std::move(path)), file_(id) {}
  H5Handle ensure_group(const std::vector<std::string>& parts);  // creates missing groups
  H5Handle open_root_attr(const std::string& name) const;
  void write_attr(const std::string& name, hid_t file_type, hid_t mem_type, hid_t space,
                  const void* data);
  // Reads every element of a numeric root attribute converted to `mem_type`.
  void read_numeric_attr(const std::string& name, hid_t mem_type, H5T_class_t want, void* out,
                         size_t count) const;
  size_t attr_size(const std::string& name) const;  // element count

  std::string path_;
  H5Handle file_;
};

}  // namespace cudl::h5
