"""PIL + torchvision twin of bench_data_decode: decode + Resize(300) + CenterCrop(300) + ToTensor +
Normalize(ImageNet) of the same JPEGs (written by bench_data_decode --out DIR), from memory, one
thread (torch.set_num_threads(1)) and a process pool over all cores. One JSON line per thread
count: {"impl": "pil+torchvision ...", "threads": ..., "images_per_s": ..., "cpu_ms_per_image": ...}
(wall-clock throughput, and CPU time of the working threads per image)."""
import argparse
import glob
import io
import json
import multiprocessing as mp
import os
import time

import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

TF = T.Compose([T.Resize(300), T.CenterCrop(300), T.ToTensor(),
                T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
JPEGS = []


def one(data):
    return TF(Image.open(io.BytesIO(data)).convert("RGB"))


def init(paths):
    torch.set_num_threads(1)
    JPEGS.extend(open(p, "rb").read() for p in paths)


def work(args):
    """Processes `count` images; returns (count, CPU seconds of this worker thread)."""
    start, count = args
    c0 = time.thread_time()
    for i in range(start, start + count):
        one(JPEGS[i % len(JPEGS)])
    return count, time.thread_time() - c0


def timed_single(seconds):
    for i in range(8):
        one(JPEGS[i % len(JPEGS)])
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < seconds:
        one(JPEGS[n % len(JPEGS)])
        n += 1
    return n / (time.perf_counter() - t0), 1e3 * (time.thread_time() - c0) / n


def timed_pool(paths, procs, seconds, per_task=8):
    with mp.get_context("fork").Pool(procs, initializer=init, initargs=(paths,)) as pool:
        pool.map(work, [(i * per_task, per_task) for i in range(procs)])  # warm up every worker
        n, cpu, t0, k = 0, 0.0, time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            tasks = [((k + i) * per_task, per_task) for i in range(procs * 2)]
            for count, c in pool.map(work, tasks):
                n += count
                cpu += c
            k += len(tasks)
        return n / (time.perf_counter() - t0), 1e3 * cpu / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    paths = sorted(glob.glob(os.path.join(a.dir, "*.jpg")))
    if not paths:
        raise SystemExit(f"no JPEGs in {a.dir} (run bench_data_decode --out {a.dir} first)")
    init(paths)
    impl = f"pil {PIL.__version__} + torchvision {torchvision.__version__}"
    for threads in sorted({1, a.threads}):
        ips, cpu = timed_single(a.seconds) if threads == 1 else timed_pool(paths, threads, a.seconds)
        print(json.dumps({"impl": impl, "threads": threads, "images": len(paths),
                          "size": "499x666 -> 300x300", "images_per_s": ips,
                          "cpu_ms_per_image": cpu}), flush=True)


if __name__ == "__main__":
    main()
