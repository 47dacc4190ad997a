"""Reference values for the layer parity tests (tests/layers/test_parity.cpp), computed by
PyTorch in float32 on the CPU at ResNet-18's real shapes (300x300 input) and the fastai head's.

Each case writes, into <root>/<case>/: the module's state dict before the step (sd_<key>),
the input x, the output out, the upstream gradient gout, the input gradient grad_x, every
parameter gradient (grad_<name>), the buffers after the step (after_<key>, so the
running-statistics update of BatchNorm is checked too) and the state-dict keys in order
(keys: UTF-8 bytes, one key per line).

The same step is also run in float64 from the same state, with the same input and upstream
gradient. Its results are saved (exact_<tensor>, float64), and so is PyTorch's own float32
error against them (err64_<tensor>, one number each, measured like the C++ test measures
ours): the C++ test measures cudl's float32 error against the same exact results and bounds
it by a multiple of PyTorch's, so that the bound does not depend on which float32 summation
order PyTorch's kernels on this machine happen to share with cudl's."""
import copy

import numpy as np
import torch
import torch.nn as nn

from common import saver

torch.manual_seed(0)
torch.set_num_threads(1)


class AdaptiveConcatPool2d(nn.Module):
    """fastai v1's layer: cat([max-pool, avg-pool], 1), children registered as ap then mp."""

    def __init__(self, sz=1):
        super().__init__()
        self.ap = nn.AdaptiveAvgPool2d(sz)
        self.mp = nn.AdaptiveMaxPool2d(sz)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


def randomise_bn(bn):
    """Non-trivial affine parameters and running statistics, so every term of the update and
    of the normalisation is exercised."""
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(5)
    return bn


def worst_rel(actual, exact):
    """max |a - e| / max(|e|, 1e-2 * max |e|), as tests/layers/test_parity.cpp measures."""
    a, e = actual.detach().double(), exact.detach().double()
    floor = max(1e-2 * e.abs().max().item(), 1e-30)
    return ((a - e).abs() / e.abs().clamp(min=floor)).max().item()


def step(module, x, g):
    x = x.clone().requires_grad_()
    out = module(x)
    if g is None:
        g = torch.randn_like(out)
    out.backward(g)
    return x, out, g


def float32_and_float64(module, exact, x, g):
    """One step of `module` (float32) and of `exact` (its float64 copy) on x with upstream
    gradient g (None: drawn like the output): the float32 step's (x, out, g) and
    {tensor: (float32 result, float64 result)} for the output, the input gradient, the
    parameter gradients and the buffers after the step."""
    x32, out, g = step(module, x, g)
    x64, out64, _ = step(exact, x.detach().double(), g.double())
    params64 = dict(exact.named_parameters())
    buffers64 = dict(exact.named_buffers())
    pairs = {"out": (out, out64), "grad_x": (x32.grad, x64.grad)}
    pairs.update({"grad_" + name: (p.grad, params64[name].grad)
                  for name, p in module.named_parameters()})
    pairs.update({"after_" + name: (b, buffers64[name]) for name, b in module.named_buffers()})
    return (x32, out, g), pairs


def run(case, module, x, train=True, exact_reference=True, spread=0):
    """exact_reference=False where the float64 rerun cannot be the same computation (a
    dropout mask drawn again). spread > 0: PyTorch's float32 error is the median of this
    step's and of `spread` more, from the same state on inputs that differ from x by about one
    float32 rounding (x * (1 + 2^-23 r), r standard normal): where layers amplify roundings
    (a training-mode BatchNorm on a small batch), one input's error is a draw that varies by
    more than 10x between such inputs, and the bound should rest on a typical draw rather than
    on a lucky one."""
    save = saver(case)
    module.train(train)
    before = copy.deepcopy(module)
    exact = copy.deepcopy(module).double()
    for k, v in module.state_dict().items():
        save("sd_" + k, v)
    save("keys", np.frombuffer("\n".join(module.state_dict().keys()).encode(), dtype=np.uint8))
    if not exact_reference:
        x, out, g = step(module, x, None)
    else:
        (x, out, g), pairs = float32_and_float64(module, exact, x, None)
        errors = {name: [worst_rel(fp32, fp64)] for name, (fp32, fp64) in pairs.items()}
        noise = torch.Generator().manual_seed(1)
        for _ in range(spread):
            near = x.detach() * (1 + 2.0 ** -23 * torch.randn(x.shape, generator=noise))
            _, more = float32_and_float64(copy.deepcopy(before), copy.deepcopy(before).double(),
                                          near, g)
            for name, (fp32, fp64) in more.items():
                errors[name].append(worst_rel(fp32, fp64))
        for name, (_, fp64) in pairs.items():
            save("exact_" + name, fp64)
            save("err64_" + name, float(np.median(errors[name])))
            if spread:
                print(f"{case} {name}: PyTorch's float32 error on x {errors[name][0]:.3g}, "
                      f"median {np.median(errors[name]):.3g}, range {min(errors[name]):.3g} "
                      f"to {max(errors[name]):.3g} over {len(errors[name])} inputs")
    save("x", x)
    save("out", out)
    save("gout", g)
    save("grad_x", x.grad)
    for name, p in module.named_parameters():
        save("grad_" + name, p.grad)
    for k, v in module.named_buffers():
        save("after_" + k, v)


# ---- Conv2d: ResNet-18's convolutions at a 300x300 input, then the general case ----
run("conv_stem", nn.Conv2d(3, 64, 7, 2, 3, bias=False), torch.randn(2, 3, 300, 300))
run("conv3x3_s1", nn.Conv2d(64, 64, 3, 1, 1, bias=False), torch.randn(2, 64, 75, 75))
run("conv3x3_s2", nn.Conv2d(64, 128, 3, 2, 1, bias=False), torch.randn(2, 64, 75, 75))
run("conv1x1_s2", nn.Conv2d(64, 128, 1, 2, bias=False), torch.randn(2, 64, 75, 75))
run("conv3x3_layer4", nn.Conv2d(512, 512, 3, 1, 1, bias=False), torch.randn(2, 512, 10, 10))
run("conv_general",
    nn.Conv2d(4, 6, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=True),
    torch.randn(3, 4, 11, 9))

# ---- BatchNorm: ResNet's bn1 shape and the head's BatchNorm1d, train and eval ----
run("bn2d_train", randomise_bn(nn.BatchNorm2d(64)), torch.randn(2, 64, 150, 150) * 2 + 0.5)
run("bn2d_eval", randomise_bn(nn.BatchNorm2d(128)), torch.randn(2, 128, 38, 38) * 2 + 0.5,
    train=False)
run("bn1d_train", randomise_bn(nn.BatchNorm1d(1024)), torch.randn(16, 1024) * 2 + 0.5)
run("bn1d_eval", randomise_bn(nn.BatchNorm1d(512)), torch.randn(16, 512) * 2 + 0.5, train=False)

# ---- pooling: ResNet's stem max-pool; after a ReLU half the inputs are 0, so windows tie and
# the gradient must go where PyTorch sends it ----
run("maxpool", nn.MaxPool2d(3, 2, 1), torch.randn(2, 64, 150, 150))
run("maxpool_relu", nn.MaxPool2d(3, 2, 1), torch.relu(torch.randn(2, 16, 38, 38)))
run("avgpool", nn.AdaptiveAvgPool2d(1), torch.randn(2, 512, 10, 10))
run("maxpool_global", nn.AdaptiveMaxPool2d(1), torch.randn(2, 512, 10, 10))
run("concatpool", AdaptiveConcatPool2d(), torch.randn(2, 512, 10, 10))

# ---- the head's Linear layers ----
run("linear", nn.Linear(1024, 512), torch.randn(16, 1024))
run("linear_out", nn.Linear(512, 4), torch.randn(16, 512))

# ---- parameter-free layers ----
run("relu", nn.ReLU(), torch.randn(2, 64, 20, 20))
run("flatten", nn.Flatten(), torch.randn(2, 1024, 1, 1))
run("dropout", nn.Dropout(0.25), torch.randn(64, 256), exact_reference=False)
run("dropout_eval", nn.Dropout(0.5), torch.randn(16, 512), train=False)

# ---- a small ResNet-like stack with the fastai head, in a Sequential (names "0.weight", ...) ----
stack = nn.Sequential(
    nn.Conv2d(3, 8, 7, 2, 3, bias=False), randomise_bn(nn.BatchNorm2d(8)), nn.ReLU(),
    nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 16, 3, 1, 1, bias=False), randomise_bn(nn.BatchNorm2d(16)),
    nn.ReLU(), AdaptiveConcatPool2d(), nn.Flatten(), randomise_bn(nn.BatchNorm1d(32)),
    nn.Linear(32, 16), nn.ReLU(), randomise_bn(nn.BatchNorm1d(16)), nn.Linear(16, 4))
run("stack", stack, torch.randn(4, 3, 64, 64), spread=16)
print("layers reference written")
