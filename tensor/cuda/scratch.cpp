#include "tensor/cuda/scratch.h"

#include <algorithm>

#include <cuda_runtime_api.h>

#include "tensor/cuda/check.h"

namespace cudl::cuda {

Tensor device_scratch(int64_t numel, DType dtype) {
  int device = 0;
  CUDL_CUDA_CHECK(cudaGetDevice(&device));
  return empty({std::max<int64_t>(numel, 1)}, TensorOptions(dtype).device(Device::cuda(device)));
}

}  // namespace cudl::cuda
