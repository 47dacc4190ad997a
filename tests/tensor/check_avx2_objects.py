#!/usr/bin/env python3
"""Checks the AVX2 copies of the CPU kernels in libcudl_tensor.a (tensor/cpu/isa.h).

The linker keeps one copy of each weak (inline or template) function that several objects
define. An AVX2 copy that compiled such a function with AVX instructions could hand them to the
baseline kernels, and a CPU without AVX would stop on them. So:
- in every *_avx2.cpp.o, no weak function has a VEX or EVEX instruction (mnemonic v..., or a
  ymm/zmm register);
- its cudl::cpu::avx2 functions do use AVX registers (the copy is really compiled for AVX2);
- the baseline objects of the same files have no VEX instruction at all.
Exit status 0: all hold; 1: one does not (named); 77: the library has no AVX2 copy (not GCC
on x86-64), nothing to check.

Usage: check_avx2_objects.py LIBCUDL_TENSOR_A
"""
import os
import re
import subprocess
import sys
import tempfile

AVX_REG = re.compile(r"%[yz]mm\d+")


def run(args, cwd=None):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def functions_with_avx(obj):
    """{mangled function name: True if it has a VEX/EVEX instruction, False otherwise}."""
    out, name = {}, None
    for line in run(["objdump", "-d", "--no-show-raw-insn", obj]).splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            name = m.group(1)
            out.setdefault(name, False)
            continue
        parts = line.split("\t")
        if name is None or len(parts) < 2 or not parts[0].strip().endswith(":"):
            continue
        insn = parts[1].strip()
        mnemonic = insn.split()[0] if insn else ""
        if mnemonic.startswith("v") or AVX_REG.search(insn):
            out[name] = True
    return out


def weak_symbols(obj):
    names = set()
    for line in run(["nm", "--defined-only", obj]).splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in ("W", "V"):
            names.add(f[2])
    return names


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    lib = os.path.abspath(sys.argv[1])
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        run(["ar", "x", lib], cwd=tmp)
        members = sorted(os.listdir(tmp))
        copies = [m for m in members if m.endswith("_avx2.cpp.o")]
        if not copies:
            print(f"no *_avx2.cpp.o in {lib}: the kernel files are missing")
            return 1
        checked = 0
        for copy in copies:
            obj = os.path.join(tmp, copy)
            funcs = functions_with_avx(obj)
            own = [f for f in funcs if "4cudl3cpu4avx2" in f]
            if not own:
                continue  # an empty copy: no AVX2 copy in this build
            checked += 1
            if not any(funcs[f] for f in own):
                failures.append(f"{copy}: no cudl::cpu::avx2 function uses AVX registers")
            for w in sorted(weak_symbols(obj)):
                if funcs.get(w):
                    failures.append(f"{copy}: weak function {w} has AVX instructions "
                                    f"(c++filt {w})")
            base = copy.replace("_avx2.cpp.o", ".cpp.o")
            if base not in members:
                failures.append(f"{copy}: no baseline object {base}")
                continue
            for f, avx in functions_with_avx(os.path.join(tmp, base)).items():
                if avx:
                    failures.append(f"{base}: {f} has AVX instructions in the baseline object")
        if checked == 0:
            print("the library has no AVX2 copy of the CPU kernels (not GCC on x86-64): skipped")
            return 77
        for f in failures:
            print("FAIL " + f)
        print(f"{checked} AVX2 copies checked: " + ("ok" if not failures else
                                                    f"{len(failures)} problems"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
