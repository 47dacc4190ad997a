#include "tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/ops/kernels.h"
#include "tensor/ops/reduce.h"

namespace cudl {

namespace detail {
void throw_no_cuda(const char* what) {
  CUDL_THROW(what, ": this tensor is on a CUDA device but cudl was built without CUDA");
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// shapes

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

const char* toString(MemoryFormat f) {
  switch (f) {
    case MemoryFormat::kContiguous: return "contiguous";
    case MemoryFormat::kChannelsLast: return "channels_last";
    case MemoryFormat::kPreserve: return "preserve";
  }
  return "?";
}

Shape memory_format_strides(const Shape& s, MemoryFormat f) {
  CUDL_CHECK(f != MemoryFormat::kPreserve, "memory_format_strides: kPreserve names no layout");
  if (f == MemoryFormat::kContiguous) return contiguous_strides(s);
  CUDL_CHECK(s.size() == 4, "channels_last needs a 4-D (N, C, H, W) shape, got ", shape_str(s));
  const int64_t c = std::max<int64_t>(s[1], 1), w = std::max<int64_t>(s[3], 1),
                h = std::max<int64_t>(s[2], 1);
  return {h * w * c, 1, w * c, c};
}

int wrap_dim(int64_t dim, int64_t ndim) {
  int64_t n = std::max<int64_t>(ndim, 1);
  CUDL_CHECK(dim >= -n && dim < n, "dimension ", dim, " out of range for a tensor with ", ndim,
             " dims (expected in [", -n, ", ", n - 1, "])");
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    CUDL_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
               " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_same_device_dtype(const char* op, const Tensor& a, const Tensor& b) {
  CUDL_CHECK(a.defined() && b.defined(), op, ": undefined tensor argument");
  CUDL_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(),
             " and ", b.device().str(), ")");
  CUDL_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch (", toString(a.dtype()), " and ",
             toString(b.dtype()), ")");
}

namespace {

Tensor make_tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset,
                   DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  return make_tensor(base.storage(), std::move(shape), std::move(strides), offset, base.dtype());
}

// Strides of `t` seen with shape `to` (broadcast dims get stride 0).
Shape broadcast_strides(const Tensor& t, const Shape& to) {
  Shape st(to.size(), 0);
  size_t lead = to.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    st[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// accessors

void Tensor::check_defined(const char* what) const {
  CUDL_CHECK(impl_ != nullptr, what, "() called on an undefined tensor");
}

const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
const Shape& Tensor::strides() const { check_defined("strides"); return impl_->strides; }
int64_t Tensor::dim() const { check_defined("dim"); return static_cast<int64_t>(impl_->shape.size()); }
int64_t Tensor::size(int d) const { return shape()[wrap_dim(d, dim())]; }
int64_t Tensor::stride(int d) const { return strides()[wrap_dim(d, dim())]; }
int64_t Tensor::numel() const { return numel_of(shape()); }
int64_t Tensor::offset() const { check_defined("offset"); return impl_->offset; }
DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }
Device Tensor::device() const { check_defined("device"); return impl_->storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { check_defined("storage"); return impl_->storage; }

bool Tensor::is_contiguous() const {
  const Shape& s = shape();
  const Shape& st = strides();
  int64_t expected = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

bool Tensor::is_contiguous(MemoryFormat f) const {
  if (f == MemoryFormat::kContiguous) return is_contiguous();
  CUDL_CHECK(f == MemoryFormat::kChannelsLast, "is_contiguous: kPreserve names no layout");
  if (dim() != 4) return false;
  const Shape& s = shape();
  const Shape& st = strides();
  int64_t expected = 1;
  for (int d : {1, 3, 2, 0}) {  // innermost first
    if (s[d] == 1) continue;
    if (st[d] != expected) return false;
    expected *= s[d];
  }
  return true;
}

bool Tensor::is_dense() const {
  const Shape& s = shape();
  const Shape& st = strides();
  std::vector<int> dims;
  for (int d = 0; d < dim(); ++d) {
    if (s[d] == 0) return true;  // no elements
    if (s[d] != 1) dims.push_back(d);
  }
  std::stable_sort(dims.begin(), dims.end(), [&](int a, int b) { return st[a] < st[b]; });
  int64_t expected = 1;
  for (int d : dims) {
    if (st[d] != expected) return false;
    expected *= s[d];
  }
  return true;
}

MemoryFormat suggest_memory_format(const Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(MemoryFormat::kChannelsLast)
             ? MemoryFormat::kChannelsLast
             : MemoryFormat::kContiguous;
}

void* Tensor::data_ptr() const {
  check_defined("data_ptr");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * elementSize(impl_->dtype);
}

template <class T>
T* Tensor::data() const {
  CUDL_CHECK(dtype() == DTypeOf<T>::value, "data<", toString(DTypeOf<T>::value),
             ">() on a ", toString(dtype()), " tensor");
  return static_cast<T*>(data_ptr());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template bfloat16* Tensor::data<bfloat16>() const;

double Tensor::item() const {
  CUDL_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape_str(shape()));
  Tensor h = device().is_cpu() ? *this : to(Device::cpu());
  return CUDL_DISPATCH_ALL(dtype(), "item", [&] { return static_cast<double>(*h.data<scalar_t>()); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  CUDL_CHECK(dtype() == DTypeOf<T>::value, "to_vector<", toString(DTypeOf<T>::value), ">() on a ",
             toString(dtype()), " tensor");
  Tensor h = detach().to(Device::cpu()).contiguous();
  const T* p = h.data<T>();
  return std::vector<T>(p, p + h.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

std::string Tensor::info() const {
  if (!defined()) return "undefined tensor";
  return str(toString(dtype()), " ", shape_str(shape()), " on ", device().str());
}

// ---------------------------------------------------------------------------------------------
// creation

Tensor empty(const Shape& shape, const TensorOptions& opts) {
  for (int64_t d : shape) CUDL_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  size_t nbytes = static_cast<size_t>(numel_of(shape)) * elementSize(opts.dtype_);
  auto storage = std::make_shared<Storage>(nbytes, opts.device_, opts.pinned_);
  Tensor t = make_tensor(std::move(storage), shape, contiguous_strides(shape), 0, opts.dtype_);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

Tensor full(const Shape& shape, double value, const TensorOptions& opts) {
  Tensor t = empty(shape, opts.requires_grad(false));
  t.fill_(value);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor zeros(const Shape& shape, const TensorOptions& opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, const TensorOptions& opts) { return full(shape, 1.0, opts); }
Tensor scalar_tensor(double v, const TensorOptions& opts) { return full({}, v, opts); }

Tensor empty_strided(const Shape& shape, const Shape& strides, const TensorOptions& opts) {
  Tensor t = empty(shape, opts);
  CUDL_CHECK(strides.size() == shape.size(), "empty_strided: ", shape.size(), " sizes but ",
             strides.size(), " strides");
  t.impl()->strides = strides;
  CUDL_CHECK(t.is_dense(), "empty_strided: strides ", shape_str(strides), " of shape ",
             shape_str(shape), " are not a dense layout");
  return t;
}

Tensor empty_like(const Tensor& t, MemoryFormat f) {
  const TensorOptions o = TensorOptions(t.dtype()).device(t.device());
  if (f == MemoryFormat::kPreserve)
    return t.is_dense() ? empty_strided(t.shape(), t.strides(), o) : empty(t.shape(), o);
  return empty_strided(t.shape(), memory_format_strides(t.shape(), f), o);
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), TensorOptions(t.dtype()).device(t.device())); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions(t.dtype()).device(t.device())); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), TensorOptions(t.dtype()).device(t.device())); }

Tensor arange(double end, const TensorOptions& opts) { return arange(0.0, end, 1.0, opts); }

Tensor arange(double start, double end, double step, const TensorOptions& opts) {
  CUDL_CHECK(step != 0.0, "arange: step must not be zero");
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  Tensor d = from_vector(v, {n}, TensorOptions(kFloat64));
  return d.to(opts.dtype_).to(opts.device_);
}

Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype, Shape strides,
                    int64_t offset) {
  if (strides.empty()) strides = contiguous_strides(shape);
  CUDL_CHECK(strides.size() == shape.size(), "from_storage: ", shape.size(), " sizes but ",
             strides.size(), " strides");
  int64_t last = offset;
  for (size_t i = 0; i < shape.size(); ++i) last += (shape[i] - 1) * strides[i];
  CUDL_CHECK(numel_of(shape) == 0 ||
                 static_cast<size_t>(last + 1) * elementSize(dtype) <= storage->nbytes(),
             "from_storage: shape ", shape_str(shape), " does not fit in a storage of ",
             storage->nbytes(), " bytes");
  return make_tensor(std::move(storage), shape, std::move(strides), offset, dtype);
}

Tensor from_blob(const void* host_data, const Shape& shape, DType dtype, const TensorOptions& opts) {
  Tensor host = empty(shape, TensorOptions(dtype).pinned(opts.pinned_));
  if (host.nbytes()) std::memcpy(host.data_ptr(), host_data, host.nbytes());
  Tensor t = opts.device_.is_cpu() ? host : host.to(opts.device_);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& data, const Shape& shape, const TensorOptions& opts) {
  CUDL_CHECK(static_cast<int64_t>(data.size()) == numel_of(shape), "from_vector: ", data.size(),
             " values for shape ", shape_str(shape), " (", numel_of(shape), " elements)");
  return from_blob(data.data(), shape, DTypeOf<T>::value, opts);
}
template Tensor from_vector(const std::vector<float>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<double>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&, const TensorOptions&);

// ---------------------------------------------------------------------------------------------
// in-place

namespace {
void check_inplace(const Tensor& t, const char* op) {
  CUDL_CHECK(!(grad_mode_enabled() && t.requires_grad()), op,
             " on a tensor that requires grad; wrap the update in NoGradGuard");
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  if (is_contiguous()) {
    CUDL_ON_DEVICE(device(), fill, dtype(), numel(), data_ptr(), value);
  } else {
    copy_(full({}, value, TensorOptions(dtype()).device(device())));
  }
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src_in) {
  check_inplace(*this, "copy_");
  CUDL_CHECK(src_in.defined(), "copy_: undefined source");
  broadcast_shapes(src_in.shape(), shape());  // throws on clashing shapes
  CUDL_CHECK(src_in.dim() <= dim(), "copy_: source of shape ", shape_str(src_in.shape()),
             " does not fit into ", shape_str(shape()));
  for (int64_t i = 0; i < src_in.dim(); ++i) {
    int64_t ds = src_in.shape()[i], dd = shape()[dim() - src_in.dim() + i];
    CUDL_CHECK(ds == dd || ds == 1, "copy_: source of shape ", shape_str(src_in.shape()),
               " cannot be broadcast to ", shape_str(shape()));
  }
  Tensor src = src_in.detach();
  if (src.device() != device()) {
    Tensor c = src.contiguous();
    Tensor moved = empty(c.shape(), TensorOptions(c.dtype()).device(device()));
#ifdef CUDL_WITH_CUDA
    cuda::memcpy(moved.data_ptr(), device(), c.data_ptr(), c.device(), c.nbytes());
#else
    detail::throw_no_cuda("copy_ between devices");
#endif
    src = moved;
  }
  if (src.dtype() != dtype() && src.shape() == shape() && src.strides() == strides() &&
      is_dense()) {
    // The same dense layout on both sides: one flat cast.
    if (numel() > 0)
      CUDL_ON_DEVICE(device(), cast, src.dtype(), dtype(), numel(), src.data_ptr(), data_ptr());
    return *this;
  }
  if (src.dtype() != dtype()) {
    Tensor c = src.contiguous();
    Tensor cast_to = empty(c.shape(), TensorOptions(dtype()).device(device()));
    CUDL_ON_DEVICE(device(), cast, c.dtype(), dtype(), c.numel(), c.data_ptr(), cast_to.data_ptr());
    src = cast_to;
  }
  if (numel() == 0) return *this;
  Shape src_strides = broadcast_strides(src, shape());
  auto idx = make_strided_index<2>(shape(), {&strides(), &src_strides});
  CUDL_ON_DEVICE(device(), copy_strided, elementSize(dtype()), numel(), src.data_ptr(), data_ptr(), idx);
  return *this;
}

// ---------------------------------------------------------------------------------------------
// copies and moves

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::contiguous(MemoryFormat f) const {
  if (f == MemoryFormat::kContiguous) return contiguous();
  if (is_contiguous(f)) return *this;
  Tensor out = empty_like(*this, f);
  {
    NoGradGuard g;
    out.copy_(*this);
  }
  if (needs_grad({*this})) set_grad_fn(out, "ContiguousBackward", {*this}, [](const Tensor& g) {
      return std::vector<Tensor>{g};
    });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), TensorOptions(dtype()).device(device()));
  {
    NoGradGuard g;
    out.copy_(*this);
  }
  if (needs_grad({*this})) set_grad_fn(out, "CloneBackward", {*this}, [](const Tensor& g) {
      return std::vector<Tensor>{g};
    });
  return out;
}

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor out = empty(shape(), TensorOptions(dtype()).device(d));
  {
    NoGradGuard g;
    out.copy_(*this);
  }
  if (needs_grad({*this})) {
    Device from = device();
    set_grad_fn(out, "ToDeviceBackward", {*this}, [from](const Tensor& g) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(DType t) const {
  if (dtype() == t) return *this;
  // The copy keeps a dense layout (a channels-last activation stays channels-last).
  Tensor out = is_dense() ? empty_strided(shape(), strides(), TensorOptions(t).device(device()))
                          : empty(shape(), TensorOptions(t).device(device()));
  {
    NoGradGuard g;
    out.copy_(*this);
  }
  if (needs_grad({*this})) {
    CUDL_CHECK(isFloating(t), "to(", toString(t), "): integer results cannot require grad");
    DType from = dtype();
    set_grad_fn(out, "ToDTypeBackward", {*this}, [from](const Tensor& g) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// views

namespace {
Shape infer_shape(const Shape& shape, int64_t numel) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      CUDL_CHECK(infer < 0, "reshape: only one dimension can be -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      CUDL_CHECK(out[i] >= 0, "reshape: invalid size in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    CUDL_CHECK(known > 0 && numel % known == 0, "reshape: shape ", shape_str(shape),
               " is invalid for ", numel, " elements");
    out[infer] = numel / known;
  }
  CUDL_CHECK(numel_of(out) == numel, "reshape: shape ", shape_str(shape), " is invalid for ",
             numel, " elements");
  return out;
}

void record_view(Tensor& out, const Tensor& in, const char* name, Node::BackwardFn fn) {
  if (needs_grad({in})) set_grad_fn(out, name, {in}, std::move(fn));
}
}  // namespace

Tensor Tensor::view(const Shape& new_shape) const {
  Shape s = infer_shape(new_shape, numel());
  CUDL_CHECK(is_contiguous(), "view", shape_str(s), " of a non-contiguous tensor of shape ",
             shape_str(shape()), "; use reshape() (which copies)");
  Tensor out = make_view(*this, s, contiguous_strides(s), offset());
  Shape in_shape = shape();
  record_view(out, *this, "ViewBackward", [in_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  if (is_contiguous()) return view(new_shape);
  return contiguous().view(new_shape);
}

Tensor Tensor::flatten(int start_dim, int end_dim) const {
  if (dim() == 0) return reshape({1});
  int s = wrap_dim(start_dim, dim()), e = wrap_dim(end_dim, dim());
  CUDL_CHECK(s <= e, "flatten: start_dim ", s, " is after end_dim ", e);
  Shape ns(shape().begin(), shape().begin() + s);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= shape()[i];
  ns.push_back(m);
  ns.insert(ns.end(), shape().begin() + e + 1, shape().end());
  return reshape(ns);
}

Tensor Tensor::slice(int d, int64_t start, int64_t end, int64_t step) const {
  int dd = wrap_dim(d, dim());
  CUDL_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = shape()[dd];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[dd] = (end - start + step - 1) / step;
  int64_t off = offset() + start * st[dd];
  st[dd] *= step;
  Tensor out = make_view(*this, s, st, off);
  Shape in_shape = shape();
  record_view(out, *this, "SliceBackward", [in_shape, dd, start, end, step](const Tensor& g) {
    Tensor z = zeros(in_shape, TensorOptions(g.dtype()).device(g.device()));
    z.slice(dd, start, end, step).copy_(g);
    return std::vector<Tensor>{z};
  });
  return out;
}

Tensor Tensor::select(int d, int64_t index) const {
  int dd = wrap_dim(d, dim());
  int64_t n = shape()[dd];
  CUDL_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", dd,
             " of size ", n);
  if (index < 0) index += n;
  return slice(dd, index, index + 1).squeeze(dd);
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  CUDL_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
             " dims given for a tensor with ", dim());
  Shape s(dims.size()), st(dims.size());
  std::vector<int> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = wrap_dim(dims[i], dim());
    CUDL_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = static_cast<int>(i);
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, s, st, offset());
  record_view(out, *this, "PermuteBackward", [inverse](const Tensor& g) {
    return std::vector<Tensor>{g.permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int d0, int d1) const {
  std::vector<int> dims(dim());
  for (int i = 0; i < dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, dim())], dims[wrap_dim(d1, dim())]);
  return permute(dims);
}

Tensor Tensor::unsqueeze(int d) const {
  int dd = wrap_dim(d, dim() + 1);
  Shape s = shape(), st = strides();
  int64_t stride = dd < dim() ? st[dd] * s[dd] : 1;
  s.insert(s.begin() + dd, 1);
  st.insert(st.begin() + dd, stride);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  record_view(out, *this, "UnsqueezeBackward", [in_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::squeeze(int d) const {
  int dd = wrap_dim(d, dim());
  if (shape()[dd] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + dd);
  st.erase(st.begin() + dd);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  record_view(out, *this, "SqueezeBackward", [in_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::expand(const Shape& to) const {
  CUDL_CHECK(to.size() >= shape().size(), "expand: cannot expand ", shape_str(shape()), " to ",
             shape_str(to), " (fewer dims)");
  Shape s = to;
  size_t lead = to.size() - shape().size();
  for (size_t i = 0; i < shape().size(); ++i) {
    if (s[lead + i] == -1) s[lead + i] = shape()[i];
    CUDL_CHECK(shape()[i] == s[lead + i] || shape()[i] == 1, "expand: cannot expand ",
               shape_str(shape()), " to ", shape_str(to));
  }
  Shape st = broadcast_strides(*this, s);
  Tensor out = make_view(*this, s, st, offset());
  Shape in_shape = shape();
  record_view(out, *this, "ExpandBackward", [in_shape](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, in_shape)};
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// autograd

bool Tensor::requires_grad() const {
  check_defined("requires_grad");
  return impl_->autograd && impl_->autograd->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool r) {
  check_defined("set_requires_grad");
  CUDL_CHECK(is_leaf(), "set_requires_grad() on a non-leaf tensor (it has a grad_fn); use detach() first");
  CUDL_CHECK(!r || isFloating(dtype()), "only floating-point tensors can require grad, not ",
             toString(dtype()));
  impl_->meta().requires_grad = r;
  return *this;
}

bool Tensor::is_leaf() const { return !(impl_ && impl_->autograd && impl_->autograd->grad_fn); }

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  check_defined("grad");
  return impl_->autograd ? impl_->autograd->grad : undefined;
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  if (g.defined()) {
    CUDL_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(),
               "set_grad: gradient is ", g.info(), " but the tensor is ", info());
  }
  impl_->meta().grad = g;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  check_defined("grad_fn");
  return impl_->autograd ? impl_->autograd->grad_fn : none;
}

Tensor Tensor::detach() const {
  check_defined("detach");
  return make_tensor(impl_->storage, impl_->shape, impl_->strides, impl_->offset, impl_->dtype);
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward(*this, grad, retain_graph);
}

// ---------------------------------------------------------------------------------------------
// printing

namespace {
void print_rec(std::ostringstream& os, const std::vector<double>& v, const Shape& s,
               const Shape& st, size_t d, int64_t off, bool summarise, bool integral, int width,
               int indent) {
  if (s.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, integral ? "%*.0f" : "%*.4f", width, v[off]);
    os << buf;
    return;
  }
  os << "[";
  const int64_t n = s[d];
  const int edge = 3;
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * edge && i == edge) {
      os << (d + 1 == s.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - edge - 1;
      continue;
    }
    if (d + 1 == s.size()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, integral ? "%*.0f" : "%*.4f", width, v[off + i * st[d]]);
      os << buf;
    } else {
      print_rec(os, v, s, st, d + 1, off + i * st[d], summarise, integral, width, indent + 1);
    }
    if (i + 1 < n) {
      if (d + 1 == s.size()) {
        os << ", ";
      } else {
        os << "," << std::string(s.size() - d - 1, '\n') << std::string(indent + 1, ' ');
      }
    }
  }
  os << "]";
}
}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  Tensor h = detach().to(Device::cpu()).contiguous().to(kFloat64);
  std::vector<double> v = h.to_vector<double>();
  bool integral = !isFloating(dtype());
  int width = 1;
  for (double x : v) {
    char buf[64];
    int w = std::snprintf(buf, sizeof buf, integral ? "%.0f" : "%.4f", x);
    width = std::max(width, w);
  }
  std::ostringstream os;
  os << "tensor(";
  print_rec(os, v, shape(), contiguous_strides(shape()), 0, 0, numel() > 1000, integral, width, 7);
  if (dtype() != kFloat32) os << ", dtype=" << toString(dtype());
  if (device().is_cuda()) os << ", device='" << device().str() << "'";
  if (requires_grad()) os << (grad_fn() ? ", grad_fn=<" + grad_fn()->name() + ">" : ", requires_grad=True");
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace cudl
