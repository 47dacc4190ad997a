#!/usr/bin/env python3
"""Replays the large-block requests of an allocation trace through three designs of a block
pool and prints the peak of memory each reserves, beside the peak of live bytes.

A trace comes from cudl itself: CUDL_ALLOC_TRACE=FILE in the environment of any cudl program
(or set_alloc_trace(FILE), tensor/allocator.h) writes one line per storage allocated or freed,
"<device> a|f <bytes> <address>". For example:

    CUDL_ALLOC_TRACE=/tmp/trace.txt build/bench/bench_train_step --batch 256 --size 224 \\
        --warmup 0 --steps 1
    python3 bench/alloc_replay.py /tmp/trace.txt

The designs, all best fit with the rest split off when it is at least 1 MiB and freed blocks
merged with free neighbours:
  segments  a new segment (mmap, cudaMalloc) for each request no free block fits; blocks merge
            only within their segment. cudl's CUDA caching allocator; PyTorch's is alike.
  arena     one range of addresses that grows at its end; a free last block grows into the
            request. cudl's CPU allocator.
  reserved  one segment of the live peak and 1/64 mapped first, then segments per request as
            above. cudl's CUDA graph pools, sized so by an eager step (train/train_step.cpp).
Requests below 1 MiB are left out (cudl caches them apart); sizes are rounded as cudl rounds
them (to 64 KiB on the CPU, 2 MiB on a GPU). Frees of blocks allocated before the trace began
are ignored.
"""
import argparse
import bisect
import json
import lzma
import sys

MIB = 1 << 20
MIN_SPLIT = MIB


def round_size(nbytes, device):
    granule = 64 << 10 if device == "cpu" else 2 * MIB
    return (max(nbytes, 1) + granule - 1) // granule * granule


class Pool:
    """Best-fit blocks in segments and, optionally, an arena that grows at its end."""

    def __init__(self, arena=False, reserve=0):
        self.blocks = {}  # address -> [size, free, prev address, next address]
        self.free = []  # sorted (size, address) of the free blocks
        self.next_address = 1 << 40
        self.reserved = self.peak = self.maps = 0
        self.arena = arena
        self.arena_last = None  # address of the arena's last block
        if arena:
            self.arena_base = self.arena_end = self.next_address
            self.next_address += 1 << 50
        if reserve:
            self.give_back(self._map(reserve))

    def _map(self, size):
        address = self.next_address
        self.next_address += size + (1 << 30)  # segments are never neighbours
        self.blocks[address] = [size, False, None, None]
        self._grew(size)
        return address

    def _grew(self, size):
        self.reserved += size
        self.peak = max(self.peak, self.reserved)
        self.maps += 1

    def _unfree(self, address):
        self.free.remove((self.blocks[address][0], address))

    def take(self, size):
        i = bisect.bisect_left(self.free, (size, 0))
        if i < len(self.free):
            have, address = self.free.pop(i)
            b = self.blocks[address]
            if have - size >= MIN_SPLIT:
                rest = address + size
                self.blocks[rest] = [have - size, True, address, b[3]]
                if b[3] is not None:
                    self.blocks[b[3]][2] = rest
                b[3], b[0] = rest, size
                bisect.insort(self.free, (have - size, rest))
                if self.arena_last == address:
                    self.arena_last = rest
            b[1] = False
            return address
        if not self.arena:
            return self._map(size)
        last = self.arena_last
        if last is not None and self.blocks[last][1]:
            self._unfree(last)
            self._grew(size - self.blocks[last][0])
            self.arena_end += size - self.blocks[last][0]
            self.blocks[last][0:2] = [size, False]
            return last
        address = self.arena_end
        self.arena_end += size
        self.blocks[address] = [size, False, last, None]
        if last is not None:
            self.blocks[last][3] = address
        self.arena_last = address
        self._grew(size)
        return address

    def _absorb_next(self, left):
        right = self.blocks[left][3]
        if (self.blocks[right][0], right) in self.free:
            self._unfree(right)
        self.blocks[left][0] += self.blocks[right][0]
        self.blocks[left][3] = self.blocks[right][3]
        if self.blocks[right][3] is not None:
            self.blocks[self.blocks[right][3]][2] = left
        if self.arena_last == right:
            self.arena_last = left
        del self.blocks[right]

    def give_back(self, address):
        b = self.blocks[address]
        b[1] = True
        if b[3] is not None and self.blocks[b[3]][1]:
            self._absorb_next(address)
        if b[2] is not None and self.blocks[b[2]][1]:
            left = b[2]
            self._unfree(left)
            self._absorb_next(left)
            address = left
        bisect.insort(self.free, (self.blocks[address][0], address))


def requests(lines, device):
    """(what, size, address) of the trace's large blocks on `device`, in order."""
    live = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] not in ("a", "f"):
            raise ValueError(f"not a trace line: {line.strip()!r}")
        dev, what, nbytes, address = parts
        if dev != device or int(nbytes) < MIB:  # as cudl decides: by the size asked for
            continue
        size = round_size(int(nbytes), dev)
        if what == "a":
            live.add(address)
        elif address in live:
            live.remove(address)
        else:
            continue  # allocated before the trace began
        yield what, size, address


def replay(events, pool):
    where, live, peak_live = {}, 0, 0
    for what, size, address in events:
        if what == "a":
            where[address] = pool.take(size)
            live += size
            peak_live = max(peak_live, live)
        else:
            pool.give_back(where.pop(address))
            live -= size
    return peak_live


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="the trace (.xz: compressed)")
    ap.add_argument("--device", default=None,
                    help="device of the trace to replay (default: the first one in it)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    a = ap.parse_args(argv)
    opener = lzma.open if a.trace.endswith(".xz") else open  # as gpu_check.sh keeps them
    with opener(a.trace, "rt") as f:
        lines = [l for l in f if l.strip()]
    if not lines:
        sys.exit(f"alloc_replay: {a.trace} is empty (was CUDL_ALLOC_TRACE set?)")
    device = a.device or lines[0].split()[0]
    events = list(requests(lines, device))
    peak_live = replay(events, Pool())
    designs = {"segments": Pool(), "arena": Pool(arena=True),
               "reserved": Pool(reserve=round_size(peak_live + peak_live // 64, device))}
    result = {"trace": a.trace, "device": device, "requests": sum(e[0] == "a" for e in events),
              "peak_live_bytes": peak_live, "designs": {}}
    for name, pool in designs.items():
        replay(events, pool)
        result["designs"][name] = {"peak_reserved_bytes": pool.peak, "maps": pool.maps,
                                   "ratio_to_live": pool.peak / peak_live if peak_live else 1.0}
    if a.json:
        print(json.dumps(result))
        return result
    print(f"{a.trace}: {device}, {result['requests']} requests of 1 MiB or more, "
          f"peak live {peak_live / MIB:.0f} MiB")
    print(f"{'design':10s} {'peak reserved MiB':>18s} {'x live':>7s} {'maps':>6s}")
    for name, d in result["designs"].items():
        print(f"{name:10s} {d['peak_reserved_bytes'] / MIB:18.0f} {d['ratio_to_live']:7.3f} "
              f"{d['maps']:6d}")
    return result


if __name__ == "__main__":
    main()
