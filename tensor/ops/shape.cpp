#include "tensor/ops/shape.h"

#include "tensor/autograd.h"

namespace cudl {

Tensor cat(const std::vector<Tensor>& tensors, int dim) {
  CUDL_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  const int d = wrap_dim(dim, first.dim());
  Shape out_shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same_device_dtype("cat", first, t);
    CUDL_CHECK(t.dim() == first.dim(), "cat: tensor ", i, " has ", t.dim(), " dims, tensor 0 has ",
               first.dim());
    for (int64_t k = 0; k < t.dim(); ++k) {
      CUDL_CHECK(k == d || t.shape()[k] == first.shape()[k], "cat along dim ", d, ": tensor ", i,
                 " has shape ", shape_str(t.shape()), ", tensor 0 has ", shape_str(first.shape()));
    }
    total += t.shape()[d];
  }
  out_shape[d] = total;
  Tensor out = empty(out_shape, TensorOptions(first.dtype()).device(first.device()));
  std::vector<int64_t> starts;
  {
    NoGradGuard ng;
    int64_t at = 0;
    for (const Tensor& t : tensors) {
      starts.push_back(at);
      out.slice(d, at, at + t.shape()[d]).copy_(t);
      at += t.shape()[d];
    }
  }
  if (needs_grad(tensors)) {
    std::vector<int64_t> sizes;
    std::vector<bool> need;
    for (const Tensor& t : tensors) {
      sizes.push_back(t.shape()[d]);
      need.push_back(t.requires_grad());
    }
    set_grad_fn(out, "CatBackward", tensors, [d, starts, sizes, need](const Tensor& g) {
      std::vector<Tensor> grads;
      for (size_t i = 0; i < starts.size(); ++i)
        grads.push_back(need[i] ? g.slice(d, starts[i], starts[i] + sizes[i]).contiguous() : Tensor());
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int dim) {
  CUDL_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  const int d = wrap_dim(dim, tensors[0].dim() + 1);
  std::vector<Tensor> u;
  for (const Tensor& t : tensors) {
    CUDL_CHECK(t.shape() == tensors[0].shape(), "stack: shapes differ: ", shape_str(t.shape()),
               " vs ", shape_str(tensors[0].shape()));
    u.push_back(t.unsqueeze(d));
  }
  return cat(u, d);
}

}  // namespace cudl
