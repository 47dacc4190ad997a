#!/usr/bin/env python3
"""Checks the AVX2 copies of the CPU kernels in cudl_tensor's objects (tensor/cpu/isa.h).

The linker keeps one copy of each weak (inline or template) function that several objects
define, and runs every static initialiser. An AVX2 copy that compiled such code with AVX
instructions could hand them to the baseline kernels, and a CPU without AVX would stop on them.
So, for each tensor/cpu/<name>_avx2.cpp.o:
- only functions of namespace cudl::cpu::avx2 (and their compiler-made clones, whose names
  keep it) have VEX or EVEX instructions (a v... mnemonic, or a ymm/zmm register);
- some of them use ymm registers: the copy is really compiled for AVX2;
- the baseline object tensor/cpu/<name>.cpp.o has no VEX instruction at all.
Exit status 0: all hold; 1: one does not (named), or the copies expected by the build are
missing; 77: the build has no AVX2 copies (--expect 0: not GCC on x86-64), nothing to check.

Usage: check_avx2_objects.py --expect 0|1 [--objdump OBJDUMP] OBJECT...
  OBJECT...: every object of cudl_tensor ($<TARGET_OBJECTS:cudl_tensor>)
"""
import argparse
import os
import re
import subprocess
import sys

AVX_REG = re.compile(r"%[yz]mm\d+")
YMM = re.compile(r"%ymm\d+")
OWN = "4cudl3cpu4avx2"  # the mangled namespace cudl::cpu::avx2


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def disassemble(objdump, obj):
    """{function name: (has a VEX/EVEX instruction, uses a ymm register)} over every section."""
    out, name = {}, None
    for line in run([objdump, "-d", "--no-show-raw-insn", obj]).splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            name = m.group(1)
            out.setdefault(name, [False, False])
            continue
        parts = line.split("\t")
        if name is None or len(parts) < 2 or not parts[0].strip().endswith(":"):
            continue
        insn = parts[1].strip()
        mnemonic = insn.split()[0] if insn else ""
        if mnemonic.startswith("v") or AVX_REG.search(insn):
            out[name][0] = True
        if YMM.search(insn):
            out[name][1] = True
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", type=int, choices=(0, 1), required=True)
    ap.add_argument("--objdump", default="objdump")
    ap.add_argument("objects", nargs="+")
    a = ap.parse_args()
    objs = [os.path.abspath(o) for o in a.objects]
    copies = [o for o in objs if re.search(r"/cpu/[^/]+_avx2\.cpp\.o(bj)?$", o)]
    if not a.expect:
        print("the build has no AVX2 copy of the CPU kernels (not GCC on x86-64): skipped")
        return 77
    failures = []
    if len(copies) != 3:
        failures.append(f"expected the AVX2 copies of 3 kernel files, found {len(copies)}: "
                        f"{[os.path.basename(c) for c in copies]}")
    for copy in copies:
        funcs = disassemble(a.objdump, copy)
        name = os.path.basename(copy)
        own = [f for f in funcs if OWN in f]
        if not own:
            failures.append(f"{name}: no function of cudl::cpu::avx2 (the copy is empty)")
        elif not any(funcs[f][1] for f in own):
            failures.append(f"{name}: no cudl::cpu::avx2 function uses ymm registers")
        for f, (vex, _) in sorted(funcs.items()):
            if vex and OWN not in f:
                failures.append(f"{name}: {f} is outside cudl::cpu::avx2 but has AVX "
                                f"instructions (c++filt {f})")
        base = re.sub(r"_avx2(\.cpp\.o(bj)?)$", r"\1", copy)
        if base not in objs:
            failures.append(f"{name}: no baseline object {base}")
            continue
        for f, (vex, _) in sorted(disassemble(a.objdump, base).items()):
            if vex:
                failures.append(f"{os.path.basename(base)}: {f} has AVX instructions in the "
                                f"baseline object")
    for f in failures:
        print("FAIL " + f)
    print(f"{len(copies)} AVX2 copies checked: " +
          ("ok" if not failures else f"{len(failures)} problems"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
