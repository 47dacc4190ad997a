"""The notebook's model in plain PyTorch, shared by the PyTorch twins of the benchmarks:
torchvision ResNet body without avgpool/fc + fastai v1's head (RECIPE.md)."""
import math

import torch
import torchvision
from torch import nn


class AdaptiveConcatPool2d(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, 1),
                          nn.functional.adaptive_avg_pool2d(x, 1)], 1)


def notebook_model(num_classes=4, arch="resnet18"):
    base = getattr(torchvision.models, arch)()
    body = nn.Sequential(*list(base.children())[:-2])
    nf = 1024 if arch in ("resnet18", "resnet34") else 4096
    head = nn.Sequential(AdaptiveConcatPool2d(), nn.Flatten(), nn.BatchNorm1d(nf), nn.Dropout(0.25),
                         nn.Linear(nf, 512), nn.ReLU(inplace=True), nn.BatchNorm1d(512),
                         nn.Dropout(0.5), nn.Linear(512, num_classes))
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(body, head)


def adamw_decoupled(params, lr=1e-4, betas=(0.9, 0.99), eps=1e-8, wd=1e-2, **kw):
    """fastai v1's AdamW: p *= 1 - lr*wd, then Adam. torch.optim.AdamW does exactly this.
    kw go to torch.optim.AdamW (capturable=True for a step captured in a CUDA graph)."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd, **kw)
