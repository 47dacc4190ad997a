"""Reference values for the core ops (tests/tensor/test_parity.cpp), computed by PyTorch in
float32 on the CPU: matmul, broadcasting add/mul, sigmoid, the reductions, and the gradients of
a small composite expression."""
import torch

from common import saver

torch.manual_seed(0)
torch.set_num_threads(1)
save = saver("core")


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_()


def run(name, fn, *inputs):
    """Saves inputs, output, a random upstream gradient and the input gradients."""
    out = fn(*inputs)
    g = torch.rand_like(out) + 0.5
    out.backward(g)
    for i, x in enumerate(inputs):
        save(f"{name}_in{i}", x)
        save(f"{name}_grad{i}", x.grad)
    save(f"{name}_out", out)
    save(f"{name}_gout", g)


run("matmul", torch.matmul, leaf(17, 33), leaf(33, 9))
run("bmm", torch.matmul, leaf(4, 5, 6), leaf(4, 6, 7))
run("add_bcast", torch.add, leaf(4, 1, 5), leaf(3, 1))
run("mul_bcast", torch.mul, leaf(4, 1, 5), leaf(3, 1))
x = torch.cat([torch.linspace(-100, 100, 41), torch.rand(59) * 8 - 4]).requires_grad_()
run("sigmoid", torch.sigmoid, x)
run("sum_dim", lambda t: t.sum(1), leaf(3, 4, 5))
run("sum_all", lambda t: t.sum(), leaf(3, 4, 5))
run("mean_dims", lambda t: t.mean((0, 2), keepdim=True), leaf(3, 4, 5))
run("mean_all", lambda t: t.mean(), leaf(3, 4, 5))
run("max_dim", lambda t: torch.amax(t, 2), leaf(3, 4, 5))
run("max_all", lambda t: torch.amax(t), leaf(3, 4, 5))


def composite(x, w1, b1, w2, y):
    h = torch.relu(x @ w1 + b1)
    z = torch.cat([h, x], 1)
    o = torch.sigmoid(z @ w2)
    bce = -(torch.log(o) * y + torch.log(1 - o) * (1 - y)).mean()
    return bce + (w1 ** 2).sum() * 0.01 / 3 + torch.exp(-b1).mean()


y = (torch.rand(8, 2) > 0.5).float()
run("composite", composite, leaf(8, 6), leaf(6, 5), leaf(5), leaf(11, 2), y.requires_grad_())
print("core reference written")
