#!/usr/bin/env bash
# Float32 1024^3 matmul, cudl beside PyTorch, same machine and thread count, alternating runs.
# Usage: bench/matmul.sh BUILD_DIR [THREADS] [ROUNDS]   (writes BUILD_DIR/bench_matmul.json)
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/matmul.sh BUILD_DIR [THREADS] [ROUNDS]}
threads=${2:-$(nproc)}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
out="$build/bench_matmul.json"
: > "$out"
for r in $(seq "$rounds"); do
  "$build/bench/bench_matmul" --threads "$threads" | tee -a "$out"
  "$py" "$here/matmul_torch.py" --threads "$threads" | tee -a "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
c = statistics.median(r["gflops"] for r in rows if r["impl"] == "cudl")
t = statistics.median(r["gflops"] for r in rows if r["impl"] != "cudl")
print(f"matmul 1024^3 float32, {rows[0]['threads']} threads: cudl {c:.1f} GFLOP/s, "
      f"PyTorch {t:.1f} GFLOP/s, ratio cudl/PyTorch {c / t:.2f} (median of {len(rows)//2} rounds)")
PY
