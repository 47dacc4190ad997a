"""End-to-end reference for the models (tests/models/test_resnet_parity.cpp), by torchvision
and PyTorch 1.13 in float32 on the CPU, with a fixed seed and no download:

- torchvision resnet18 saved with torch.save and as safetensors, an input batch, and its
  logits in eval mode and in train mode (batch statistics);
- the notebook model (body = that resnet18 without avgpool/fc, fastai head with 4 outputs,
  named body.* / head.<i>.* as cudl's notebook_model) saved with torch.save, then one
  training step: train-mode forward, BCE-with-logits against fixed targets, backward (every
  parameter gradient saved), the BatchNorm running statistics after the forward, and the
  parameters after one decoupled AdamW step (RECIPE.md: lr 1e-4, betas (0.9, 0.99), eps 1e-8,
  wd 1e-2; torch.optim.AdamW is exactly p *= 1 - lr*wd, then Adam);
- the same forward and backward in float64 from the same weights (logits, loss, gradients and
  running statistics: *64 files), where no ReLU or max-pool decision can tip by rounding.
The head's Dropout layers are built with p = 0 here and in the C++ test: their random masks
cannot match PyTorch's generator (dropout itself is checked in the layer tests)."""

import copy

import torch
import torchvision
from torch import nn

from common import notebook_net, out_dir, save_safetensors, saver

torch.manual_seed(0)
torch.set_num_threads(1)
save = saver("resnet")
d = out_dir("resnet")

model = torchvision.models.resnet18()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial buffers and affine parameters
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
sd = model.state_dict()
torch.save(sd, f"{d}/resnet18.pth")
save_safetensors(f"{d}/resnet18.safetensors", sd)

x = torch.randn(2, 3, 128, 160)
save("x", x)
model.eval()
with torch.no_grad():
    save("logits_eval", model(x))
train_copy = torchvision.models.resnet18()
train_copy.load_state_dict(sd)
train_copy.train()
with torch.no_grad():
    save("logits_train", train_copy(x))
    save("train_bn1_running_mean", train_copy.bn1.running_mean)
    save("train_bn1_running_var", train_copy.bn1.running_var)


net = notebook_net(model)
torch.save(net.state_dict(), f"{d}/notebook.pth")

# Batch 8: with 2 samples the head's BatchNorm1d maps each feature to about +-1 from the
# difference of two nearly equal numbers, which amplifies float rounding without bound.
xn = torch.randn(8, 3, 64, 64)
y = (torch.rand(8, 4) > 0.5).float()
save("xn", xn)
save("y", y)
net.train()
# The float64 forward and backward first, from a copy: the float32 forward below updates the
# running statistics.
net64 = copy.deepcopy(net).double()
logits64 = net64(xn.double())
loss64 = nn.functional.binary_cross_entropy_with_logits(logits64, y.double())
loss64.backward()
save("nb_logits64", logits64)
save("nb_loss64", loss64)
for name, p in net64.named_parameters():
    save("grad64." + name, p.grad)
for name, b in net64.named_buffers():
    if b.dtype == torch.float64:
        save("buffer64." + name, b)
del net64, logits64, loss64
opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2)
opt.zero_grad()
logits = net(xn)
loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
loss.backward()
save("nb_logits", logits)
save("nb_loss", loss)
names = []
for name, p in net.named_parameters():
    save("grad." + name, p.grad)
    names.append(name)
for name, b in net.named_buffers():
    if b.dtype == torch.float32:
        save("buffer." + name, b)
opt.step()
for name, p in net.named_parameters():
    save("after." + name, p)
with open(f"{d}/param_names.txt", "w") as f:
    f.write("\n".join(names) + "\n")
print("resnet reference written")
