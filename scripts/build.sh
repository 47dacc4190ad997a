#!/usr/bin/env bash
# Configures and builds cudl in BUILD_DIR (default: build). Extra arguments go to CMake,
# e.g. scripts/build.sh -DCUDL_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$(nproc)"
