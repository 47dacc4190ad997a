#!/usr/bin/env bash
# GPU check: builds cudl with CUDA, runs every test with CUDL_REQUIRE_CUDA=1 (a CUDA test that
# would skip fails instead), runs the GPU benchmarks, and writes everything to a results folder.
#
# Usage: scripts/gpu_check.sh [RESULTS_DIR]
#   RESULTS_DIR (relative to the folder the script is called from) defaults to
#   bench/results/gpu-<date> in the repository. Environment:
#   BUILD_DIR      build folder in the repository (default build-gpu); reused when it already
#                  holds a CUDA build
#   CUDL_PYTHON    Python with torch for the reference data (default: /usr/bin/python3 when it
#                  imports torch, else python3)
#   CMAKE_ARGS     extra configure arguments (default CUDA architecture: the GPU's own)
#   GPU_DEPS       an archive from scripts/gpu_deps.sh (default build-deps/gpu-deps.tar.xz when
#                  it exists): the headers and libraries of the Debian -dev packages, for a GPU
#                  machine without them; unpacked next to the build folder and used from there
#                  (oneDNN included: the CPU side is the configuration CI tests)
#   STAGES         what to run after the build, comma-separated (default tests,bench):
#                  (results go to RESULTS_DIR as they finish: give a folder that survives a
#                  time limit, e.g. the one a remote run sends back)
#                  tests  every test with CUDL_REQUIRE_CUDA=1; when CUDA tests fail, up to three
#                         of them again under compute-sanitizer's memcheck, where the machine
#                         has it (scripts/ctest_run.py), after the benchmarks
#                  bench  matmul, train_step at 16x300 and 256x224 in float32 and in bf16
#                         mixed precision, and in bf16 channels-last (cudl with a CUDA graph
#                         and eager, PyTorch eager and with a CUDA graph; in float32 PyTorch
#                         also with cudnn.benchmark), per-op GPU profiles of both
#                         (bench/profile.sh), the recipe job (float32, with a second PyTorch
#                         run in cudnn.benchmark mode; bf16; bf16 channels-last; cudl with
#                         --no-benchmark), and an allocation trace of an eager step at 256x224
#                         replayed by bench/alloc_replay.py
#   ROUNDS         alternating rounds of the train_step benchmark (default 1: the bench stage
#                  then takes some minutes; each round adds about as much again)
#   BUDGET         seconds this script may take in all (default 540, to end with its summary
#                  within a 600 s command): a step that would start with less than 20 s left is
#                  skipped and said; every step's own limit is cut to what is left
#   ARCHIVE        a .tar.gz file that holds RESULTS_DIR as it stands, written again after the
#                  build and after every step: one small file to copy off the machine, even when
#                  the script is stopped. Left out of it: the recipe's images, its model and
#                  checkpoint files (*.h5, *.pth) and its HTML reports (about 200 MB a recipe);
#                  the summaries, logs, tables, JSON, profiles and metrics of every step stay.
# Each step runs under a time limit (a test 240 s unless it sets its own, all tests 420 s, a
# train_step table 200 s a round, a recipe pair, a profile, the matmul table, the allocation
# trace, a memcheck run 120 s each): a hung run is stopped, said in summary.txt, and the next one
# starts.
# Exit status: 0 only when a GPU was found, every test passed and none was skipped.
set -uo pipefail
start=$SECONDS
budget=${BUDGET:-540}
# RESULTS_DIR and ARCHIVE relative to the caller's folder; the default results folder is in the
# repository.
[ -n "${ARCHIVE:-}" ] && ARCHIVE=$(realpath -m "$ARCHIVE")
[ -n "${1:-}" ] && out=$(realpath -m "$1")
cd "$(dirname "$0")/.."
root=$(pwd)
out=${out:-$root/bench/results/gpu-$(date -u +%Y%m%d-%H%M%S)}
build=${BUILD_DIR:-build-gpu}
mkdir -p "$out"
log() { echo "gpu_check: $*" | tee -a "$out/summary.txt"; }
pack() {  # RESULTS_DIR into ARCHIVE, replaced whole (a stopped tar leaves the last one)
  [ -n "${ARCHIVE:-}" ] || return 0
  # Exit status 1: a file changed while it was read (a step still writing when the script is
  # stopped); what was read is kept.
  tar -C "$(dirname "$out")" --exclude='*/images' --exclude='*.h5' --exclude='*.pth' \
    --exclude='*.html' --exclude='alloc_trace_*.txt' --warning=no-file-changed \
    -czf "$ARCHIVE.part" "$(basename "$out")"
  [ $? -le 1 ] && mv -f "$ARCHIVE.part" "$ARCHIVE"
}
trap pack EXIT

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  log "no GPU found (nvidia-smi -L failed): nothing to check"
  exit 1
fi
py=${CUDL_PYTHON:-}
if [ -z "$py" ]; then
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then py=/usr/bin/python3; else py=python3; fi
fi
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "python: $py $($py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1)"
} | tee "$out/environment.txt"

# Dependencies packed by scripts/gpu_deps.sh on a machine that has the Debian packages.
deps=${GPU_DEPS:-build-deps/gpu-deps.tar.xz}
if [ -f "$deps" ]; then
  dir="$build/deps"
  if [ ! -d "$dir/gpu-deps/usr" ] || [ "$deps" -nt "$dir/gpu-deps" ]; then
    rm -rf "$dir/gpu-deps"
    mkdir -p "$dir" && tar -C "$dir" -xJf "$deps" && touch "$dir/gpu-deps" ||
      { log "cannot unpack $deps"; exit 1; }
  fi
  p="$(cd "$dir/gpu-deps/usr" && pwd)"
  a=$(ls -d "$p"/lib/*-linux-gnu | head -n 1)
  log "dependencies from $deps ($p)"
  export CMAKE_PREFIX_PATH="$p${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$p/include:$(ls -d "$p"/include/*-linux-gnu/openblas-openmp | head -n 1)${CPATH:+:$CPATH}"
  # HDF5 from the archive, not through an h5cc wrapper the machine may have. cudl's programs
  # and tests find the archive's libraries through their RPATH (DT_RPATH, not RUNPATH: it also
  # serves the libraries those load, e.g. HDF5's libcurl and libcrypto), not LD_LIBRARY_PATH:
  # that would hand Debian's libcrypto, libffi and libz to this machine's Python and PyTorch
  # too. The archive's h5dump is a launcher that sets its own library path.
  CMAKE_ARGS="${CMAKE_ARGS:-} -DCUDL_ONEDNN=ON -DHDF5_C_COMPILER_EXECUTABLE=/bin/false \
    -DCUDL_OPENBLAS_LIBRARY=$a/openblas-openmp/libopenblas.so \
    -DCBLAS_INCLUDE_DIR=$(ls -d "$p"/include/*-linux-gnu/openblas-openmp | head -n 1) \
    -DCMAKE_BUILD_RPATH=$a;$a/hdf5/serial;$a/openblas-openmp \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags"
fi
if [[ "${CMAKE_ARGS:-}" != *CMAKE_CUDA_ARCHITECTURES* ]]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  [ -n "$cap" ] && CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CUDA_ARCHITECTURES=$cap"
fi

# Before spending GPU time on a build: every header the build needs, said at once when missing
# (a GPU machine may lack the Debian packages that scripts/setup.sh installs; give their
# prefixes in CMAKE_PREFIX_PATH / CPATH, or carry them).
include_dirs=(/usr/include /usr/include/hdf5/serial /usr/include/x86_64-linux-gnu
              /usr/include/x86_64-linux-gnu/openblas-openmp /usr/local/include)
IFS=: read -ra extra <<< "${CPATH:-}"
include_dirs+=("${extra[@]}")
IFS=: read -ra prefixes <<< "${CMAKE_PREFIX_PATH:-}"
for p in "${prefixes[@]}"; do include_dirs+=("$p/include" "$p/include/hdf5/serial"); done
missing=()
for h in hdf5.h jpeglib.h png.h zlib.h cblas.h gtest/gtest.h CLI/CLI.hpp nlohmann/json.hpp; do
  found=0
  for dir in "${include_dirs[@]}"; do
    [ -n "$dir" ] && [ -f "$dir/$h" ] && { found=1; break; }
  done
  [ $found -eq 1 ] || missing+=("$h")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "missing headers (HDF5, libjpeg, libpng, zlib, CBLAS, GoogleTest, CLI11, nlohmann-json): ${missing[*]}; pack them with scripts/gpu_deps.sh on a machine that has them and pass GPU_DEPS"
  exit 1
fi
# cuDNN: next to the toolkit, else from the nvidia-cudnn wheel of this machine's PyTorch.
cuda_home=$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")
if [ ! -f "$cuda_home/include/cudnn.h" ]; then
  cudnn=$($py -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])' 2>/dev/null || true)
  lib=$(ls "$cudnn"/lib/libcudnn.so* 2>/dev/null | head -n 1)
  if [ -n "$cudnn" ] && [ -f "$cudnn/include/cudnn.h" ] && [ -n "$lib" ]; then
    log "cuDNN from $cudnn (PyTorch's wheel)"
    CMAKE_ARGS="${CMAKE_ARGS:-} -DCUDNN_INCLUDE_DIR=$cudnn/include -DCUDNN_LIBRARY=$lib"
    export LD_LIBRARY_PATH="$cudnn/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    log "cuDNN not found next to $cuda_home nor in $py's nvidia.cudnn"
    exit 1
  fi
fi

status=0
# Configured every time (quick when nothing changed): a build folder of an earlier version of
# this script gets today's settings (the archive's RPATH among them).
# shellcheck disable=SC2086
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUDL_CUDA=ON \
  -DCUDL_PYTHON="$(command -v "$py")" ${CMAKE_ARGS:-} > "$out/configure.log" 2>&1 || status=1
cmake --build "$build" -j "$(nproc)" 2>&1 | tail -n 50 > "$out/build.log" || status=1
if [ $status -ne 0 ]; then
  log "build failed (see $out/build.log)"
  exit 1
fi
pack

stages=",${STAGES:-tests,bench},"
rounds=${ROUNDS:-1}
# limited SECONDS NAME LOG COMMAND...: runs COMMAND, its output to LOG, under a time limit (its
# whole process group is stopped after SECONDS), so that one hung run cannot spend the machine's
# time; a failure or a stop sets status=1 and says so in the summary.
limited() {
  local seconds=$1 name=$2 output=$3
  shift 3
  local left=$((budget - (SECONDS - start) - 15))
  if [ $left -lt 20 ]; then
    status=1
    log "$name skipped: the budget of $budget s is spent"
    return 0
  fi
  [ "$seconds" -gt "$left" ] && seconds=$left
  local t0=$SECONDS
  timeout -k 10 "$seconds" "$@" > "$output" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    status=1
    if { [ $rc -eq 124 ] || [ $rc -eq 137 ]; } && [ $((SECONDS - t0)) -ge "$seconds" ]; then
      log "$name stopped after $seconds s (time limit)"
    else
      log "$name FAILED (exit $rc)"
    fi
  fi
  pack
  return 0
}

if [[ $stages == *,tests,* ]]; then
  s0=$status
  status=0
  # Two CPU threads per test, as on the 2-core machines the suite is made for: with one test per
  # core, tests that each start a thread per core would share every core many times over.
  limited 420 tests "$out/ctest.log" env CUDL_REQUIRE_CUDA=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
    ctest --test-dir "$build" -j "$(nproc)" --timeout 240 --output-on-failure
  tail -n 30 "$out/ctest.log"
  [ $status -ne 0 ] && log "failed tests (see $out/ctest.log):" &&
    grep -E '\*\*\*(Failed|Exception|Timeout)|Not Run' "$out/ctest.log" | tee -a "$out/summary.txt"
  status=$((status | s0))
  # A CUDA test cannot skip here (CUDL_REQUIRE_CUDA=1 makes it fail); others may, for want of
  # a tool this machine lacks (e.g. Chromium for the report screenshot): listed, not failed.
  if grep -q '\*\*\*Skipped' "$out/ctest.log"; then
    log "skipped (not CUDA tests):"
    grep '\*\*\*Skipped' "$out/ctest.log" | tee -a "$out/summary.txt"
  fi
  log "tests: $(grep -E 'tests passed' "$out/ctest.log" 2>/dev/null)"
fi

if [[ $stages == *,bench,* ]]; then
  # Benchmarks: cudl beside the PyTorch of this machine, the goals' measurements first (a run
  # cut short by a time limit keeps what finished: each writes its table as it goes).
  # In fp32, PyTorch also runs with cudnn.benchmark (as fastai sets it) beside its default.
  train_step() {  # shape [precision [channels-last]]
    local p=${2:-fp32} cl=${3:-} name=train_step_$1${2:+_$2}${3:+_cl}
    limited $((200 * rounds)) "$name" "$out/$name.log" env CUDL_PYTHON="$py" \
      bash bench/train_step.sh --build "$build" --device cuda --shape "$1" --precision "$p" \
      ${cl:+--channels-last} $([ "$p" = fp32 ] && echo --torch-cudnn-benchmark) \
      --rounds "$rounds" --warmup 3 --steps 10 "$out/$name"
    grep "^cudl.* / " "$out/$name.log" | sed "s/^/$1 $p${cl:+ channels-last}: /" |
      tee -a "$out/summary.txt"
  }
  recipe() {  # results folder, extra fridge_train flags[, flags of a second PyTorch run]
    limited $((${3:+60} + 120)) "$1" "$out/$1.log" env CUDL_TRAIN_FLAGS="$2" CUDL_TORCH_ALSO="${3:-}" CUDL_PYTHON="$py" \
      bash bench/recipe.sh "$build" "$out/$1" \
      "$([ -f "$out/recipe/data/labels.csv" ] && echo "$out/recipe/data")" cuda 8
    tail -n 1 "$out/$1.log" | sed "s/^/$1: /" | tee -a "$out/summary.txt"
  }
  train_step 16x300
  recipe recipe "" --cudnn-benchmark
  train_step 256x224
  train_step 16x300 bf16
  train_step 256x224 bf16
  train_step 16x300 bf16 cl
  train_step 256x224 bf16 cl
  recipe recipe-bf16 --mixed-precision
  recipe recipe-bf16-cl "--mixed-precision --channels-last"
  # The same job with cuDNN's algorithms picked by heuristics (no timing runs at start-up), as
  # PyTorch's default.
  recipe recipe-heuristic --no-benchmark
  # Where the GPU time goes, per op, in eager steps of both.
  for shape in 16x300 256x224; do
    limited 120 "profile $shape" "$out/profile_$shape.log" env CUDL_PYTHON="$py" \
      bash bench/profile.sh --build "$build" --device cuda --shape "$shape" --steps 5 \
      "$out/profile_$shape"
  done
  limited 120 matmul "$out/bench_matmul.txt" env CUDL_PYTHON="$py" \
    bash bench/matmul_gpu.sh "$build"
  tail -n 1 "$out/bench_matmul.txt" | tee -a "$out/summary.txt"
  # The GPU's requests of an eager step at batch 256, replayed through the allocator designs
  # (segments per request, as the main cache and PyTorch; one reserved segment, as the graph
  # pools): how much the pool reservation saves on this GPU's request pattern.
  limited 120 "allocation trace" "$out/alloc_trace.log" \
    env CUDL_ALLOC_TRACE="$out/alloc_trace_256x224.txt" "$build/bench/bench_train_step" \
    --device cuda --batch 256 --size 224 --cuda-graph 0 --warmup 1 --steps 1
  if [ -f "$out/alloc_trace_256x224.txt" ]; then
    limited 120 "allocation replay" "$out/alloc_replay.txt" "$py" bench/alloc_replay.py \
      --device cuda:0 "$out/alloc_trace_256x224.txt"
  else
    status=1
    log "allocation trace: no trace written (see $out/alloc_trace.log)"
  fi
  [ -f "$out/alloc_replay.txt" ] && tee -a "$out/summary.txt" < "$out/alloc_replay.txt"
  xz -f "$out/alloc_trace_256x224.txt" 2>/dev/null || true
fi
# Up to three failed CUDA tests again under compute-sanitizer's memcheck, where the machine has
# it: for a kernel that reads or writes out of bounds, which kernel and which launch. Last, so
# that a failing test costs the benchmarks none of their time.
if [[ $stages == *,tests,* ]] && [ -f "$out/ctest.log" ]; then
  # Failed or crashed, not timed out (it would not finish under memcheck either) or not run.
  mapfile -t failed < <(sed -n '/The following tests FAILED:/,$p' "$out/ctest.log" |
    sed -nE 's/^\s*[0-9]+ - (\S*[Cc]uda\S*) \((Failed|SEGFAULT|Subprocess aborted|Exception|ILLEGAL|BUS|OTHER_FAULT|Child aborted)\).*/\1/p' |
    head -n 3)
  if [ ${#failed[@]} -gt 0 ]; then
    sanitizer=$(command -v compute-sanitizer || ls "$cuda_home/bin/compute-sanitizer" 2>/dev/null || true)
    if [ -z "$sanitizer" ]; then
      log "memcheck: no compute-sanitizer on this machine"
    else
      for name in "${failed[@]}"; do
        log_file="$out/memcheck_${name//\//_}.log"
        limited 120 "memcheck $name" "$log_file" env CUDL_REQUIRE_CUDA=1 \
          "$py" scripts/ctest_run.py "$build" "$name" "$sanitizer" --tool memcheck
        [ -f "$log_file" ] && log "memcheck $name: $(grep -m 1 'ERROR SUMMARY' "$log_file")"
      done
    fi
  fi
fi
[ $status -eq 0 ] && log "OK" || log "FAILED"
exit $status
