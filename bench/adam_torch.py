"""PyTorch twin of bench_adam: torch.optim.AdamW (or Adam) step over ResNet-18's 11,689,512
float32 parameters in its 62 tensors (or one flat tensor), with the same hyperparameters, the
same gradients' magnitude and the same thread count; median of reps; one JSON line with
GB/s counted the same way (7 x 4 bytes per parameter: read p, g, m, v, write p, m, v; torch's
update makes several passes, so its real traffic is higher than counted)."""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=torch.get_num_threads())
p.add_argument("--reps", type=int, default=20)
p.add_argument("--optimizer", choices=["adamw", "adam"], default="adamw")
p.add_argument("--layout", choices=["resnet18", "flat"], default="resnet18")
p.add_argument("--foreach", action="store_true", help="torch's multi-tensor implementation")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)


def resnet18_shapes():
    s = [(64, 3, 7, 7), (64,), (64,)]

    def block(cin, cout, down):
        s.extend([(cout, cin, 3, 3), (cout,), (cout,), (cout, cout, 3, 3), (cout,), (cout,)])
        if down:
            s.extend([(cout, cin, 1, 1), (cout,), (cout,)])

    cin = 64
    for cout in (64, 128, 256, 512):
        block(cin, cout, cout != cin)
        block(cout, cout, False)
        cin = cout
    s.extend([(1000, 512), (1000,)])
    return s


shapes = resnet18_shapes()
total = sum(torch.Size(s).numel() for s in shapes)
assert total == 11689512, total
if a.layout == "flat":
    shapes = [(total,)]
params = []
for s in shapes:
    t = torch.randn(*s, requires_grad=True)
    t.grad = torch.randn(*s) * 1e-2
    params.append(t)
if a.optimizer == "adamw":
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01,
                            foreach=a.foreach)
else:
    opt = torch.optim.Adam(params, lr=1e-4, foreach=a.foreach)
for _ in range(3):
    opt.step()
times = []
for _ in range(a.reps):
    t = time.perf_counter()
    opt.step()
    times.append(time.perf_counter() - t)
s = sorted(times)[len(times) // 2]
print(json.dumps({"impl": "pytorch " + torch.__version__ + (" foreach" if a.foreach else ""),
                  "optimizer": a.optimizer, "layout": a.layout, "tensors": len(shapes),
                  "params": total, "threads": a.threads, "reps": a.reps, "median_s": s,
                  "gbps": 7 * 4 * total / s / 1e9}))
