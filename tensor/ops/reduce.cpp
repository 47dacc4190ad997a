#include "tensor/ops/reduce.h"

#include <algorithm>

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/kernels.h"

namespace cudl {

namespace {

std::vector<int> normalise_dims(const Tensor& x, const std::vector<int>& dims) {
  std::vector<int> d;
  if (dims.empty()) {
    for (int i = 0; i < x.dim(); ++i) d.push_back(i);
    return d;
  }
  for (int v : dims) d.push_back(wrap_dim(v, x.dim()));
  std::sort(d.begin(), d.end());
  CUDL_CHECK(std::adjacent_find(d.begin(), d.end()) == d.end(), "reduction: repeated dim");
  return d;
}

Shape keepdim_shape(const Shape& s, const std::vector<int>& dims) {
  Shape k = s;
  for (int d : dims) k[d] = 1;
  return k;
}

Shape reduced_shape(const Shape& s, const std::vector<int>& dims, bool keepdim) {
  if (keepdim) return keepdim_shape(s, dims);
  Shape r;
  for (size_t i = 0; i < s.size(); ++i)
    if (std::find(dims.begin(), dims.end(), static_cast<int>(i)) == dims.end()) r.push_back(s[i]);
  return r;
}

// Reduces contiguous x over sorted dims without autograd; result has keepdim shape.
Tensor reduce_raw(ReduceOp op, const Tensor& x_in, const std::vector<int>& dims) {
  CUDL_CHECK(isFloating(x_in.dtype()), "reduction on a ", toString(x_in.dtype()),
             " tensor (float32, float64 or bfloat16 expected)");
  Tensor x = x_in.contiguous();
  if (op == ReduceOp::kMax) {
    for (int d : dims)
      CUDL_CHECK(x.shape()[d] > 0, "max over an empty dimension (dim ", d, " has size 0)");
  }
  // Group the reduced dims into runs of neighbours; each run is one (outer, r, inner) pass.
  Tensor cur = x;
  size_t i = dims.size();
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && dims[j - 1] == dims[j] - 1) --j;
    int first = dims[j], last = dims[i - 1];
    const Shape& s = cur.shape();
    int64_t outer = 1, r = 1, inner = 1;
    for (int k = 0; k < first; ++k) outer *= s[k];
    for (int k = first; k <= last; ++k) r *= s[k];
    for (int k = last + 1; k < static_cast<int>(s.size()); ++k) inner *= s[k];
    Shape out_shape = s;
    for (int k = first; k <= last; ++k) out_shape[k] = 1;
    Tensor out = empty(out_shape, TensorOptions(cur.dtype()).device(cur.device()));
    if (r == 0) {
      out.fill_(0.0);  // empty sum
    } else {
      CUDL_ON_DEVICE(cur.device(), reduce, op, cur.dtype(), cur.data_ptr(), out.data_ptr(), outer,
                     r, inner);
    }
    cur = out;
    i = j;
  }
  return cur;
}

int64_t count_of(const Shape& s, const std::vector<int>& dims) {
  int64_t n = 1;
  for (int d : dims) n *= s[d];
  return n;
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  CUDL_CHECK(lead >= 0, "sum_to: cannot reduce ", shape_str(g.shape()), " to ", shape_str(shape));
  std::vector<int> dims;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(static_cast<int>(i));
  }
  Tensor r = dims.empty() ? g : reduce_raw(ReduceOp::kSum, g, dims);
  return r.reshape(shape);
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor sum(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  std::vector<int> dims = normalise_dims(x, dims_in);
  Tensor out = reduce_raw(ReduceOp::kSum, x, dims).reshape(reduced_shape(x.shape(), dims, keepdim));
  if (needs_grad({x})) {
    set_grad_fn(out, "SumBackward", {x}, [in = x.shape(), k = keepdim_shape(x.shape(), dims)](const Tensor& g) {
      return std::vector<Tensor>{g.reshape(k).expand(in).contiguous()};
    });
  }
  return out;
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  // bfloat16: the sum and the division in float32, rounded once (through differentiable casts).
  if (x.defined() && x.dtype() == kBFloat16)
    return mean(x.to(kFloat32), dims_in, keepdim).to(kBFloat16);
  std::vector<int> dims = normalise_dims(x, dims_in);
  const int64_t n = count_of(x.shape(), dims);
  Tensor out;
  {
    NoGradGuard ng;
    out = mul(reduce_raw(ReduceOp::kSum, x, dims), 1.0 / static_cast<double>(n))
              .reshape(reduced_shape(x.shape(), dims, keepdim));
  }
  if (needs_grad({x})) {
    set_grad_fn(out, "MeanBackward", {x},
                [in = x.shape(), k = keepdim_shape(x.shape(), dims), n](const Tensor& g) {
                  return std::vector<Tensor>{
                      mul(g.reshape(k), 1.0 / static_cast<double>(n)).expand(in).contiguous()};
                });
  }
  return out;
}

Tensor max(const Tensor& x) { return max(x, {}, false); }

Tensor max(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  std::vector<int> dims = normalise_dims(x, dims_in);
  Tensor kept = reduce_raw(ReduceOp::kMax, x, dims);
  Tensor out = kept.reshape(reduced_shape(x.shape(), dims, keepdim));
  if (needs_grad({x})) {
    set_grad_fn(out, "MaxBackward", {x},
                [xd = x.detach(), m = kept, dims](const Tensor& g) {
                  Tensor mask = eq(xd, m);  // 1 at every maximum
                  Tensor count = reduce_raw(ReduceOp::kSum, mask, dims);
                  return std::vector<Tensor>{mask * (g.reshape(m.shape()) / count)};
                });
  }
  return out;
}

}  // namespace cudl
