#!/usr/bin/env bash
# Where a training step spends its time, cudl beside PyTorch on the same machine: cudl's
# profiler (tensor/profiler.h: leaf modules' forwards, backward nodes, optimiser step) and
# torch.profiler (self time per aten op), each over N eager steps of the notebook's ResNet-18
# after one untimed step. On CUDA both tables are GPU time.
#
# Usage: bench/profile.sh [--build DIR] [--device cpu|cuda] [--shape BxS] [--threads N]
#                         [--steps N] RESULTS_DIR
# Writes RESULTS_DIR/profile_cudl.txt, RESULTS_DIR/profile_torch.txt and the two JSON lines in
# RESULTS_DIR/profile.jsonl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" device=cpu shape=16x300 threads=2 steps=2 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --device) device=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
batch=${shape%x*} size=${shape#*x}
py=${CUDL_PYTHON:-/usr/bin/python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
args=(--batch "$batch" --size "$size" --device "$device" --threads "$threads" --warmup 1 --steps 1
      --profile "$steps")
head="# $shape, $device, $threads threads, $steps profiled steps, commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- . ':!bench/results' 2>/dev/null || echo ' (with local changes)'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
{ echo "$head"; "$build/bench/bench_train_step" "${args[@]}" --cuda-graph 0 2>&1 >"$out/.cudl.json"; } > "$out/profile_cudl.txt"
{ echo "$head"; (cd "$here" && "$py" train_step_torch.py "${args[@]}" 2>&1 >"$out/.torch.json"); } > "$out/profile_torch.txt"
cat "$out/.cudl.json" "$out/.torch.json" > "$out/profile.jsonl"
rm -f "$out/.cudl.json" "$out/.torch.json"
echo "profile.sh: $out/profile_cudl.txt, $out/profile_torch.txt"
