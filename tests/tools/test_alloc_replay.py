"""bench/alloc_replay.py on a trace whose answer is known: four 6 MiB blocks allocated and
freed, then one of 24 MiB. Segments per request cannot merge the four (a fifth segment, 48 MiB
reserved); the arena merges them (24 MiB); a reservation of the live peak holds all five.
Also: other devices, blocks below 1 MiB and frees of blocks from before the trace are left out.

Usage: test_alloc_replay.py PATH/TO/alloc_replay.py"""
import importlib.util
import lzma
import os
import sys
import tempfile

spec = importlib.util.spec_from_file_location("alloc_replay", sys.argv[1])
replay = importlib.util.module_from_spec(spec)
spec.loader.exec_module(replay)

MIB = 1 << 20
lines = ["cpu f 8388608 0xdead\n",              # freed, allocated before the trace: ignored
         "cuda:0 a 33554432 0x7000\n",          # another device: ignored
         "cpu a 1000 0x10\n"]                   # below 1 MiB: ignored
lines += [f"cpu a {6 * MIB} 0x{i + 1:x}00\n" for i in range(4)]
lines += [f"cpu f {6 * MIB} 0x{i + 1:x}00\n" for i in range(4)]
lines += [f"cpu a {24 * MIB - 5} 0x900\n", f"cpu f {24 * MIB - 5} 0x900\n", "cpu f 1000 0x10\n",
          f"cpu a {MIB - 100} 0x20\n"]  # rounds to 1 MiB, but is below it: malloc's
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.writelines(lines)
try:
    r = replay.main([f.name, "--device", "cpu", "--json"])
finally:
    os.unlink(f.name)
d = r["designs"]
checks = [
    (r["requests"], 5),
    (r["peak_live_bytes"], 24 * MIB),
    (d["segments"]["peak_reserved_bytes"], 48 * MIB), (d["segments"]["maps"], 5),
    (d["arena"]["peak_reserved_bytes"], 24 * MIB), (d["arena"]["maps"], 4),
    (d["reserved"]["peak_reserved_bytes"], 24 * MIB + 384 * 1024), (d["reserved"]["maps"], 1),
]
bad = [(got, want) for got, want in checks if got != want]
if bad:
    sys.exit(f"alloc_replay gave {bad} (got, expected); result: {r}")
# The default device is the first one named in the trace; an .xz trace is read as it is. On a
# GPU, sizes round to 2 MiB, but requests below 1 MiB (here 1000 bytes and 1 MiB - 1) are still
# left out: cudl caches them apart.
gpu_small = ["cuda:0 a 1000 0x7100\n", f"cuda:0 a {MIB - 1} 0x7200\n"]
with tempfile.NamedTemporaryFile(suffix=".txt.xz", delete=False) as f:
    f.write(lzma.compress("".join(lines[1:2] + gpu_small + lines[2:]).encode()))
try:
    r = replay.main([f.name, "--json"])
    assert r["device"] == "cuda:0" and r["requests"] == 1 and r["peak_live_bytes"] == 32 * MIB, r
finally:
    os.unlink(f.name)
print("alloc_replay: ok")
