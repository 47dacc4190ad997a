// Level 3 of DESIGN.md for the losses: cudl against torch.nn.functional (tests/reference/loss.py,
// run by ctest first), float32 on the CPU: loss and logit gradient for each reduction, on random
// logits, on logits of +-20 .. +-1000 against targets 0, 1 and 0.3, with pos_weight, and
// cross-entropy with and without class weights and at +-1000.
//
// Tolerances (float32): per-element values agree to a few ulp (log1p/exp implementations and
// operation order differ from torch's); atol 1e-6 covers values near 0, rtol 1e-5 the rest
// (2000 and 1000-sized losses included). The reductions sum at most 64 terms; cudl adds in
// double, torch in float: rtol 1e-5.
#include <gtest/gtest.h>

#include "tensor/ops/loss.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;
using testing::load_reference;

Tensor reference(const std::string& name) { return load_reference("loss", name); }

Reduction reduction_of(const std::string& r) {
  return r == "none" ? Reduction::kNone : r == "mean" ? Reduction::kMean : Reduction::kSum;
}

void check(const std::string& name, const std::function<Tensor(const Tensor&, Reduction)>& loss) {
  for (std::string r : {"none", "mean", "sum"}) {
    Tensor x = reference(name + "_x").set_requires_grad();
    Tensor out = loss(x, reduction_of(r));
    EXPECT_TRUE(all_close(out, reference(name + "_" + r + "_out"), 1e-6, 1e-5)) << name << " " << r << " loss";
    out.backward(reference(name + "_" + r + "_gout"));
    EXPECT_TRUE(all_close(x.grad(), reference(name + "_" + r + "_grad"), 1e-6, 1e-5)) << name << " " << r << " gradient";
  }
}

TEST(Parity, BceWithLogitsRandom) {
  Tensor y = reference("bce_rand_y");
  check("bce_rand", [&](const Tensor& x, Reduction r) { return binary_cross_entropy_with_logits(x, y, r); });
}

TEST(Parity, BceWithLogitsExtremeLogits) {
  Tensor y = reference("bce_extreme_y");
  check("bce_extreme", [&](const Tensor& x, Reduction r) { return binary_cross_entropy_with_logits(x, y, r); });
}

TEST(Parity, BceWithLogitsPosWeight) {
  Tensor y = reference("bce_posw_y"), pw = reference("bce_posw_pos_weight");
  check("bce_posw", [&](const Tensor& x, Reduction r) { return binary_cross_entropy_with_logits(x, y, r, pw); });
}

TEST(Parity, CrossEntropy) {
  Tensor t = reference("ce_rand_t"), w = reference("ce_weight_w");
  check("ce_rand", [&](const Tensor& x, Reduction r) { return cross_entropy(x, t, r); });
  check("ce_weight", [&](const Tensor& x, Reduction r) { return cross_entropy(x, t, r, w); });
  Tensor te = reference("ce_extreme_t");
  check("ce_extreme", [&](const Tensor& x, Reduction r) { return cross_entropy(x, te, r); });
}

}  // namespace
}  // namespace cudl
