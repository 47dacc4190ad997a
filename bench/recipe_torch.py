"""The notebook's whole job in plain PyTorch, as the twin of `fridge_train` for bench/recipe.sh:
read DATA/labels.csv + DATA/images, split 20% with NumPy seed 10, resize the shorter side to
SIZE (bilinear, corner-aligned) and centre-crop, ImageNet-normalise, train the notebook model
(ResNet body + fastai head, BCE-with-logits, decoupled AdamW lr 1e-4 wd 1e-2 betas (0.9, 0.99))
for EPOCHS epochs at batch 16 with validation each epoch, then save the weights."""
import argparse
import csv
import os
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from torch_model import adamw_decoupled, notebook_model  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--out", required=True)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--size", type=int, default=300)
p.add_argument("--bs", type=int, default=16)
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--device", default="cpu")
p.add_argument("--weights", help="torchvision state dict (.pth) for the body")
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
               help="bf16: forward and loss under torch.autocast(dtype=torch.bfloat16)")
p.add_argument("--channels-last", action="store_true",
               help="model.to(memory_format=torch.channels_last), channels-last batches")
p.add_argument("--cudnn-benchmark", action="store_true",
               help="torch.backends.cudnn.benchmark = True (as fastai sets it): cuDNN's "
                    "algorithms timed once per shape instead of picked by heuristics")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
dev = torch.device(a.device)
torch.backends.cudnn.benchmark = a.cudnn_benchmark

rows = list(csv.DictReader(open(os.path.join(a.data, "labels.csv"), newline="", encoding="utf-8-sig")))
files = [r["filename"] for r in rows]
labels = [r["labels"].split(" ") for r in rows]
classes = sorted({c for ls in labels for c in ls})
targets = np.zeros((len(rows), len(classes)), np.float32)
for i, ls in enumerate(labels):
    for c in ls:
        targets[i, classes.index(c)] = 1
np.random.seed(10)
perm = np.random.permutation(len(rows))
cut = int(0.2 * len(rows))
valid_idx, train_idx = list(perm[:cut]), sorted(perm[cut:])
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class Fridge(torch.utils.data.Dataset):
    def __init__(self, idx):
        self.idx = idx

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, i):
        j = self.idx[i]
        im = Image.open(os.path.join(a.data, "images", files[j])).convert("RGB")
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
        h, w = x.shape[1:]
        r = min(h / a.size, w / a.size)
        nh, nw = round(h / r), round(w / r)
        x = torch.nn.functional.interpolate(x[None], size=(nh, nw), mode="bilinear",
                                            align_corners=True)[0]
        top, left = int((nh - a.size + 1) * 0.5), int((nw - a.size + 1) * 0.5)
        x = x[:, top:top + a.size, left:left + a.size]
        return (x - mean) / std, torch.from_numpy(targets[j])


train_dl = torch.utils.data.DataLoader(Fridge(train_idx), batch_size=a.bs, shuffle=True,
                                       drop_last=True, num_workers=a.workers)
valid_dl = torch.utils.data.DataLoader(Fridge(valid_idx), batch_size=a.bs, shuffle=False,
                                       num_workers=a.workers)
model = notebook_model(len(classes)).to(dev)
if a.weights:
    sd = torch.load(a.weights, map_location="cpu")
    model[0].load_state_dict({k: v for k, v in sd.items() if not k.startswith("fc.")}, strict=False)
if a.channels_last:
    model = model.to(memory_format=torch.channels_last)
opt = adamw_decoupled(model.parameters(), lr=a.lr)
mf = torch.channels_last if a.channels_last else torch.contiguous_format
loss_fn = torch.nn.BCEWithLogitsLoss()
amp = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    model.train()
    for x, y in train_dl:
        x, y = x.to(dev).contiguous(memory_format=mf), y.to(dev)
        opt.zero_grad()
        with amp:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    vl, n, ham, zo = 0.0, 0, 0.0, 0.0
    with torch.no_grad():
        for x, y in valid_dl:
            x, y = x.to(dev).contiguous(memory_format=mf), y.to(dev)
            with amp:
                out = model(x).float()
            vl += loss_fn(out, y).item() * len(x)
            pred = (torch.sigmoid(out) > 0.5).float()
            ham += (pred == y).float().mean(1).sum().item()
            zo += (pred == y).all(1).float().sum().item()
            n += len(x)
    print(f"epoch {epoch + 1} train_loss {loss.item():.4f} valid_loss {vl / n:.4f} "
          f"hamming {ham / n:.4f} zero_one {zo / n:.4f} time {time.perf_counter() - t0:.1f}s",
          flush=True)
os.makedirs(a.out, exist_ok=True)
torch.save(model.state_dict(), os.path.join(a.out, "model.pth"))
print(f"total {time.perf_counter() - START:.1f}s (from interpreter start to model written)")
