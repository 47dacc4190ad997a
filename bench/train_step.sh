#!/usr/bin/env bash
# One training step of the notebook's ResNet-18 (forward, BCE-with-logits, backward, AdamW):
# cudl (bench_train_step) beside PyTorch (bench/train_step_torch.py), on the same machine with
# the same thread count, one process per run, the two alternating round after round so that
# a change in the machine's load hits both. Prints a table (medians over rounds of each run's
# median step, and the cudl / PyTorch ratios) and writes RESULTS_DIR/train_step.json (machine,
# versions, commit, every run) and RESULTS_DIR/train_step.txt (the table).
#
# Usage: bench/train_step.sh [options] RESULTS_DIR     e.g. bench/results/cpu-$(date +%F)
#   --build DIR      cudl build folder (default: build)
#   --device D       cpu (default) or cuda
#   --threads N      CPU threads of both (default 2: the issue's CPU setting)
#   --rounds R       alternating rounds (default 5)
#   --warmup W       untimed steps per run (default 1)
#   --steps S        timed steps per run (default 3)
#   --shape BxS      batch x image size (default 16x300). On the CPU 256x224 (the issue's
#                    second shape) takes minutes per step on 2 cores: it runs only when asked
#                    for explicitly with --shape 256x224 --allow-large.
#   --allow-large    allow more than 64 images per step on the CPU
#   --also BIN       also run another bench_train_step build (e.g. of an older commit) each round,
#                    in a row of its own: "cudl [also N: build folder]"
#   --precision P    fp32 (default) or bf16: every run in bfloat16 mixed precision (cudl's
#                    autocast, torch.autocast for PyTorch)
#   --channels-last  every run channels-last (cudl's TrainStep option, PyTorch's
#                    model.to(memory_format=torch.channels_last) with channels-last input)
#   --also-channels-last  also run cudl channels-last each round (beside the runs above)
#   --also-direct    also run cudl with direct 3x3 convolutions each round (--winograd 0, as
#                    fridge_train --no-winograd; CPU: the default is Winograd's, as fridge_train's;
#                    --also builds older than cb10eec ran direct convolutions by default)
#   --torch-cudnn-benchmark  CUDA: also run PyTorch with torch.backends.cudnn.benchmark = True
#                    (eager and graphs) each round: cuDNN's algorithms timed once per shape, as
#                    fastai sets it and as cudl does, beside PyTorch's default (heuristics)
# On CUDA the rounds also run cudl with eager steps (--cuda-graph 0; the default replays a CUDA
# graph) and PyTorch with the step captured in a CUDA graph; cuDNN may use TF32 in both
# (PyTorch's default). The ratios compare cudl's first run (its default) with every other, and
# cudl's other runs (options, --also builds) with PyTorch's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" device=cpu threads=2 rounds=5 warmup=1 steps=3 shape=16x300 allow_large=0
precision=fp32 channels_last=0 also_cl=0 also_direct=0 torch_benchmark=0
out=""
also=()
usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --device) device=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --allow-large) allow_large=1; shift ;;
    --precision) precision=$2; shift 2 ;;
    --channels-last) channels_last=1; shift ;;
    --also-channels-last) also_cl=1; shift ;;
    --also-direct) also_direct=1; shift ;;
    --torch-cudnn-benchmark) torch_benchmark=1; shift ;;
    --also) also+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "train_step.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
batch=${shape%x*} size=${shape#*x}
if [ "$device" = cpu ] && [ "$batch" -gt 64 ] && [ "$allow_large" != 1 ]; then
  echo "train_step.sh: batch $batch on the CPU takes minutes per step; add --allow-large" >&2
  exit 2
fi
bin="$build/bench/bench_train_step"
[ -x "$bin" ] || { echo "train_step.sh: $bin not built (scripts/build.sh)" >&2; exit 1; }
py=${CUDL_PYTHON:-/usr/bin/python3}
mkdir -p "$out"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
args=(--batch "$batch" --size "$size" --device "$device" --threads "$threads" --warmup "$warmup"
      --steps "$steps")
# (fp32 passes no --precision, so that --also can run builds older than the option)
if [ "$precision" != fp32 ]; then args+=(--precision "$precision"); fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
# record CMD...: one run, its JSON line wrapped with the round and the load before it. With
# tag set, the run's implementation is named "cudl [tag]" (an --also build: its own row).
# A run that fails is reported and left out (the script then exits 1 after the table); every
# finished run is copied to RESULTS_DIR at once, so a failure or a time limit keeps the rest.
tag=
failed=0
default_run=false  # true while recording cudl's default run, the ratios' reference
record() {
  local before json
  before=$(load)
  if ! json=$("$@"); then
    echo "train_step.sh: round $r: this run failed: $*" >&2
    failed=$((failed + 1))
    return 0
  fi
  if [ -n "$tag" ]; then json=${json/\"impl\":\"cudl/\"impl\":\"cudl [$tag]}; fi
  echo "{\"round\": $r, \"default\": $default_run, \"load_before\": \"$before\", \"run\": $json}" >> "$raw"
  cp "$raw" "$out/train_step_runs.jsonl"
}
torch_args=("${args[@]}")
if [ "$channels_last" = 1 ]; then
  args+=(--channels-last 1)
  torch_args+=(--channels-last)
fi
torch_run() { (cd "$here" && "$py" train_step_torch.py "${torch_args[@]}" "$@"); }
for r in $(seq "$rounds"); do
  echo "round $r/$rounds (load $(load))" >&2
  default_run=true
  record "$bin" "${args[@]}"
  default_run=false
  if [ "$device" = cuda ]; then record "$bin" "${args[@]}" --cuda-graph 0; fi
  if [ "$also_cl" = 1 ] && [ "$channels_last" = 0 ]; then record "$bin" "${args[@]}" --channels-last 1; fi
  if [ "$also_direct" = 1 ]; then record "$bin" "${args[@]}" --winograd 0; fi
  n=0
  for b in ${also[@]+"${also[@]}"}; do
    n=$((n + 1))
    tag="also $n: $(basename "$(dirname "$(dirname "$b")")")"
    record "$b" "${args[@]}"
    tag=
  done
  record torch_run
  if [ "$device" = cuda ]; then record torch_run --graphs; fi
  if [ "$device" = cuda ] && [ "$torch_benchmark" = 1 ]; then
    record torch_run --cudnn-benchmark
    record torch_run --graphs --cudnn-benchmark
  fi
done
[ -s "$raw" ] || { echo "train_step.sh: no run finished" >&2; exit 1; }
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
"$py" - "$raw" "$out" "$commit" "$dirty" "$rounds" "$warmup" "$steps" <<'PY'
import datetime, json, os, platform, statistics, subprocess, sys
raw, out, commit, dirty, rounds, warmup, steps = sys.argv[1:8]
rows = [json.loads(l) for l in open(raw)]

def cmd(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return ""

cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), platform.processor())
import torch
machine = {
    "cpu_model": cpu_model, "logical_cpus": os.cpu_count(),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": platform.release(), "os": cmd("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
    "hostname": platform.node(), "load_after": open("/proc/loadavg").read().split()[:3],
}
if torch.cuda.is_available():
    machine["gpu"] = torch.cuda.get_device_name()
first_cudl = next((r["run"] for r in rows if r["run"]["impl"].startswith("cudl")), {})
versions = {"pytorch": torch.__version__, "python": platform.python_version(),
            "cudl_blas": first_cudl.get("blas", ""), "cudl_onednn": first_cudl.get("onednn", ""),
            "compiler": cmd("c++", "--version").splitlines()[0] if cmd("c++", "--version") else ""}
impls = []
for r in rows:
    if r["run"]["impl"] not in impls:
        impls.append(r["run"]["impl"])
summary = {}
for impl in impls:
    runs = [r["run"] for r in rows if r["run"]["impl"] == impl]
    summary[impl] = {
        "runs": len(runs),
        "median_images_per_s": statistics.median(x["images_per_s"] for x in runs),
        "median_step_s": statistics.median(x["median_step_s"] for x in runs),
        "min_step_s": min(min(x.get("step_s", [x["median_step_s"]])) for x in runs),
        "median_cpu_s_per_step": statistics.median(x.get("cpu_s_per_step", float("nan")) for x in runs),
        "median_peak_bytes": statistics.median(x["peak_bytes"] for x in runs),
        "peak_kind": runs[0]["peak_kind"],
        # cudl: "cuda graph" or "eager (why)"; PyTorch: from the implementation's name
        "train_step": runs[0].get("train_step", "cuda graph" if " graphs" in impl else "eager"),
    }
    if "peak_allocated_bytes" in runs[0]:
        summary[impl]["median_peak_allocated_bytes"] = statistics.median(
            x["peak_allocated_bytes"] for x in runs)
# cudl's default run (recorded first in every round; any run if all of those failed)
ref = next((r["run"]["impl"] for r in rows if r.get("default")), impls[0])
# Per round ratios (cudl vs each other implementation in the same round), then their median.
def ratio(a, b):
    """a against b: per round (both run in the same round), their median, and the rest."""
    per_round = []
    for k in sorted({r["round"] for r in rows}):
        c = [r["run"] for r in rows if r["round"] == k and r["run"]["impl"] == a]
        t = [r["run"] for r in rows if r["round"] == k and r["run"]["impl"] == b]
        if c and t:
            per_round.append(c[0]["images_per_s"] / t[0]["images_per_s"])
    return {
        "images_per_s_ratio_of_medians": summary[a]["median_images_per_s"] / summary[b]["median_images_per_s"],
        "images_per_s_ratio_per_round": per_round,
        # None when the two never ran in the same round (a run failed)
        "median_of_round_ratios": statistics.median(per_round) if per_round else None,
        "cpu_time_ratio": summary[b]["median_cpu_s_per_step"] / summary[a]["median_cpu_s_per_step"],
        "peak_memory_ratio": summary[a]["median_peak_bytes"] / summary[b]["median_peak_bytes"],
    }

# cudl's default against every other run; the other cudl runs (options, --also builds) against
# PyTorch's.
ratios = {impl: ratio(ref, impl) for impl in impls if impl != ref}
other_ratios = {f"{a} / {b}": ratio(a, b) for a in impls if a != ref and a.startswith("cudl")
                for b in impls if not b.startswith("cudl")}
cfg = rows[0]["run"]
config = {"batch": cfg["batch"], "size": cfg["size"], "device": cfg["device"],
          "threads": cfg["threads"], "precision": cfg["precision"],
          "memory_format": cfg.get("memory_format", "contiguous"), "rounds": int(rounds),
          "warmup_steps": int(warmup), "timed_steps": int(steps)}
w = max([28] + [len(i) for i in impls])  # the implementations' column
lines = [f"train_step: notebook ResNet-18, batch {cfg['batch']} x {cfg['size']}x{cfg['size']}, "
         f"{cfg['device']}, {cfg['threads']} threads, "
         f"{'bf16 mixed precision' if cfg['precision'] == 'bf16' else 'fp32'}"
         f"{', channels-last' if cfg.get('memory_format') == 'channels_last' else ''}"
         f"{' (TF32 allowed in cuDNN convolutions, as PyTorch by default)' if cfg.get('tf32') else ''}; "
         f"{rounds} alternating rounds of "
         f"{warmup} warm-up + {steps} timed steps per process",
         f"machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs"
         + (f", {machine['gpu']}" if "gpu" in machine else ""),
         f"commit {commit[:12]}{' (dirty)' if dirty == 'true' else ''}, "
         f"{datetime.datetime.now().isoformat(timespec='seconds')}",
         "",
         f"{'implementation':{w}s} {'images/s':>9s} {'step s':>8s} {'best s':>8s} {'CPU s/step':>11s} "
         f"{'peak MiB':>9s}  peak kind; step"]
for impl in impls:
    s = summary[impl]
    lines.append(f"{impl:{w}s} {s['median_images_per_s']:9.3f} {s['median_step_s']:8.3f} "
                 f"{s['min_step_s']:8.3f} {s['median_cpu_s_per_step']:11.2f} "
                 f"{s['median_peak_bytes'] / 2**20:9.0f}  {s['peak_kind']}; {s['train_step']}")
for impl in impls:
    if "median_peak_allocated_bytes" in summary[impl]:
        lines.append(f"{'':{w}s} {impl}: peak of live tensor bytes "
                     f"{summary[impl]['median_peak_allocated_bytes'] / 2**20:.0f} MiB")
lines.append("")
for name, r in [(f"{ref} / {impl}", r) for impl, r in ratios.items()] + list(other_ratios.items()):
    per = " ".join(f"{x:.3f}" for x in r["images_per_s_ratio_per_round"])
    lines.append(f"{name}: images/s {r['images_per_s_ratio_of_medians']:.3f} "
                 f"(ratio of medians; per round {per or 'none'}; median "
                 f"{'n/a' if r['median_of_round_ratios'] is None else format(r['median_of_round_ratios'], '.3f')}), "
                 f"CPU time {r['cpu_time_ratio']:.3f}x less, peak memory {r['peak_memory_ratio']:.3f}")
table = "\n".join(lines)
print(table)
result = {"benchmark": "train_step", "date": datetime.datetime.now().isoformat(timespec="seconds"),
          "git_commit": commit, "git_dirty": dirty == "true", "machine": machine,
          "versions": versions, "config": config, "summary": summary, "ratios": ratios,
          "other_ratios": other_ratios, "runs": rows}
with open(os.path.join(out, "train_step.json"), "w") as f:
    json.dump(result, f, indent=1)
with open(os.path.join(out, "train_step.txt"), "w") as f:
    f.write(table + "\n")
PY
if [ "$failed" -gt 0 ]; then
  echo "train_step.sh: $failed run(s) failed (above); the table has the others" >&2
  exit 1
fi
