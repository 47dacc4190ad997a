// Reads NumPy .npy files (format versions 1-3, little-endian float32/float64/int64/uint8/bool,
// C order) into CPU tensors. Used for the reference data the PyTorch scripts write.
#pragma once

#include <string>

#include "tensor/tensor.h"

namespace cudl::testing {

Tensor load_npy(const std::string& path);

}  // namespace cudl::testing
