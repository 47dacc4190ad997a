#!/usr/bin/env bash
# Every convolution of ResNet-18, forward and backward, cudl (bench_conv: the default path and,
# for comparison, im2col + OpenBLAS alone) beside PyTorch (bench/conv_torch.py), same machine
# and thread count, alternating runs. Prints per-layer medians over the rounds and the totals
# weighted by how often each convolution occurs in the model.
# Usage: bench/conv.sh [BUILD_DIR] [THREADS] [ROUNDS] [OUT_JSONL]
#   defaults: build, 2, 3, BUILD_DIR/bench_conv.jsonl (every run's lines)
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${2:-2}
rounds=${3:-3}
out=${4:-$build/bench_conv.jsonl}
py=${CUDL_PYTHON:-/usr/bin/python3}
: > "$out"
for r in $(seq "$rounds"); do
  echo "round $r/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$build/bench/bench_conv" --threads "$threads" >> "$out"
  "$build/bench/bench_conv" --threads "$threads" --path im2col-parallel >> "$out"
  "$py" "$here/conv_torch.py" --threads "$threads" >> "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def name(r):
    return r["impl"] if r["impl"] != "cudl" else f"cudl {r['path']}"
impls = list(dict.fromkeys(name(r) for r in rows))
layers = list(dict.fromkeys(r["layer"] for r in rows))
med = {}
for i in impls:
    for l in layers:
        sel = [r for r in rows if name(r) == i and r["layer"] == l]
        med[i, l] = (statistics.median(r["fwd_s"] for r in sel),
                     statistics.median(r["bwd_s"] for r in sel), sel[0]["count"])
r0 = rows[0]
print(f"ResNet-18 convolutions, batch {r0['batch']} x {r0['size']}x{r0['size']}, "
      f"{r0['threads']} threads, medians of {len(rows) // (len(impls) * len(layers))} rounds (ms)")
print(f"{'layer':22s} {'n':>2s}" + "".join(f" {i[:22]:>22s}" for i in impls))
print(f"{'':25s}" + "".join(f" {'fwd':>10s} {'bwd':>11s}" for _ in impls))
tot = {i: [0.0, 0.0] for i in impls}
for l in layers:
    line = f"{l:22s} {med[impls[0], l][2]:2d}"
    for i in impls:
        f, b, n = med[i, l]
        line += f" {f * 1e3:10.1f} {b * 1e3:11.1f}"
        tot[i][0] += n * f
        tot[i][1] += n * b
    print(line)
print(f"{'total (x n)':25s}" + "".join(f" {tot[i][0]:9.3f}s {tot[i][1]:10.3f}s" for i in impls))
ref = impls[0]
for i in impls[1:]:
    print(f"{ref} / {i}: time ratio {(tot[i][0] + tot[i][1]) / (tot[ref][0] + tot[ref][1]):.3f} "
          f"(>1: {ref} faster)")
PY
