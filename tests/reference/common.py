"""Helpers for the PyTorch reference scripts: each script writes .npy files into
<root>/<case>/ that the C++ parity tests read (tests/common/npy.cpp)."""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn


def out_dir(case):
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_ROOT")
    d = os.path.join(sys.argv[1], case)
    os.makedirs(d, exist_ok=True)
    return d


def saver(case):
    d = out_dir(case)

    def save(name, t):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous().numpy()
        np.save(os.path.join(d, name + ".npy"), np.array(t, order="C"))  # keeps 0-d shapes

    return save


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
                      torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(filename, state):
    """The safetensors layout: u64 little-endian header size, JSON header, raw row-major data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in state.items():
        t = t.detach().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    with open(filename, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class AdaptiveConcatPool2d(nn.Module):
    """fastai's concat pool: max and average over the whole map, concatenated."""

    def __init__(self):
        super().__init__()
        self.ap, self.mp = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)

    def forward(self, t):
        return torch.cat([self.mp(t), self.ap(t)], 1)


def notebook_net(model):
    """The notebook model around a torchvision resnet (its modules, not copies): body = the
    resnet without avgpool/fc, fastai's head with 4 outputs and Dropout p = 0 (random masks
    cannot match cudl's generator), named body.* / head.<i>.* as cudl's notebook_model."""
    body = nn.Sequential(collections.OrderedDict(
        (name, child) for name, child in model.named_children() if name not in ("avgpool", "fc")))
    head = nn.Sequential(AdaptiveConcatPool2d(), nn.Flatten(), nn.BatchNorm1d(1024),
                         nn.Dropout(0.0), nn.Linear(1024, 512), nn.ReLU(inplace=True),
                         nn.BatchNorm1d(512), nn.Dropout(0.0), nn.Linear(512, 4))
    for m in head.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(collections.OrderedDict(body=body, head=head))
