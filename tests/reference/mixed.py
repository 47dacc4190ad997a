"""Reference for mixed precision (tests/models/test_mixed_parity.cpp), by PyTorch 1.13 on the
CPU.

- float32 -> bfloat16 rounding of a million values (random over many scales, exact ties,
  values next to ties, signed zeros, subnormals, the largest floats, infinities, NaN), as
  PyTorch's bfloat16 bit patterns.
- What mixed precision computes, emulated exactly in float64: every op that produces a
  bfloat16 tensor rounds its float64 result to bfloat16 once, and the gradient flowing back
  into a bfloat16 tensor is rounded to bfloat16 too (R below). Matrix products (conv2d,
  linear) round their float32 operands to bfloat16 and accumulate exactly; batch norm reads
  bfloat16 activations with float32 parameters; ReLU, max pooling and concatenation are exact
  on bfloat16 values; adds and means round. This is the contract of bf16 tensor cores (fp32
  accumulation, one rounding per output) that cuDNN and cuBLAS implement and cudl follows on
  both backends. PyTorch's own CPU autocast is not the reference: on CPUs without AVX512-BF16
  its bfloat16 convolutions round partial sums (three quarters of the outputs of a small conv
  differ from the once-rounded result, by up to 1%).
- Single ops (conv2d with bias, linear, batch norm in training mode, max pooling, the fastai
  concat pool): outputs and every gradient, emulated.
- The notebook model (as in resnet.py, Dropout p = 0, running statistics set from the batch)
  in training and in eval mode: logits, loss and every parameter gradient, emulated and in
  plain float32 (for scale: how far mixed precision itself is from float32).
bfloat16 results are saved widened to float32 (exact), since NumPy has no bfloat16."""
import copy
import types

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from common import AdaptiveConcatPool2d, notebook_net, out_dir, saver

torch.manual_seed(0)
torch.set_num_threads(1)
save = saver("mixed")
d = out_dir("mixed")

# ---- rounding ----
parts = [torch.randn(200000) * torch.exp(torch.randn(200000) * 20).clamp(max=1e30)]
hi = torch.randint(0, 1 << 16, (200000,), dtype=torch.int64) << 16
for low in (0x8000, 0x7FFF, 0x8001):  # exact ties, just below, just above
    parts.append((hi | low).to(torch.int32).view(torch.float32))
parts.append(torch.randint(-(1 << 31), (1 << 31) - 1, (200000,), dtype=torch.int64)
             .to(torch.int32).view(torch.float32))  # any bit pattern, NaNs included
special = torch.tensor([0x00000000, 0x80000000, 0x00000001, 0x00008000, 0x00018000, 0x007FFFFF,
                        0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
                        0x7FC00000, 0x7F800001, 0xFFC00001, 0x3F808000, 0x3F818000, 0x3F808001],
                       dtype=torch.int64).to(torch.int32).view(torch.float32)
parts.append(special)
values = torch.cat(parts)
save("round_in_bits", values.view(torch.int32).to(torch.int64))
save("round_out_bits", values.to(torch.bfloat16).view(torch.int16).to(torch.int64) & 0xFFFF)


def to_bf16(t):
    return t.float().bfloat16().double()


class Round(torch.autograd.Function):
    """A bfloat16 tensor: the value rounds once, and so does the gradient flowing into it."""

    @staticmethod
    def forward(ctx, t):
        return to_bf16(t)

    @staticmethod
    def backward(ctx, g):
        return to_bf16(g)


R = Round.apply


def conv(x, w, b=None, **kw):
    return R(F.conv2d(R(x), R(w), None if b is None else R(b), **kw))


def linear(x, w, b):
    return R(R(F.linear(R(x), R(w))) + R(b))  # the product, then the bias add, each rounded


def batch_norm(x, m):
    return R(F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, m.training,
                          m.momentum, m.eps))


def concat_pool(t):
    return torch.cat([F.adaptive_max_pool2d(t, 1), R(F.adaptive_avg_pool2d(t, 1))], 1)


def leaf(t):
    return t.double().requires_grad_()


def run(name, fn, x, params):
    """fn(x, *params) in the emulation: output and the gradients of x and of each parameter
    (named) for a random upstream gradient of bfloat16 values."""
    save(f"{name}_x", x)
    for k, p in params.items():
        save(f"{name}_{k}", p)
    xl = leaf(x)
    pl = {k: leaf(p) for k, p in params.items()}
    y = fn(xl, *pl.values())
    g = to_bf16(torch.randn(y.shape))
    y.backward(g)
    save(f"{name}_out", y.float())
    save(f"{name}_g", g.float())
    save(f"{name}_grad_x", xl.grad.float())
    for k, p in pl.items():
        save(f"{name}_grad_{k}", p.grad.float())


run("conv", lambda x, w, b: conv(x, w, b, stride=2, padding=1), torch.randn(3, 5, 17, 19),
    {"weight": torch.randn(7, 5, 3, 3) * 0.3, "bias": torch.randn(7)})
run("linear", linear, torch.randn(6, 37), {"weight": torch.randn(11, 37) * 0.2,
                                           "bias": torch.randn(11)})
bn = nn.BatchNorm2d(6).double()
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)


run("bn", lambda x, w, weight, bias: R(F.batch_norm(conv(x, w), bn.running_mean, bn.running_var,
                                                    weight, bias, True, 0.1, 1e-5)),
    torch.randn(4, 6, 9, 11), {"conv.weight": torch.randn(6, 6, 1, 1) * 0.4,
                               "op.weight": bn.weight.detach().float(),
                               "op.bias": bn.bias.detach().float()})
save("bn_running_mean", bn.running_mean.float())
save("bn_running_var", bn.running_var.float())
run("maxpool", lambda x, w: F.max_pool2d(conv(x, w), 3, 2, 1), torch.randn(2, 4, 15, 13),
    {"conv.weight": torch.randn(4, 4, 1, 1) * 0.5})
run("concatpool", lambda x, w: concat_pool(conv(x, w)), torch.randn(2, 4, 7, 9),
    {"conv.weight": torch.randn(4, 4, 1, 1) * 0.5})


# ---- the notebook model ----
model = torchvision.models.resnet18()
net = notebook_net(model)
xn = torch.randn(8, 3, 64, 64)
y = (torch.rand(8, 4) > 0.5).float()
save("xn", xn)
save("y", y)
# Running statistics of this batch (momentum 1 for one pass), so that eval mode normalises
# the activations as training mode does.
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = 1.0
    net.train()
    net(xn)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = 0.1
torch.save(net.state_dict(), f"{d}/notebook.pth")
state = {k: v.clone() for k, v in net.state_dict().items()}
names = [name for name, _ in net.named_parameters()]
with open(f"{d}/param_names.txt", "w") as f:
    f.write("\n".join(names) + "\n")


# The emulation: the same modules in float64 with the rounding points of mixed precision.
def emulate(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.forward = types.MethodType(
                lambda self, t: conv(t, self.weight, self.bias, stride=self.stride,
                                     padding=self.padding), m)
        elif isinstance(m, nn.Linear):
            m.forward = types.MethodType(lambda self, t: linear(t, self.weight, self.bias), m)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.forward = types.MethodType(lambda self, t: batch_norm(t, self), m)
        elif isinstance(m, AdaptiveConcatPool2d):
            m.forward = types.MethodType(lambda self, t: concat_pool(t), m)
        elif isinstance(m, torchvision.models.resnet.BasicBlock):
            def block(self, t):
                out = self.relu(self.bn1(self.conv1(t)))
                out = self.bn2(self.conv2(out))
                identity = t if self.downsample is None else self.downsample(t)
                return self.relu(R(out + identity))
            m.forward = types.MethodType(block, m)


emulated = copy.deepcopy(net).double()
emulate(emulated)
# Training mode (batch statistics), then eval mode (the running statistics above): float32
# for scale, and the emulation. The emulated logits round to bfloat16; the loss reads them in
# float32, as compute_loss does.
for mode in ("train", "eval"):
    for tag, model, dtype in (("fp32", net, torch.float32), ("bf16", emulated, torch.float64)):
        model.load_state_dict(state)
        model.train(mode == "train")
        model.zero_grad()
        logits = model(xn.to(dtype))
        loss = F.binary_cross_entropy_with_logits(logits.float().to(dtype), y.to(dtype))
        loss.backward()
        save(f"{mode}_{tag}_logits", logits.float())
        save(f"{mode}_{tag}_loss", loss.float())
        for name, p in model.named_parameters():
            save(f"{mode}_{tag}_grad.{name}", p.grad.float())
print("mixed reference written")
