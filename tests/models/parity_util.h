// Error measure of the model parity tests: max |a - e| / max|e| over a tensor (relative to the
// tensor's scale), and an expectation that prints it beside its bound; reference weights
// converted by the weights_import program.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "tests/models/weights_test_util.h"

namespace cudl::models {

inline double scaled_error(const Tensor& a, const Tensor& e) {
  std::vector<double> av = a.detach().to(Device::cpu()).to(kFloat64).contiguous().to_vector<double>();
  std::vector<double> ev = e.to(kFloat64).contiguous().to_vector<double>();
  double scale = 0, worst = 0;
  for (double v : ev) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < av.size(); ++i) worst = std::max(worst, std::fabs(av[i] - ev[i]));
  return scale > 0 ? worst / scale : worst;
}

#define EXPECT_SCALED_NEAR(actual, expected_tensor, bound, what)                 \
  do {                                                                           \
    Tensor a_ = (actual), e_ = (expected_tensor);                                \
    ASSERT_EQ(a_.shape(), e_.shape()) << (what);                                 \
    double err_ = scaled_error(a_, e_);                                          \
    std::printf("[parity] %-40s scaled error %.3g (bound %.1g)\n", std::string(what).c_str(), err_, \
                double(bound));                                                  \
    EXPECT_LE(err_, (bound)) << (what);                                          \
  } while (0)

// Converts reference file <case>/<file> with the weights_import program (CUDL_WEIGHTS_IMPORT)
// into dir and returns the HDF5 path.
inline std::string convert_reference(const testing::ScratchDir& dir, const std::string& case_name,
                                     const std::string& file, const std::string& args = "") {
  const std::string in = testing::reference_dir(case_name) + "/" + file;
  const std::string out = dir / (file + ".h5");
  auto r = testing::run_command(testing::shell_quote(CUDL_WEIGHTS_IMPORT) + " " +
                                testing::shell_quote(in) + " -o " + testing::shell_quote(out) +
                                " " + args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return out;
}

}  // namespace cudl::models
