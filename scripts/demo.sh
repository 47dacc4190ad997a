#!/usr/bin/env bash
# Sets up, builds and runs the demo. Extra arguments go to the demo program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
"${BUILD_DIR:-build}/tools/cudl_demo" "$@"
