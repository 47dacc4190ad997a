"""PyTorch twin of bench_conv: every convolution of ResNet-18, forward and backward, timed one
by one (torch.nn.functional.conv2d; on the CPU PyTorch 1.13 runs them on oneDNN). Prints one
JSON line per layer."""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=16)
p.add_argument("--size", type=int, default=300)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=3)
p.add_argument("--device", default="cpu")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
dev = torch.device(a.device)


def out(n, k, s, pad):
    return (n + 2 * pad - k) // s + 1


s1 = out(out(a.size, 7, 2, 3), 3, 2, 1)
s2 = out(s1, 3, 2, 1)
s3 = out(s2, 3, 2, 1)
layers = [("conv1", 1, 3, 64, 7, 2, a.size), ("layer1.conv", 4, 64, 64, 3, 1, s1),
          ("layer2.0.conv1", 1, 64, 128, 3, 2, s1), ("layer2.conv", 3, 128, 128, 3, 1, s2),
          ("layer2.0.downsample", 1, 64, 128, 1, 2, s1), ("layer3.0.conv1", 1, 128, 256, 3, 2, s2),
          ("layer3.conv", 3, 256, 256, 3, 1, s3), ("layer3.0.downsample", 1, 128, 256, 1, 2, s2),
          ("layer4.0.conv1", 1, 256, 512, 3, 2, s3),
          ("layer4.conv", 3, 512, 512, 3, 1, out(s3, 3, 2, 1)),
          ("layer4.0.downsample", 1, 256, 512, 1, 2, s3)]


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


for name, count, cin, cout, k, stride, size in layers:
    x = torch.randn(a.batch, cin, size, size, device=dev, requires_grad=name != "conv1")
    w = (torch.randn(cout, cin, k, k, device=dev) * 0.05).requires_grad_()
    fwd, bwd = [], []
    for r in range(a.reps + 1):  # the first run is a warm-up
        with torch.no_grad():
            sync()
            t = time.perf_counter()
            y = torch.nn.functional.conv2d(x, w, None, stride, k // 2)
            sync()
            fwd.append(time.perf_counter() - t)
        x.grad = None
        w.grad = None
        y = torch.nn.functional.conv2d(x, w, None, stride, k // 2)
        dy = torch.randn_like(y) if r == 0 else dy
        sync()
        t = time.perf_counter()
        y.backward(dy)
        sync()
        bwd.append(time.perf_counter() - t)
    med = lambda v: sorted(v[1:])[len(v[1:]) // 2]
    print(json.dumps({"impl": "pytorch " + torch.__version__, "layer": name, "count": count,
                      "batch": a.batch, "size": a.size, "threads": a.threads, "fwd_s": med(fwd),
                      "bwd_s": med(bwd), "gflop": 2 * y.numel() * cin * k * k / 1e9,
                      "out_shape": list(y.shape)}))
