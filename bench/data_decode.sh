#!/usr/bin/env bash
# Image pipeline throughput: cudl (bench_data_decode) beside PIL + torchvision
# (bench/data_decode_torch.py) on the same 499x666 JPEGs -> 300x300 normalised tensors, one
# thread and all threads, alternating rounds; prints the medians and the ratios of the wall-clock
# throughput and of the CPU time per image (the latter is what to trust on a busy machine).
# Usage: bench/data_decode.sh BUILD_DIR [THREADS] [ROUNDS] [SECONDS]
#   (writes BUILD_DIR/bench_data_decode.json and the JPEGs to BUILD_DIR/bench_data_decode_jpegs)
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/data_decode.sh BUILD_DIR [THREADS] [ROUNDS] [SECONDS]}
threads=${2:-$(nproc)}
rounds=${3:-3}
seconds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
jpegs="$build/bench_data_decode_jpegs"
out="$build/bench_data_decode.json"
mkdir -p "$jpegs"
: > "$out"
for r in $(seq "$rounds"); do
  "$build/bench/bench_data_decode" --threads "$threads" --seconds "$seconds" --out "$jpegs" | tee -a "$out"
  "$py" "$here/data_decode_torch.py" "$jpegs" --threads "$threads" --seconds "$seconds" | tee -a "$out"
done
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(key, cudl, t):
    return statistics.median(r[key] for r in rows if (r["impl"] == "cudl") == cudl and r["threads"] == t)
for t in sorted({r["threads"] for r in rows}):
    c, p = med("images_per_s", True, t), med("images_per_s", False, t)
    cc, pc = med("cpu_ms_per_image", True, t), med("cpu_ms_per_image", False, t)
    print(f"decode+resize+crop+normalise 499x666 JPEG -> 300x300, {t} thread{'s' if t > 1 else ''}: "
          f"cudl {c:.1f} images/s, PIL+torchvision {p:.1f} images/s, ratio {c / p:.2f}; "
          f"CPU per image {cc:.2f} ms vs {pc:.2f} ms, ratio {pc / cc:.2f}")
PY
