#!/usr/bin/env bash
# Float32 matmul on the GPU (n = 4096), cudl beside PyTorch, alternating runs.
# Usage: bench/matmul_gpu.sh BUILD_DIR [ROUNDS]
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/matmul_gpu.sh BUILD_DIR [ROUNDS]}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
out="$build/bench_matmul_gpu.json"
: > "$out"
for r in $(seq "$rounds"); do
  "$build/bench/bench_matmul" --device cuda --n 4096 --reps 30 | tee -a "$out"
  # PyTorch's default for fp32 matmul on CUDA is full fp32 (allow_tf32 = False), like cudl's.
  "$py" "$here/matmul_torch.py" --device cuda --n 4096 --reps 30 | tee -a "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
c = statistics.median(r["gflops"] for r in rows if r["impl"] == "cudl")
t = statistics.median(r["gflops"] for r in rows if r["impl"] != "cudl")
print(f"matmul 4096^3 float32 on GPU: cudl {c:.0f} GFLOP/s, PyTorch {t:.0f} GFLOP/s, "
      f"ratio {c / t:.2f}")
PY
