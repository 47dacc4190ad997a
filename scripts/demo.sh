#!/usr/bin/env bash
# Sets up, builds and runs fridge_train on its built-in demo data (output in demo_out/).
# Extra arguments go to fridge_train, e.g. scripts/demo.sh --device cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
"${BUILD_DIR:-build}/tools/fridge_train" --out demo_out "$@"
