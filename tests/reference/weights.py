"""Weights files for the weights_import and weights I/O tests
(tests/models/test_weights_parity.cpp).

Writes into <root>/weights/ files made by real PyTorch (torch.save in the zip format, protocol 2
and 4, the legacy format), safetensors files written here (the format is a JSON header and raw
bytes; the safetensors package is not needed), Hugging Face-named copies, and damaged or
hostile files; and the expected tensors as .npy (<root>/weights_<case>/<name>.npy).

No download: torchvision.models.resnet18() with a fixed seed stands in for the ImageNet weights
(same names and shapes). The hostile pickles are only written, never loaded.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

from common import out_dir, save_safetensors, saver

torch.manual_seed(0)
np.random.seed(0)
OUT = out_dir("weights")


def path(name):
    return os.path.join(OUT, name)


def save_expected(case, state):
    """Each tensor as <root>/weights_<case>/<name>.npy, as the C++ side should read it:
    floating types as float32, integer and bool types as int64."""
    save = saver("weights_" + case)
    for name, t in state.items():
        t = t.detach()
        t = t.float() if t.is_floating_point() else t.long()
        save(name, t)
    with open(path(case + "_names.txt"), "w") as f:
        f.write("\n".join(state.keys()) + "\n")


# ---- torchvision resnet18 -----------------------------------------------------------------------
model = torchvision.models.resnet18()  # weights=None: random init, no download
with torch.no_grad():
    # Give the BatchNorm buffers values a load could get wrong (they start as 0 and 1).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, ())))
sd = model.state_dict()
torch.save(sd, path("resnet18.pth"))
torch.save(sd, path("resnet18_p4.pth"), pickle_protocol=4)
save_safetensors(path("resnet18.safetensors"), sd)
save_expected("resnet18", sd)


def to_hf(name):
    """torchvision name -> Hugging Face transformers ResNet name (microsoft/resnet-18)."""
    p = name.split(".")
    if p[0] == "conv1":
        return "resnet.embedder.embedder.convolution." + p[1]
    if p[0] == "bn1":
        return "resnet.embedder.embedder.normalization." + p[1]
    if p[0] == "fc":
        return "classifier.1." + p[1]
    stage, block = int(p[0][len("layer"):]) - 1, p[1]
    base = f"resnet.encoder.stages.{stage}.layers.{block}."
    if p[2] == "downsample":
        kind = "convolution" if p[3] == "0" else "normalization"
        return base + f"shortcut.{kind}.{p[4]}"
    k = int(p[2][-1]) - 1
    kind = "convolution" if p[2].startswith("conv") else "normalization"
    return base + f"layer.{k}.{kind}.{p[3]}"


def block_of(name):
    return ".".join(name.split(".")[:2]) if name.startswith("layer") else name.split(".")[0]


# Hugging Face's module order puts a block's shortcut before its layers (a stable sort).
first_seen = {}
for i, k in enumerate(sd):
    first_seen.setdefault(block_of(k), i)
hf_items = sorted(sd.items(),
                  key=lambda kv: (first_seen[block_of(kv[0])], "downsample" not in kv[0]))
hf = {to_hf(k): v for k, v in hf_items}
torch.save(hf, path("hf_resnet18.pth"))
save_safetensors(path("hf_resnet18.safetensors"), hf)

# ---- wrapped state dicts, parameters ------------------------------------------------------------
small = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
small_sd = small.state_dict(keep_vars=True)  # nn.Parameter objects: _rebuild_parameter
torch.save({"model": small_sd, "epoch": 3, "optimizer": {"lr": 0.1, "betas": (0.9, 0.99)}},
           path("wrapped_model.pth"))
torch.save({"state_dict": small_sd, "note": "x"}, path("wrapped_state_dict.pth"))
save_expected("small", small.state_dict())
torch.save(small.state_dict(), path("legacy.pth"), _use_new_zipfile_serialization=False)
# A model saved from DataParallel ("module." names), one tensor with a NaN and an infinity.
dp = {"module." + k: v.detach().clone() for k, v in small.state_dict().items()}
dp["module.0.weight"][0, 0] = float("nan")
dp["module.0.weight"][1, 2] = float("inf")
torch.save(dp, path("dataparallel_nan.pth"))

# ---- views and dtypes ---------------------------------------------------------------------------
base = torch.randn(6, 8)
views = {
    "transposed": base.t(),
    "strided_slice": base[1:, ::3],
    "offset_rows": base[2:4],
    "broadcast": torch.arange(3.0).expand(4, 3),
    "permuted": torch.randn(2, 3, 4).permute(2, 0, 1),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
}
assert not views["transposed"].is_contiguous() and views["offset_rows"].storage_offset() == 16
torch.save(views, path("views.pth"))
save_expected("views", views)

dtypes = {
    "f16": (torch.randn(5, 7) * 100).half(),
    "f16_transposed": torch.randn(4, 3).half().t(),
    "bf16": (torch.randn(3, 4) * 1e3).bfloat16(),
    "f64": torch.randn(4, dtype=torch.float64),
    "i64": torch.arange(-3, 5),
    "i32": torch.arange(-2, 4, dtype=torch.int32),
    "u8": torch.arange(250, 256, dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
}
# float16 edge values: subnormals, the largest finite value, infinities.
dtypes["f16"][0, :5] = torch.tensor([6e-8, -6.1e-5, 65504.0, float("inf"), float("-inf")]).half()
torch.save(dtypes, path("dtypes.pth"))
save_safetensors(path("dtypes.safetensors"), dtypes)
save_expected("dtypes", dtypes)

# ---- wrong names and shapes for --arch ----------------------------------------------------------
wrong = dict(sd)
wrong["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
wrong["extra.weight"] = torch.zeros(3)
del wrong["fc.bias"]
torch.save(wrong, path("wrong_shape.pth"))


# ---- hostile files: written, never loaded -------------------------------------------------------
class CallsSystem:
    def __reduce__(self):
        return (os.system, ("touch " + path("PWNED_system"),))


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch " + path("PWNED_eval") + "')",))


torch.save({"conv1.weight": torch.zeros(2), "payload": CallsSystem()}, path("hostile_system.pth"))
torch.save({"payload": CallsEval()}, path("hostile_eval_p4.pth"), pickle_protocol=4)

# ---- damaged archives ---------------------------------------------------------------------------
torch.save({"w": torch.arange(12.0).view(3, 4), "b": torch.ones(3)}, path("tiny.pth"))
tiny = bytearray(open(path("tiny.pth"), "rb").read())


def central_entries(data):
    """(offset of the central-directory record, name) for every entry."""
    end = data.rfind(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack_from("<HII", data, end + 10)
    pos, out = cd_offset, []
    for _ in range(count):
        nlen, elen, clen = struct.unpack_from("<HHH", data, pos + 28)
        out.append((pos, data[pos + 46:pos + 46 + nlen].decode()))
        pos += 46 + nlen + elen + clen
    return out


def patched(data, suffix, field, value):
    data = bytearray(data)
    for pos, name in central_entries(data):
        if name.endswith(suffix):
            struct.pack_into("<I", data, pos + field, value)
            return data
    raise SystemExit(f"no entry ending in {suffix}")


open(path("zip_offset_past_end.pth"), "wb").write(patched(tiny, "/data/0", 42, len(tiny) + 4096))
sized = patched(patched(tiny, "/data/0", 20, 0x7FFFFFF0), "/data/0", 24, 0x7FFFFFF0)
open(path("zip_size_past_end.pth"), "wb").write(sized)
# One flipped bit inside the first tensor's data: only the CRC-32 can notice.
for pos, name in central_entries(tiny):
    if name.endswith("/data/0"):
        local = struct.unpack_from("<I", tiny, pos + 42)[0]
        nlen, elen = struct.unpack_from("<HH", tiny, local + 26)
        corrupt = bytearray(tiny)
        corrupt[local + 30 + nlen + elen + 5] ^= 0x10
        open(path("zip_corrupt_data.pth"), "wb").write(corrupt)
full = open(path("resnet18.pth"), "rb").read()
open(path("truncated.pth"), "wb").write(full[: len(full) * 3 // 5])
st = open(path("resnet18.safetensors"), "rb").read()
open(path("truncated.safetensors"), "wb").write(st[: len(st) // 2])
noise = bytearray(np.random.RandomState(1).randint(0, 256, 4096, dtype=np.uint8).tobytes())
noise[0] = 0x42  # not a zip, HDF5, pickle or safetensors start
open(path("random.bin"), "wb").write(noise)

# ---- a file written by h5py, not by cudl: no attributes but a fixed-length string ----------------
import h5py  # noqa: E402

with h5py.File(path("h5py_written.h5"), "w") as f:
    f.create_dataset("lin/weight", data=np.arange(6, dtype=np.float64).reshape(2, 3) / 7)
    f.create_dataset("lin/bias", data=np.array([1.5, -2.0], dtype=np.float32))
    f.create_dataset("count", data=np.int32(7))
    f.attrs["class_names"] = np.array([b"can", b"carton"], dtype="S6")
    f.attrs["architecture"] = np.bytes_(b"tiny")

# ---- float16 rounding reference (numpy) ---------------------------------------------------------
rs = np.random.RandomState(2)
f32 = np.concatenate([
    rs.randn(2000).astype(np.float32) * np.float32(10.0) ** rs.randint(-9, 6, 2000),
    np.array([0.0, -0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e9, -1e9, 2.0**-24, 2.0**-25,
              1.5 * 2.0**-25, 2.0**-14, 2.0**-14 * (1 - 2.0**-11), 1 + 2.0**-11, 1 + 3 * 2.0**-11,
              np.inf, -np.inf], dtype=np.float32),
]).astype(np.float32)  # rounded from float32, as the C++ side does, not from float64
save_misc = saver("weights_float16")
save_misc("inputs", f32)
with np.errstate(over="ignore"):  # 1e9 -> inf is part of the test
    save_misc("half_bits", f32.astype(np.float16).view(np.uint16).astype(np.int64))

# ---- state-dict specs of the architectures, as PyTorch names them -------------------------------
class AdaptiveConcatPool2d(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, 1),
                          nn.functional.adaptive_avg_pool2d(x, 1)], 1)


class Notebook(nn.Module):
    """fastai's cnn_learner model, named as weights/README.md says: body.* and head.<index>.*"""

    def __init__(self, arch, classes):
        super().__init__()
        self.body = getattr(torchvision.models, arch)()
        self.body.avgpool, self.body.fc = nn.Identity(), nn.Identity()
        nf = 2 * (2048 if arch == "resnet50" else 512)
        self.head = nn.Sequential(AdaptiveConcatPool2d(), nn.Flatten(), nn.BatchNorm1d(nf),
                                  nn.Dropout(0.25), nn.Linear(nf, 512), nn.ReLU(),
                                  nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, classes))


lines = []
for arch in ("resnet18", "resnet34", "resnet50"):
    for classes in (1000, 4):
        m = getattr(torchvision.models, arch)(num_classes=classes)
        for k, v in m.state_dict().items():
            lines.append(f"{arch} {classes} {k} {v.dtype} {','.join(map(str, v.shape))}")
    m = Notebook(arch, 4)
    for k, v in m.state_dict().items():
        lines.append(f"fastai_{arch} 4 {k} {v.dtype} {','.join(map(str, v.shape))}")
with open(path("specs.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")

print("weights reference written to", OUT, file=sys.stderr)
