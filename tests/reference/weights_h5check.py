"""Reads a weights file written by cudl with h5py, as a PyTorch user would, and compares it with
the tensors PyTorch saved (tests/reference/weights.py wrote them as .npy).

usage: weights_h5check.py FILE.h5 EXPECTED_DIR   every dataset equals its .npy exactly (float16
                                                 datasets: equal numpy's float16 rounding), the
                                                 same set of names, format attributes present
       weights_h5check.py FILE.h5 --attrs        prints the root attributes, one "name=value" line
                                                 each, sorted by name
Exit status 0 when the file checks out, 1 with a message otherwise.
"""
import os
import sys

import h5py
import numpy as np


def attr_text(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return "[" + ",".join(attr_text(x) for x in v.tolist()) + "]"
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    return str(v)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    f = h5py.File(sys.argv[1], "r")
    if sys.argv[2] == "--attrs":
        for k in sorted(f.attrs):
            print(f"{k}={attr_text(f.attrs[k])}")
        return 0
    expected_dir = sys.argv[2]
    problems = []
    if f.attrs.get("format") != "cudl-weights" or int(f.attrs.get("format_version", 0)) != 1:
        problems.append(f"format attributes: {dict(f.attrs)}")
    datasets = {}
    f.visititems(lambda n, o: datasets.__setitem__(n.replace("/", "."), o)
                 if isinstance(o, h5py.Dataset) else None)
    expected = {n[:-4] for n in os.listdir(expected_dir) if n.endswith(".npy")}
    if set(datasets) != expected:
        problems.append(f"names differ: only in file {sorted(set(datasets) - expected)[:5]}, "
                        f"only expected {sorted(expected - set(datasets))[:5]}")
    for name in sorted(expected & set(datasets)):
        want = np.load(os.path.join(expected_dir, name + ".npy"))
        got = datasets[name][()]
        if got.dtype == np.float16:
            want = want.astype(np.float16)
        elif want.dtype == np.float32 and got.dtype != np.float32:
            problems.append(f"{name}: dtype {got.dtype}, expected float32")
            continue
        if got.shape != want.shape or not np.array_equal(got, want):
            problems.append(f"{name}: values or shape {got.shape} differ from {want.shape}")
    if problems:
        print("h5py check failed:\n  " + "\n  ".join(problems[:20]))
        return 1
    print(f"h5py read {len(datasets)} datasets, all equal")
    return 0


sys.exit(main())
