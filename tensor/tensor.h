// Tensor: a cheap handle (shape, strides, offset, shared storage, autograd slot).
//
// Copies of a Tensor share one TensorImpl, as in PyTorch: setting requires_grad or reading the
// gradient through any copy sees the same state. clone() copies the data; views (reshape of a
// contiguous tensor, slice, transpose, permute, expand, ...) share the storage. Every op checks
// shapes, dtypes and devices at entry and says what it expected.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/storage.h"

namespace cudl {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "(2, 3, 4)"
int64_t numel_of(const Shape& s);
Shape contiguous_strides(const Shape& s);

// How a 4-D (N, C, H, W) tensor lies in memory, as in PyTorch. kContiguous: row-major (NCHW).
// kChannelsLast: channels innermost, (N, H, W, C) in memory, strides (H*W*C, 1, W*C, C); the
// layout cuDNN's tensor-core convolutions want. kPreserve (empty_like only): the source's
// strides when it is dense (see is_dense), row-major otherwise.
enum class MemoryFormat { kContiguous, kChannelsLast, kPreserve };
const char* toString(MemoryFormat f);
// Strides of `s` in `f` (kContiguous or kChannelsLast; the latter needs 4 dims).
Shape memory_format_strides(const Shape& s, MemoryFormat f);

struct TensorOptions {
  DType dtype_ = kFloat32;
  Device device_ = Device::cpu();
  bool requires_grad_ = false;
  bool pinned_ = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}   // NOLINT: implicit, as in PyTorch
  TensorOptions(Device d) : device_(d) {}  // NOLINT
  TensorOptions dtype(DType d) const { auto o = *this; o.dtype_ = d; return o; }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
  TensorOptions pinned(bool p = true) const { auto o = *this; o.pinned_ = p; return o; }
};

class Node;
struct AutogradMeta;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t size(int dim) const;    // negative dims count from the end
  int64_t stride(int dim) const;
  int64_t dim() const;
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * elementSize(dtype()); }
  bool is_contiguous() const;
  // Dense in `f` (size-1 dims may have any stride, as in PyTorch). kChannelsLast: 4-D only
  // (false otherwise).
  bool is_contiguous(MemoryFormat f) const;
  // Non-overlapping and dense: the elements fill numel() consecutive slots in some order of
  // the dims (row-major, channels-last, a transpose, ...), so an op that maps element to element
  // may run over the memory as one flat array.
  bool is_dense() const;
  const std::shared_ptr<Storage>& storage() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // Pointer to the first element (storage + offset). T must match dtype().
  template <class T>
  T* data() const;
  void* data_ptr() const;

  // Value of a one-element tensor (any device), as double or as T.
  double item() const;
  template <class T>
  T item() const { return static_cast<T>(item()); }
  // All elements in row-major order, copied to the host. T must match dtype().
  template <class T>
  std::vector<T> to_vector() const;

  // ---- copies and moves (differentiable) ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;
  Tensor contiguous() const;  // *this when already contiguous
  // A copy in memory format `f` (kContiguous or kChannelsLast), *this when already in it.
  Tensor contiguous(MemoryFormat f) const;

  // ---- views (differentiable; share storage) ----
  Tensor view(const Shape& shape) const;     // requires a compatible (contiguous) layout
  Tensor reshape(const Shape& shape) const;  // view when possible, copy otherwise; one -1 allowed
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int dim, int64_t index) const;  // removes `dim`
  Tensor narrow(int dim, int64_t start, int64_t length) const { return slice(dim, start, start + length); }
  Tensor transpose(int dim0, int dim1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int>& dims) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0); -1 keeps a size

  // ---- in-place (not recorded by autograd; refused on tensors that need grad while grad mode
  // is on, except leaves being updated under NoGradGuard, as optimisers do) ----
  Tensor& copy_(const Tensor& src);  // same shape (or broadcastable); any device/dtype
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);
  bool is_leaf() const;                  // no grad_fn
  const Tensor& grad() const;            // undefined until a backward reached this leaf
  void set_grad(const Tensor& g);
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor detach() const;  // shares data, no history
  // Backpropagates from this tensor. `grad` defaults to 1 for one-element tensors. The graph
  // is freed afterwards unless retain_graph.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  std::string to_string() const;  // PyTorch-like printing, summarised beyond 1000 elements
  std::string info() const;       // "float32 (2, 3) on cpu"

 private:
  std::shared_ptr<TensorImpl> impl_;
  void check_defined(const char* what) const;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = kFloat32;
  std::unique_ptr<AutogradMeta> autograd;  // null for tensors that never took part in autograd

  AutogradMeta& meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation ----
Tensor empty(const Shape& shape, const TensorOptions& opts = {});
Tensor zeros(const Shape& shape, const TensorOptions& opts = {});
Tensor ones(const Shape& shape, const TensorOptions& opts = {});
Tensor full(const Shape& shape, double value, const TensorOptions& opts = {});
Tensor arange(double end, const TensorOptions& opts = {});
Tensor arange(double start, double end, double step = 1.0, const TensorOptions& opts = {});
Tensor empty_like(const Tensor& t);
// With t's dtype and device in memory format `f` (kPreserve: t's strides when t is dense).
Tensor empty_like(const Tensor& t, MemoryFormat f);
// A new tensor with the given dense strides (a permutation of a row-major layout; throws
// otherwise), e.g. another tensor's.
Tensor empty_strided(const Shape& shape, const Shape& strides, const TensorOptions& opts = {});
// kChannelsLast when t is a 4-D tensor stored channels-last and not also row-major (a tensor
// with C == 1 or H == W == 1 is both and counts as row-major); kContiguous otherwise.
MemoryFormat suggest_memory_format(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// A view of existing memory, made by wrapping a storage (no copy).
Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                    Shape strides = {}, int64_t offset = 0);
// Copies host data. data.size() must equal the shape's element count. The dtype is the data's
// (T or `dtype`); opts give the device, pinning and requires_grad.
template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape, const TensorOptions& opts = {});
Tensor from_blob(const void* host_data, const Shape& shape, DType dtype, const TensorOptions& opts = {});
// Scalar tensor (shape ()).
Tensor scalar_tensor(double v, const TensorOptions& opts = {});

// Shape of the broadcast of a and b (NumPy rules); throws naming both shapes when they clash.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Wraps a possibly negative dim into [0, ndim); throws when out of range.
int wrap_dim(int64_t dim, int64_t ndim);

// Throws unless both tensors are on the same device and have the same dtype.
void check_same_device_dtype(const char* op, const Tensor& a, const Tensor& b);

}  // namespace cudl
