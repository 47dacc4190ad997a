"""PyTorch twin of bench_matmul: float32 n x n x n matmul, median of reps, one JSON line."""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=1024)
p.add_argument("--threads", type=int, default=torch.get_num_threads())
p.add_argument("--reps", type=int, default=15)
p.add_argument("--device", default="cpu")
a = p.parse_args()
torch.set_num_threads(a.threads)
dev = torch.device(a.device)
x = torch.rand(a.n, a.n, device=dev)
y = torch.rand(a.n, a.n, device=dev)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


for _ in range(3):
    torch.matmul(x, y)
sync()
times = []
for _ in range(a.reps):
    t = time.perf_counter()
    torch.matmul(x, y)
    sync()
    times.append(time.perf_counter() - t)
s = sorted(times)[len(times) // 2]
print(json.dumps({"impl": "pytorch " + torch.__version__, "device": str(dev), "n": a.n,
                  "threads": a.threads, "reps": a.reps, "median_s": s,
                  "gflops": 2 * a.n ** 3 / s / 1e9}))
