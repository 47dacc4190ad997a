#include "tensor/storage.h"

#include "tensor/allocator.h"

namespace cudl {

Storage::Storage(size_t nbytes, Device device, bool pinned)
    : nbytes_(nbytes), device_(device), pinned_(pinned && device.is_cpu()) {
  data_ = detail::allocate(nbytes, device, pinned_);
}

Storage::~Storage() { detail::deallocate(data_, nbytes_, device_, pinned_); }

}  // namespace cudl
