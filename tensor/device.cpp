#include "tensor/device.h"

#include "tensor/error.h"

#ifdef CUDL_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <cstdlib>

namespace cudl {

namespace {
struct CudaProbe {
  int count = 0;
  std::string reason;
  CudaProbe() {
#ifdef CUDL_WITH_CUDA
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      reason = cudaGetErrorString(e);
      count = 0;
      cudaGetLastError();  // clear the sticky error so later calls are not confused by it
    } else if (count == 0) {
      reason = "no CUDA device found";
    }
#else
    reason = "cudl was built without CUDA (-DCUDL_CUDA=OFF or no nvcc)";
#endif
  }
};
const CudaProbe& probe() {
  static CudaProbe p;
  return p;
}
}  // namespace

bool cuda_compiled() {
#ifdef CUDL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() { return probe().count; }
std::string cuda_unavailable_reason() { return probe().reason; }

Device Device::best() { return cuda_device_count() > 0 ? cuda(0) : cpu(); }

Device Device::parse(const std::string& spec) {
  if (spec == "auto") return best();
  if (spec == "cpu") return cpu();
  int index = 0;
  if (spec == "cuda") {
    index = 0;
  } else if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5) {
    char* end = nullptr;
    long v = std::strtol(spec.c_str() + 5, &end, 10);
    CUDL_CHECK(*end == '\0' && v >= 0, "invalid device '", spec,
               "': expected cpu, cuda, cuda:N or auto");
    index = static_cast<int>(v);
  } else {
    CUDL_THROW("invalid device '", spec, "': expected cpu, cuda, cuda:N or auto");
  }
  int n = cuda_device_count();
  CUDL_CHECK(n > 0, "device '", spec, "' asked for, but CUDA is not available: ",
             cuda_unavailable_reason());
  CUDL_CHECK(index < n, "device '", spec, "' asked for, but only ", n, " CUDA device(s) exist");
  return cuda(index);
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace cudl
