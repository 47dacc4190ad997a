// cudl_demo: a small end-to-end use of the tensor library until fridge_train exists.
// Fits a two-layer network to a synthetic two-class problem (points inside vs outside a circle)
// with autograd and plain gradient descent, on the best device, and prints the loss falling.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/ops.h"

int main(int argc, char** argv) {
  using namespace cudl;
  try {
    Device dev = Device::parse(argc > 1 ? argv[1] : "auto");
    std::printf("cudl demo on %s (%d CPU threads)\n", dev.str().c_str(), get_num_threads());
    Generator gen(0);
    const int64_t n = 512, hidden = 32;
    TensorOptions opts = TensorOptions().device(dev);
    Tensor x = rand({n, 2}, opts, &gen) * 2.0 - 1.0;  // points in [-1, 1]^2
    Tensor r2 = sum(x * x, {1}, true);
    Tensor y = gt(r2, full({}, 0.5, opts));  // 1 outside the circle of radius sqrt(0.5)

    Tensor w1 = (randn({2, hidden}, opts, &gen) * 1.0).detach().set_requires_grad();
    Tensor b1 = zeros({hidden}, opts.requires_grad());
    Tensor w2 = (randn({hidden, 1}, opts, &gen) * (1.0 / 6)).detach().set_requires_grad();
    Tensor b2 = zeros({1}, opts.requires_grad());
    std::vector<Tensor> params{w1, b1, w2, b2};

    const double lr = 1.0;
    for (int step = 0; step <= 400; ++step) {
      Tensor p = sigmoid(matmul(relu(matmul(x, w1) + b1), w2) + b2);
      Tensor loss = neg(mean(y * log(p + 1e-7) + (1.0 - y) * log(1.0 - p + 1e-7)));
      for (Tensor& t : params) t.set_grad(Tensor());
      loss.backward();
      {
        NoGradGuard ng;
        for (Tensor& t : params) add_(t, t.grad() * -lr);
      }
      if (step % 50 == 0) {
        NoGradGuard ng;
        double acc = mean(eq(gt(p, full({}, 0.5, opts)), y)).item();
        std::printf("step %3d  loss %.4f  accuracy %.3f\n", step, loss.item(), acc);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cudl_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
