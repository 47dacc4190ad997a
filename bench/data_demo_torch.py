"""Learnability check of the demo data (bench_data_demo --out DIR): a small CNN trained from
scratch in PyTorch on DIR, with RECIPE.md's split (np.random.seed(10), 20% validation), resize
(shorter side -> SIZE, centre crop) and ImageNet normalisation, batch 16, Adam, random flips.
Prints one JSON line per epoch (valid hamming and zero-one accuracy at threshold 0.5, elapsed
seconds) and a summary line with the time at which valid hamming first reached 0.9.
Usage: data_demo_torch.py DIR [--size 64] [--seconds 60] [--threads 2]"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image


def load(path, size):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    r = min(h / size, w / size)
    nh, nw = round(h / r), round(w / r)
    im = im.resize((nw, nh), Image.BILINEAR)
    top, left = int((nh - size + 1) * 0.5), int((nw - size + 1) * 0.5)
    a = np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255
    a = (a - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    return a.transpose(2, 0, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = [line.split(",") for line in open(f"{a.dir}/labels.csv").read().splitlines()[1:]]
    classes = sorted({l for _, labels in rows for l in labels.split()})
    x = torch.tensor(np.stack([load(f"{a.dir}/images/{f}", a.size) for f, _ in rows]), dtype=torch.float32)
    y = torch.tensor([[c in labels.split() for c in classes] for _, labels in rows], dtype=torch.float32)
    n = len(rows)
    np.random.seed(10)
    perm = np.random.permutation(n)
    cut = int(0.2 * n)
    valid, train = perm[:cut], np.sort(perm[cut:])

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.MaxPool2d(2))

    model = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 64),
                          nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, len(classes)))
    opt = torch.optim.Adam(model.parameters(), 2e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    start, epoch, reached = time.time(), 0, None
    rng = np.random.RandomState(0)
    while time.time() - start < a.seconds:
        model.train()
        order = rng.permutation(train)
        for b in range(0, len(order) - 15, 16):  # drop_last
            idx = order[b:b + 16]
            xb = x[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            opt.zero_grad()
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = torch.sigmoid(model(x[valid])) > 0.5
        truth = y[valid].bool()
        epoch += 1
        hamming = (pred == truth).float().mean().item()
        elapsed = time.time() - start
        if reached is None and hamming >= 0.9:
            reached = elapsed
        print(json.dumps({"epoch": epoch, "seconds": round(elapsed, 1), "train_loss": loss.item(),
                          "valid_hamming": hamming,
                          "valid_zero_one": (pred == truth).all(1).float().mean().item()}), flush=True)
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "images": n, "size": a.size,
                      "threads": a.threads, "epochs": epoch, "seconds_to_hamming_0.9": reached}))


if __name__ == "__main__":
    main()
