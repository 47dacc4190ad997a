#include "tests/common/test_util.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tests/common/npy.h"

namespace cudl::testing {

bool cuda_available() { return cuda_device_count() > 0; }
std::string cuda_skip_reason() { return cuda_unavailable_reason(); }
bool cuda_required() {
  const char* v = std::getenv("CUDL_REQUIRE_CUDA");
  return v && std::string(v) == "1";
}

namespace {
std::vector<double> host64(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(kFloat64).contiguous().to_vector<double>();
}

std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    idx[i] = flat % std::max<int64_t>(shape[i], 1);
    flat /= std::max<int64_t>(shape[i], 1);
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? "," : "") + std::to_string(idx[i]);
  return s + "]";
}
}  // namespace

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol,
                                     double rtol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor in comparison";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " vs expected "
                                         << shape_str(expected.shape());
  std::vector<double> a = host64(actual), e = host64(expected);
  int64_t bad = 0, worst = -1;
  double worst_excess = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::fabs(a[i] - e[i]);
    double bound = atol + rtol * std::fabs(e[i]);
    bool ok = err <= bound || (std::isnan(a[i]) && std::isnan(e[i])) ||
              (std::isinf(a[i]) && a[i] == e[i]);
    if (!ok) {
      ++bad;
      double excess = std::isnan(err) ? INFINITY : err / bound;
      if (worst < 0 || excess > worst_excess) {
        worst = static_cast<int64_t>(i);
        worst_excess = excess;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << bad << " of " << a.size() << " elements differ; worst at " << index_str(worst, actual.shape())
     << ": actual " << a[worst] << ", expected " << e[worst] << ", |diff| "
     << std::fabs(a[worst] - e[worst]) << " > atol " << atol << " + rtol " << rtol << " * |expected|";
  return ::testing::AssertionFailure() << os.str();
}

double max_rel_error(const Tensor& actual, const Tensor& expected, double floor) {
  std::vector<double> a = host64(actual), e = host64(expected);
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - e[i]) / std::max(std::fabs(e[i]), floor));
  return worst;
}

std::pair<std::vector<Tensor>, std::vector<Tensor>> leaf_copies(const std::vector<Tensor>& inputs,
                                                                Device device) {
  std::vector<Tensor> cpu, other;
  for (const Tensor& t : inputs) {
    cpu.push_back(t.clone().set_requires_grad());
    other.push_back(t.to(device).set_requires_grad());
  }
  return {cpu, other};
}

Tensor rand64(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  Tensor t = empty(shape, kFloat64);
  uniform_(t, lo, hi, &g);
  return t;
}

::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs_in, double eps,
                                     double atol, double rtol) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs_in) {
    if (t.dtype() != kFloat64 || !t.device().is_cpu())
      return ::testing::AssertionFailure() << "gradcheck needs float64 CPU inputs, got " << t.info();
    Tensor leaf = t.detach().clone();
    leaf.set_requires_grad(true);
    inputs.push_back(leaf);
  }
  Tensor out = f(inputs);
  Tensor weights = rand64(out.shape(), 12345, 0.5, 1.5);
  sum(out * weights).backward();

  auto objective = [&]() {
    NoGradGuard ng;
    return sum(f(inputs) * weights).item();
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    Tensor analytic = x.grad().defined() ? x.grad() : zeros_like(x);
    Tensor numeric = empty(x.shape(), kFloat64);
    double* px = x.data<double>();
    double* pn = numeric.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double orig = px[i];
      px[i] = orig + eps;
      double lp = objective();
      px[i] = orig - eps;
      double lm = objective();
      px[i] = orig;
      pn[i] = (lp - lm) / (2 * eps);
    }
    auto r = all_close(analytic, numeric, atol, rtol);
    if (!r) return ::testing::AssertionFailure() << "input " << k << ": analytic vs numeric: " << r.message();
  }
  return ::testing::AssertionSuccess();
}

std::string reference_dir(const std::string& case_name) {
  const char* root = std::getenv("CUDL_REF_DIR");
  CUDL_CHECK(root && *root, "CUDL_REF_DIR is not set: run this test through ctest, which runs the "
                            "PyTorch reference scripts first");
  return std::string(root) + "/" + case_name;
}

Tensor load_reference(const std::string& case_name, const std::string& name) {
  return load_npy(reference_dir(case_name) + "/" + name + ".npy");
}

}  // namespace cudl::testing
