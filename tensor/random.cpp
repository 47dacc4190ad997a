#include "tensor/random.h"

#include "tensor/graph.h"
#include "tensor/ops/kernels.h"

namespace cudl {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
Tensor& fill_dist(Tensor& t, philox::Dist dist, double a, double b, Generator* gen, const char* name) {
  CUDL_CHECK(t.is_contiguous(), name, " needs a contiguous tensor");
  CUDL_CHECK(isFloating(t.dtype()), name, " needs a floating tensor, got ", toString(t.dtype()));
  Generator& g = gen ? *gen : default_generator();
  const int64_t n = t.numel();
  CUDL_CHECK(!g.device_base() || t.device().is_cuda(), name,
             ": a generator being captured into a CUDA graph draws on CUDA only, got a tensor on ",
             t.device().str());
  CUDL_CHECK(g.device_base() || !is_capturing(t.device()), name,
             ": draws from a generator that was not given to CudaGraph::capture; its numbers "
             "would repeat at every replay");
  const uint64_t offset = g.reserve(static_cast<uint64_t>((n + 3) / 4));
  CUDL_ON_DEVICE(t.device(), fill_random, t.dtype(), n, t.data_ptr(), g.seed(), offset,
                 g.device_base(), dist, a, b);
  return t;
}
}  // namespace

Tensor& uniform_(Tensor& t, double low, double high, Generator* gen) {
  return fill_dist(t, philox::Dist::kUniform, low, high, gen, "uniform_");
}
Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  return fill_dist(t, philox::Dist::kNormal, mean, std, gen, "normal_");
}
Tensor& bernoulli_(Tensor& t, double p, Generator* gen) {
  return fill_dist(t, philox::Dist::kBernoulli, p, 0.0, gen, "bernoulli_");
}

Tensor rand(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  Tensor t = empty(shape, opts.requires_grad(false));
  uniform_(t, 0.0, 1.0, gen);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

Tensor randn(const Shape& shape, const TensorOptions& opts, Generator* gen) {
  Tensor t = empty(shape, opts.requires_grad(false));
  normal_(t, 0.0, 1.0, gen);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

}  // namespace cudl
