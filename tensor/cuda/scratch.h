// Temporary device memory for CUDA launchers (partial sums, cuDNN workspaces): a tensor from the
// caching allocator on the current device, so reuse is stream-ordered and a CUDA graph capture
// keeps it alive. Keep the returned tensor until the kernels that use it are enqueued.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace cudl::cuda {

// numel elements of dtype (at least one) on the current device.
Tensor device_scratch(int64_t numel, DType dtype);

}  // namespace cudl::cuda
