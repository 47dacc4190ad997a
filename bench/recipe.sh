#!/usr/bin/env bash
# The whole notebook job, cudl's fridge_train beside an equivalent PyTorch script
# (bench/recipe_torch.py), on the same data, machine and thread count: 10 epochs over 128 images
# at 300x300, batch 16, validation each epoch; wall time from process start to model written.
#
# Usage: bench/recipe.sh BUILD_DIR RESULTS_DIR [DATA_DIR] [DEVICE] [THREADS]
#   DATA_DIR defaults to the built-in demo data (128 images of 333x250, written once into
#   RESULTS_DIR/data); DEVICE cpu (default) or cuda; THREADS defaults to 2. CUDL_TRAIN_FLAGS
#   in the environment adds options to fridge_train (e.g. --no-benchmark: cuDNN algorithms by
#   heuristics instead of timing them, as PyTorch's default); with --mixed-precision among
#   them the PyTorch script runs under torch.autocast(dtype=torch.bfloat16) too, with
#   --channels-last its model and batches are channels-last too. CUDL_TORCH_ALSO adds a second
#   PyTorch run with these options (e.g. --cudnn-benchmark), timed and reported beside the first.
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/recipe.sh BUILD_DIR RESULTS_DIR [DATA_DIR] [DEVICE] [THREADS]}
results=${2:?usage: bench/recipe.sh BUILD_DIR RESULTS_DIR [DATA_DIR] [DEVICE] [THREADS]}
data=${3:-}
device=${4:-cpu}
threads=${5:-2}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
mkdir -p "$results"
results=$(cd "$results" && pwd)  # absolute: the PyTorch script runs from bench/
if [ -z "$data" ]; then
  data="$results/data"
  if [ ! -f "$data/labels.csv" ]; then
    # One epoch of fridge_train writes the demo data; only the data is kept.
    "$build/tools/fridge_train" --out "$results/demo_gen" --demo-images 128 --demo-height 333 --epochs 1 --size 32 --bs 16 \
      --no-progress > /dev/null
    mv "$results/demo_gen/demo_data" "$data"
    rm -rf "$results/demo_gen"
  fi
fi
data=$(cd "$data" && pwd)
# Each run starts afresh (fridge_train refuses to overwrite an unfinished run's checkpoint).
rm -rf "$results/cudl_run" "$results/torch_run" "$results/torch_also_run"
now() { date +%s.%N; }
t0=$(now)
"$build/tools/fridge_train" --data "$data" --out "$results/cudl_run" --device "$device" \
  --threads "$threads" --workers "$threads" --no-progress ${CUDL_TRAIN_FLAGS:-} | tee "$results/recipe_cudl.log"
t1=$(now)
torch_precision=fp32
case " ${CUDL_TRAIN_FLAGS:-} " in *" --mixed-precision "*) torch_precision=bf16 ;; esac
torch_layout=()
case " ${CUDL_TRAIN_FLAGS:-} " in *" --channels-last "*) torch_layout=(--channels-last) ;; esac
# torch_run NAME [FLAGS...]: the PyTorch script into RESULTS_DIR/NAME_run, logged to
# RESULTS_DIR/recipe_NAME.log.
torch_run() {
  local name=$1
  shift
  (cd "$here" && "$py" recipe_torch.py --data "$data" --out "$results/${name}_run" \
    --device "$device" --threads "$threads" --workers "$threads" --precision "$torch_precision" \
    ${torch_layout[@]+"${torch_layout[@]}"} "$@") | tee "$results/recipe_$name.log"
}
torch_run torch
t2=$(now)
# report [FROM TO FLAGS]: writes recipe.json and prints the line; with FLAGS, also the second
# PyTorch run (those flags) that ran from FROM to TO. Called after the first PyTorch run
# already, so that a time limit during the second keeps the first comparison.
report() {
  "$py" - "$results" "$t0" "$t1" "$t2" "${1:-0}" "${2:-0}" "$device" "$threads" "${3:-}" <<'PY'
import json, os, sys, platform, subprocess
results, (t0, t1, t2, a0, a1), device, threads, also = (sys.argv[1], map(float, sys.argv[2:7]),
                                                       *sys.argv[7:10])
c, t = t1 - t0, t2 - t1
try:  # a machine without git still gets its recipe.json
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = "unknown"
row = {"benchmark": "recipe", "device": device, "threads": int(threads),
       "cudl_flags": os.environ.get("CUDL_TRAIN_FLAGS", ""), "cudl_wall_s": c,
       "pytorch_wall_s": t, "speedup": t / c, "commit": commit, "machine": platform.processor() or platform.machine()}
line = f"recipe ({device}, {threads} threads): cudl {c:.1f} s, PyTorch {t:.1f} s, cudl is {t / c:.2f}x faster"
if also:
    row.update({"pytorch_also_flags": also, "pytorch_also_wall_s": a1 - a0, "speedup_also": (a1 - a0) / c})
    line += f"; PyTorch {also} {a1 - a0:.1f} s, cudl is {(a1 - a0) / c:.2f}x faster"
json.dump(row, open(f"{results}/recipe.json", "w"), indent=2)
print(line)
PY
}
if [ -z "${CUDL_TORCH_ALSO:-}" ]; then
  report
else
  report > /dev/null
  t2b=$(now)
  # shellcheck disable=SC2086
  torch_run torch_also $CUDL_TORCH_ALSO
  t3=$(now)
  report "$t2b" "$t3" "$CUDL_TORCH_ALSO"
fi
