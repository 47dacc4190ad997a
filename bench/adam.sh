#!/usr/bin/env bash
# CPU AdamW step over ResNet-18's 11.7 M parameters: cudl beside PyTorch (torch.optim.AdamW,
# default and foreach implementations), same machine and thread count, alternating runs; and
# cudl's GB/s against the memory bandwidth (stream triad) bench_adam measures.
# Usage: bench/adam.sh BUILD_DIR [THREADS] [ROUNDS]   (writes BUILD_DIR/bench_adam.json)
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/adam.sh BUILD_DIR [THREADS] [ROUNDS]}
threads=${2:-$(nproc)}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
out="$build/bench_adam.json"
: > "$out"
for r in $(seq "$rounds"); do
  "$build/bench/bench_adam" --threads "$threads" | tee -a "$out"
  "$py" "$here/adam_torch.py" --threads "$threads" | tee -a "$out"
  "$py" "$here/adam_torch.py" --threads "$threads" --foreach | tee -a "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(impl_test, key):
    return statistics.median(r[key] for r in rows if impl_test(r["impl"]))
c = med(lambda i: i == "cudl", "median_s")
cg = med(lambda i: i == "cudl", "gbps")
triad = med(lambda i: i == "cudl", "triad_gbps")
t = med(lambda i: i.startswith("pytorch") and not i.endswith("foreach"), "median_s")
tf = med(lambda i: i.endswith("foreach"), "median_s")
n = rows[0]["params"]
print(f"AdamW step, {n} float32 params in {rows[0]['tensors']} tensors, {rows[0]['threads']} threads "
      f"(median of {len(rows) // 3} rounds):")
print(f"  cudl    {c * 1e3:7.2f} ms  {cg:6.2f} GB/s (28 B/param)  = {cg / triad:.2f} x triad {triad:.2f} GB/s")
print(f"  PyTorch {t * 1e3:7.2f} ms  {28 * n / t / 1e9:6.2f} GB/s  ratio PyTorch/cudl time {t / c:.2f}")
print(f"  PyTorch foreach {tf * 1e3:7.2f} ms  {28 * n / tf / 1e9:6.2f} GB/s  ratio {tf / c:.2f}")
PY
