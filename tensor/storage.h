// Storage: the one owner of a buffer on one device. Refcounted through shared_ptr by the
// tensors that view it; not copyable.
#pragma once

#include <cstddef>

#include "tensor/device.h"

namespace cudl {

class Storage {
 public:
  // Uninitialised memory. `pinned` asks for page-locked host memory (CPU only; honoured when
  // a GPU is present, plain memory otherwise).
  Storage(size_t nbytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

}  // namespace cudl
