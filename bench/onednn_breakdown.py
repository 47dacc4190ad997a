"""Where a CPU training step spends its oneDNN time: sums the exec lines of oneDNN's verbose log
(DNNL_VERBOSE=1) by primitive, direction and implementation, and per convolution shape.
Both cudl and Debian's PyTorch 1.13 (on the CPU) run their convolutions on the same libdnnl 2.6,
so the same log format describes both (a PyTorch wheel carries its own oneDNN 3.x, whose lines
have one more field; both are read) (cudl's with --winograd 0: by default its 3x3 stride-1 convolutions
are its own Winograd ones, which the log does not show).

Usage: DNNL_VERBOSE=1 build/bench/bench_train_step --warmup 1 --steps 1 --winograd 0 > log.txt
       DNNL_VERBOSE=1 /usr/bin/python3 bench/train_step_torch.py --warmup 1 --steps 1 > log.txt
       python3 bench/onednn_breakdown.py log.txt [--skip-first-half]
--skip-first-half drops the first half of the exec lines (the warm-up step of a run with one
warm-up and one timed step)."""
import collections
import sys


def main():
    path = sys.argv[1]
    # oneDNN 2.x writes "onednn_verbose,exec,cpu,..." (or dnnl_verbose); 3.x inserts a field,
    # "onednn_verbose,primitive,exec,cpu,...", and may put a timestamp after the prefix. The
    # fields are taken from "exec" on, the same for all of them.
    rows = []
    for line in open(path):
        fields = line.strip().split(",")
        if fields[0] in ("onednn_verbose", "dnnl_verbose") and "exec" in fields[1:4]:
            rows.append(fields[fields.index("exec", 1) - 1:])
    if "--skip-first-half" in sys.argv:
        rows = rows[len(rows) // 2:]
    by_kind = collections.defaultdict(float)
    count = collections.Counter()
    by_shape = collections.defaultdict(float)
    for r in rows:
        kind, impl, prop, problem, ms = r[3], r[4], r[5], r[-2], float(r[-1])
        key = (kind, prop, impl)
        by_kind[key] += ms
        count[key] += 1
        if kind == "convolution":
            by_shape[(problem.split("_iw")[0], prop)] += ms
    total = sum(by_kind.values())
    print(f"{'ms':>9s} {'calls':>5s}  primitive / direction / implementation")
    for key, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"{ms:9.1f} {count[key]:5d}  {' / '.join(key)}")
    print(f"{total:9.1f}        total oneDNN time")
    print()
    print(f"{'ms':>9s}  convolution shape (oneDNN problem string) / direction")
    for (shape, prop), ms in sorted(by_shape.items()):
        print(f"{ms:9.1f}  {shape} / {prop}")


if __name__ == "__main__":
    main()
