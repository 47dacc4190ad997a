// RAII owners of cuDNN descriptors (move-only; destruction never throws) and small helpers
// shared by the cuDNN-backed ops (convolution, batch norm).
#pragma once

#include <cudnn.h>

#include <climits>
#include <utility>

#include "tensor/cuda/check.h"
#include "tensor/dtype.h"

namespace cudl::cuda {

template <class Handle, cudnnStatus_t (*Create)(Handle*), cudnnStatus_t (*Destroy)(Handle)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { CUDL_CUDNN_CHECK(Create(&handle_)); }
  ~CudnnDescriptor() {
    if (handle_) Destroy(handle_);  // only frees host memory; cannot usefully fail
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  CudnnDescriptor(CudnnDescriptor&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  CudnnDescriptor& operator=(CudnnDescriptor&& o) noexcept {
    std::swap(handle_, o.handle_);
    return *this;
  }
  Handle get() const { return handle_; }
  operator Handle() const { return handle_; }  // NOLINT: pass straight to cuDNN calls

 private:
  Handle handle_ = nullptr;
};

using TensorDescriptor = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
                                         cudnnDestroyTensorDescriptor>;
using FilterDescriptor = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor,
                                         cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                    cudnnDestroyConvolutionDescriptor>;

inline cudnnDataType_t cudnn_dtype(DType t) {
  switch (t) {
    case kFloat32:
      return CUDNN_DATA_FLOAT;
    case kFloat64:
      return CUDNN_DATA_DOUBLE;
    case kBFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      CUDL_THROW("cuDNN: dtype ", toString(t), " not supported (float32, float64 or bfloat16)");
  }
}

// cuDNN takes int sizes; larger tensors get a clear error instead of a silent wrap-around.
inline int cudnn_int(int64_t v, const char* what) {
  CUDL_CHECK(v >= 0 && v <= INT_MAX, "cuDNN: ", what, " = ", v, " does not fit in an int");
  return static_cast<int>(v);
}

// Dense (n, c, h, w) descriptor: row-major NCHW, or NHWC memory when channels_last.
inline void set_4d(const TensorDescriptor& d, DType t, int64_t n, int64_t c, int64_t h, int64_t w,
                   bool channels_last) {
  CUDL_CHECK(n * c * h * w <= INT_MAX, "cuDNN: tensor (", n, ", ", c, ", ", h, ", ", w,
             ") has more than 2^31-1 elements; split the batch");
  CUDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                              cudnn_dtype(t),
                                              cudnn_int(n, "N"), cudnn_int(c, "C"),
                                              cudnn_int(h, "H"), cudnn_int(w, "W")));
}

// Dense NCHW descriptor.
inline void set_nchw(const TensorDescriptor& d, DType t, int64_t n, int64_t c, int64_t h,
                     int64_t w) {
  set_4d(d, t, n, c, h, w, false);
}

// alpha/beta scaling factors: cuDNN reads them as double for double data, float otherwise
// (bfloat16 included: cuDNN's scaling parameters are float for every non-double data type).
struct CudnnScalars {
  float f_one = 1.0f, f_zero = 0.0f;
  double d_one = 1.0, d_zero = 0.0;
  bool dbl;
  explicit CudnnScalars(DType t) : dbl(t == kFloat64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d_one) : &f_one; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d_zero) : &f_zero; }
};

}  // namespace cudl::cuda
