"""Helpers for the PyTorch reference scripts: each script writes .npy files into
<root>/<case>/ that the C++ parity tests read (tests/common/npy.cpp)."""
import os
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
