// Level 3 of DESIGN.md: the core ops against real PyTorch (tests/reference/core.py, run by
// ctest before these tests). Inputs, outputs, the upstream gradient and the input gradients
// all come from PyTorch in float32.
//
// Tolerances (float32): elementwise ops and reductions of <= 60 terms agree to rounding
// (atol 1e-6, rtol 1e-5); matmul and the composite sum products in a different order than
// PyTorch's BLAS: atol 1e-5, rtol 1e-4.
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;
using testing::load_reference;

void check_case(const std::string& name, size_t n_inputs,
                const std::function<Tensor(const std::vector<Tensor>&)>& f, double atol, double rtol) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < n_inputs; ++i)
    in.push_back(load_reference("core", name + "_in" + std::to_string(i)).set_requires_grad());
  Tensor out = f(in);
  EXPECT_TRUE(all_close(out, load_reference("core", name + "_out"), atol, rtol)) << name << " output";
  out.backward(load_reference("core", name + "_gout"));
  for (size_t i = 0; i < n_inputs; ++i) {
    EXPECT_TRUE(all_close(in[i].grad(), load_reference("core", name + "_grad" + std::to_string(i)),
                          atol, rtol))
        << name << " gradient of input " << i;
  }
}

TEST(Parity, Matmul) {
  check_case("matmul", 2, [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 1e-4);
  check_case("bmm", 2, [](auto& v) { return matmul(v[0], v[1]); }, 1e-5, 1e-4);
}

TEST(Parity, BroadcastingAddMul) {
  check_case("add_bcast", 2, [](auto& v) { return add(v[0], v[1]); }, 1e-6, 1e-5);
  check_case("mul_bcast", 2, [](auto& v) { return mul(v[0], v[1]); }, 1e-6, 1e-5);
}

TEST(Parity, SigmoidIncludingExtremeInputs) {
  check_case("sigmoid", 1, [](auto& v) { return sigmoid(v[0]); }, 1e-6, 1e-5);
}

TEST(Parity, Reductions) {
  check_case("sum_dim", 1, [](auto& v) { return sum(v[0], {1}); }, 1e-6, 1e-5);
  check_case("sum_all", 1, [](auto& v) { return sum(v[0]); }, 1e-5, 1e-5);
  check_case("mean_dims", 1, [](auto& v) { return mean(v[0], {0, 2}, true); }, 1e-6, 1e-5);
  check_case("mean_all", 1, [](auto& v) { return mean(v[0]); }, 1e-6, 1e-5);
  check_case("max_dim", 1, [](auto& v) { return max(v[0], {2}); }, 1e-6, 1e-5);
  check_case("max_all", 1, [](auto& v) { return max(v[0]); }, 1e-6, 1e-5);
}

TEST(Parity, CompositeExpressionGradients) {
  check_case("composite", 5,
             [](auto& v) {
               const Tensor &x = v[0], &w1 = v[1], &b1 = v[2], &w2 = v[3], &y = v[4];
               Tensor h = relu(matmul(x, w1) + b1);
               Tensor z = cat({h, x}, 1);
               Tensor o = sigmoid(matmul(z, w2));
               Tensor bce = neg(mean(log(o) * y + log(1.0 - o) * (1.0 - y)));
               return bce + sum(pow(w1, 2.0)) * 0.01 / 3.0 + mean(exp(neg(b1)));
             },
             1e-5, 1e-4);
}

}  // namespace
}  // namespace cudl
