// Shared test helpers: device lists, CUDA skips, tolerant comparison with the worst element
// reported, a float64 finite-difference gradient checker, and reference-file loading.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace cudl::testing {

// True when a CUDA device is usable. Without one, CUDA tests skip with the reason, unless the
// environment variable CUDL_REQUIRE_CUDA=1 is set (the GPU check script sets it), in which case
// they fail: a GPU run must never pass by skipping.
bool cuda_available();
std::string cuda_skip_reason();
bool cuda_required();

#define CUDL_REQUIRE_CUDA_OR_SKIP()                                                   \
  do {                                                                                \
    if (!::cudl::testing::cuda_available()) {                                         \
      if (::cudl::testing::cuda_required())                                           \
        FAIL() << "CUDL_REQUIRE_CUDA is set but no GPU: "                             \
               << ::cudl::testing::cuda_skip_reason();                               \
      GTEST_SKIP() << "no CUDA device: " << ::cudl::testing::cuda_skip_reason();      \
    }                                                                                 \
  } while (0)

// The message (without the source location) of the cudl::Error that `f` throws; a test failure,
// and "", when it throws nothing.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  ADD_FAILURE() << "expected a cudl::Error";
  return "";
}

// Expects `stmt` to throw a cudl::Error whose message contains `text`.
#define EXPECT_ERROR_HAS(stmt, text)                                                   \
  do {                                                                                 \
    const std::string cudl_error_message_ = ::cudl::testing::error_of([&] { stmt; });  \
    EXPECT_NE(cudl_error_message_.find(text), std::string::npos) << cudl_error_message_; \
  } while (0)

// |actual - expected| <= atol + rtol * |expected| for every element; on failure the message
// names the worst element (index, both values, the error and the bound) and the count of bad ones.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol,
                                     double rtol);
// Largest |a - e| / max(|e|, floor) over all elements (for reporting errors).
double max_rel_error(const Tensor& actual, const Tensor& expected, double floor = 1e-3);

// Float64 central-difference check of every input gradient of f. The analytic gradient is of
// sum(f(x) * R) for a fixed random R, so every output element is tested.
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
::testing::AssertionResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                                     double eps = 1e-6, double atol = 1e-6, double rtol = 1e-5);

// Leaf copies of the inputs requiring grad: one set on the CPU, one on `device` (for the tests
// that run an op on both and compare outputs and gradients).
std::pair<std::vector<Tensor>, std::vector<Tensor>> leaf_copies(const std::vector<Tensor>& inputs,
                                                                Device device);

// Random float64 CPU tensor, uniform on [lo, hi).
Tensor rand64(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);

// Reference data written by tests/reference/*.py: CUDL_REF_DIR/<case>/<name>.npy.
std::string reference_dir(const std::string& case_name);
Tensor load_reference(const std::string& case_name, const std::string& name);

}  // namespace cudl::testing
