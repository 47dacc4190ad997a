"""Helpers for the PyTorch reference scripts: each script writes .npy files into
<root>/<case>/ that the C++ parity tests read (tests/common/npy.cpp)."""
import json
import os
import struct
import sys

import numpy as np
import torch


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
