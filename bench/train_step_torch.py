"""PyTorch twin of bench_train_step: one training step (forward, BCE-with-logits, backward,
AdamW) of the notebook's ResNet-18, timed as images/s. Prints one JSON line: the median step,
every timed step, the CPU time (user + system) per timed step, and the peak memory (CUDA:
max_memory_reserved, with max_memory_allocated beside it; CPU: the process's max RSS)."""
import argparse
import json
import resource
import time

import torch

from torch_model import adamw_decoupled, notebook_model

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=16)
p.add_argument("--size", type=int, default=300)
p.add_argument("--device", default="cpu")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--graphs", action="store_true", help="capture the step in a CUDA graph")
p.add_argument("--channels-last", action="store_true",
               help="model.to(memory_format=torch.channels_last) and channels-last input")
p.add_argument("--cudnn-benchmark", action="store_true",
               help="torch.backends.cudnn.benchmark = True: cuDNN's algorithms timed once per "
                    "shape, as fastai sets it (PyTorch's default picks them by heuristics)")
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--profile", type=int, default=0,
               help="N more eager steps under torch.profiler; the table goes to stderr")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
dev = torch.device(a.device)
torch.backends.cudnn.benchmark = a.cudnn_benchmark
model = notebook_model().to(dev).train()
# A step captured in a CUDA graph needs AdamW's capturable form (its step counts on the device;
# PyTorch refuses to capture the other), built before the warm-up steps create its state.
opt = adamw_decoupled(model.parameters(), **({"capturable": True} if a.graphs else {}))
loss_fn = torch.nn.BCEWithLogitsLoss()
x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
if a.channels_last:
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
y = (torch.rand(a.batch, 4, device=dev) > 0.5).float()
# No autocast weight cache under graph capture (PyTorch's advice for CUDA graphs).
amp = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16",
                     cache_enabled=not a.graphs)


def step():
    opt.zero_grad(set_to_none=False)
    with amp:
        loss = loss_fn(model(x).float(), y)
    loss.backward()
    opt.step()
    return loss


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


run = step
if a.graphs:
    assert dev.type == "cuda", "CUDA graphs need a CUDA device"
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)
    with torch.cuda.graph(g):
        static_loss = step()
    run = g.replay

for _ in range(a.warmup):
    run()
sync()
if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
times = []
ru0 = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(a.steps):
    t = time.perf_counter()
    run()
    sync()
    times.append(time.perf_counter() - t)
ru1 = resource.getrusage(resource.RUSAGE_SELF)
cpu_per_step = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / a.steps
med = sorted(times)[len(times) // 2]
# CUDA: the caching allocator's peak reservation (what the process holds on the device, a
# graph's private pool included), and the peak of live tensor bytes beside it.
profile = []
if a.profile > 0:
    import sys
    from torch.profiler import ProfilerActivity, profile as torch_profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    step()  # eager, untimed
    sync()
    with torch_profile(activities=acts) as prof:
        for _ in range(a.profile):
            step()
        sync()
    ka = prof.key_averages()
    def self_us(e):  # device time on CUDA, CPU time on the CPU
        if dev.type == "cuda":
            return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0))
        return e.self_cpu_time_total
    key = ("self_device_time_total" if dev.type == "cuda" and hasattr(ka[0], "self_device_time_total")
           else "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total")
    print(ka.table(sort_by=key, row_limit=30), file=sys.stderr)
    for e in sorted(ka, key=self_us, reverse=True)[:40]:
        profile.append({"name": e.key, "calls_per_step": e.count / a.profile,
                        "ms_per_step": self_us(e) / 1e3 / a.profile})
peak = (torch.cuda.max_memory_reserved() if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
extra = {"peak_allocated_bytes": torch.cuda.max_memory_allocated()} if dev.type == "cuda" else {}
print(json.dumps({"impl": "pytorch " + torch.__version__ + (" graphs" if a.graphs else " eager")
                  + (" bf16" if a.precision == "bf16" else "")
                  + (" channels_last" if a.channels_last else "")
                  + (" cudnn.benchmark" if a.cudnn_benchmark else ""),
                  "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                  "batch": a.batch, "size": a.size, "precision": a.precision,
                  "memory_format": "channels_last" if a.channels_last else "contiguous",
                  "cudnn_benchmark": a.cudnn_benchmark,
                  "threads": a.threads, "steps": a.steps, "median_step_s": med,
                  "step_s": times, "cpu_s_per_step": cpu_per_step,
                  "images_per_s": a.batch / med, "peak_bytes": peak,
                  "peak_kind": "device reserved" if dev.type == "cuda" else "process max RSS",
                  **extra, **({"profile": profile, "profile_steps": a.profile} if profile else {})}))
