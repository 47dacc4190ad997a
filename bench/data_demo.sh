#!/usr/bin/env bash
# Demo data: writes it with bench_data_demo and checks that a small CNN trained from scratch in
# PyTorch learns it (valid hamming >= 0.9) within about a minute on two CPU cores at 64 px.
# Usage: bench/data_demo.sh BUILD_DIR [IMAGES] [SIZE] [SECONDS] [SEED]
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
set -euo pipefail
build=${1:?usage: bench/data_demo.sh BUILD_DIR [IMAGES] [SIZE] [SECONDS] [SEED]}
images=${2:-128}
size=${3:-64}
seconds=${4:-60}
seed=${5:-0}
here=$(cd "$(dirname "$0")" && pwd)
py=${CUDL_PYTHON:-/usr/bin/python3}
dir="$build/bench_data_demo_$seed"
rm -rf "$dir"
"$build/bench/bench_data_demo" --out "$dir" --images "$images" --seed "$seed"
"$py" "$here/data_demo_torch.py" "$dir" --size "$size" --seconds "$seconds" --threads 2 | tail -n 4
