// The autograd engine: accumulation, detach, no-grad mode, freed graphs, error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/ops/batch_norm.h"
#include "tests/common/test_util.h"

namespace cudl {
namespace {

using testing::all_close;

Tensor vec(std::vector<float> v) { return from_vector(v, {static_cast<int64_t>(v.size())}); }

TEST(Autograd, ChainRuleAndLeafAccumulation) {
  Tensor x = vec({1, 2, 3}).set_requires_grad();
  Tensor y = sum(x * x);  // dy/dx = 2x
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), vec({2, 4, 6}), 0, 0));
  // A second graph accumulates (+=) into the same leaf gradient.
  sum(x * 3.0).backward();
  EXPECT_TRUE(all_close(x.grad(), vec({5, 7, 9}), 0, 0));
  x.set_grad(Tensor());
  sum(x).backward();
  EXPECT_TRUE(all_close(x.grad(), vec({1, 1, 1}), 0, 0));
}

TEST(Autograd, SharedSubexpressionsSumTheirGradients) {
  Tensor x = vec({2}).set_requires_grad();
  Tensor a = x * x;      // used twice below
  Tensor y = a * a + a;  // y = x^4 + x^2, dy/dx = 4x^3 + 2x = 36
  sum(y).backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 36.f);
}

TEST(Autograd, LeafGradientIsPrivate) {
  // The same incoming gradient flows to two leaves; updating one must not change the other.
  Tensor a = vec({1, 1}).set_requires_grad(), b = vec({1, 1}).set_requires_grad();
  sum(a + b).backward();
  Tensor ga = a.grad();
  ga.fill_(7);
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Autograd, DetachAndNoGradStopRecording) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage().get(), x.storage().get());
  EXPECT_FALSE((d * 2.0).requires_grad());
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_mode_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE(grad_mode_enabled());
  // Gradient flows only through the non-detached branch.
  Tensor y = sum(x * x.detach());  // d/dx = x (not 2x)
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), vec({1, 2}), 0, 0));
}

TEST(Autograd, BackwardWithExplicitGradient) {
  Tensor x = vec({1, 2, 3}).set_requires_grad();
  Tensor y = x * 2.0;
  EXPECT_THROW(y.backward(), Error);  // non-scalar needs a gradient
  y.backward(vec({1, 10, 100}));
  EXPECT_TRUE(all_close(x.grad(), vec({2, 20, 200}), 0, 0));
}

// ReLU keeps a NaN (and passes its gradient), as PyTorch's does (torch.relu(nan) is nan): a
// NaN weight or activation must reach the loss and be reported, not be hidden as 0. The fused
// batch norm + ReLU epilogue follows the same rule.
TEST(Autograd, ReluKeepsNaNAsPyTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = INFINITY;
  Tensor x = from_vector(std::vector<float>{nan, -inf, -1.f, -0.f, 0.f, 1.f, inf}, {7})
                 .set_requires_grad();
  Tensor y = relu(x);
  y.backward(ones({7}));
  const std::vector<float> v = y.to_vector<float>(), g = x.grad().to_vector<float>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(std::vector<float>(v.begin() + 1, v.end()), (std::vector<float>{0, 0, 0, 0, 1, inf}));
  EXPECT_EQ(g, (std::vector<float>{1, 0, 0, 0, 0, 1, 1}));  // PyTorch's, from torch 1.13
  // Through batch_norm_act in eval mode (identity statistics): the same values.
  Tensor x4 = x.detach().reshape({1, 7, 1, 1});
  Tensor w = ones({7}), b = zeros({7}), rm = zeros({7}), rv = ones({7});
  const std::vector<float> fused =
      batch_norm_act(x4, w, b, rm, rv, false, 0.1, 0.0, Tensor(), true).to_vector<float>();
  EXPECT_TRUE(std::isnan(fused[0]));
  EXPECT_EQ(std::vector<float>(fused.begin() + 1, fused.end()),
            (std::vector<float>{0, 0, 0, 0, 1, inf}));
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a second time"), std::string::npos) << e.what();
  }
  // With retain_graph the graph can be reused.
  Tensor z = sum(exp(x));
  x.set_grad(Tensor());
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  EXPECT_TRUE(all_close(x.grad(), mul(exp(x.detach()), 2.0), 1e-6, 1e-6));
}

TEST(Autograd, GradientShapeAndDeviceMismatchesThrow) {
  Tensor x = vec({1, 2, 3}).set_requires_grad();
  Tensor y = x * 2.0;
  EXPECT_THROW(y.backward(vec({1, 2})), Error);
  EXPECT_THROW(y.backward(from_vector(std::vector<double>{1, 2, 3}, {3})), Error);
  // A hand-written node that returns a wrongly shaped gradient is caught by the engine.
  Tensor out = x.detach() * 1.0;
  set_grad_fn(out, "BrokenBackward", {x}, [](const Tensor& g) {
    return std::vector<Tensor>{zeros({5})};
  });
  try {
    sum(out).backward();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BrokenBackward returned a gradient of shape (5,) for an input of shape (3,)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Autograd, RequiresGradRules) {
  EXPECT_THROW(arange(3, kInt64).set_requires_grad(), Error);
  Tensor x = vec({1}).set_requires_grad();
  Tensor y = x * 2.0;
  EXPECT_FALSE(y.is_leaf());
  EXPECT_THROW(y.set_requires_grad(false), Error);
  EXPECT_THROW(vec({1}).backward(), Error);  // nothing requires grad
  EXPECT_THROW(x.fill_(0), Error);           // in-place on a leaf that needs grad
  NoGradGuard ng;
  x.fill_(0);  // allowed for updates
  EXPECT_EQ(x.item(), 0.0);
}

TEST(Autograd, GraphIsFreedWhenOutputsDie) {
  int64_t before = memory_stats(Device::cpu()).allocated_bytes;
  {
    Tensor x = rand({1000}).set_requires_grad();
    Tensor y = sigmoid(x);  // y's node saves y (detached: no reference cycle)
    Tensor z = sum(exp(y) * y);
    (void)z;
  }
  EXPECT_EQ(memory_stats(Device::cpu()).allocated_bytes, before);
}

}  // namespace
}  // namespace cudl
