"""Benchmark: open the kernel's BTF and find 21 named types.

    python benchmarks/bench_btf_open.py [--repeat N]

Measures, in one run on the same machine:

* libbpf (through ctypes): ``btf__parse`` + ``btf__find_by_name_kind`` x 21;
* purebpf cold: a fresh :class:`~purebpf.btf.Btf` without the index cache
  (offset pass + scanning name lookups);
* purebpf warm: a fresh :class:`~purebpf.btf.Btf` with the on-disk index
  cache already filled (read bytes, hash them, load the index);
* a fresh interpreter per run (``import purebpf.btf`` + open + lookups), cold
  and warm, against a bare interpreter;
* peak RSS above a bare interpreter (``VmHWM`` of a child process).

Prints times (best and median of the repetitions) and ratios to libbpf.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

VMLINUX = "/sys/kernel/btf/vmlinux"
LIBBPF = "/usr/lib/x86_64-linux-gnu/libbpf.so.1"
BTF_KIND_STRUCT = 4
NAMES = [
    "task_struct", "sk_buff", "pt_regs", "file", "inode", "mm_struct", "cred", "dentry",
    "super_block", "net_device", "sock", "xdp_buff", "bpf_map", "bpf_prog", "page",
    "vm_area_struct", "path", "qstr", "socket", "request_sock", "cgroup",
]

# Peak RSS of this process image: VmHWM (ru_maxrss survives execve on Linux,
# so a child would report its parent's peak).
PEAK = r"""
def peak_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
"""

CHILD = PEAK + r"""
import os, sys, time
t0 = time.perf_counter()
from purebpf.btf import Btf, BtfKind
t1 = time.perf_counter()
names = sys.argv[1].split(",")
if sys.argv[2] == "cache":
    from purebpf.btf import cache
    with open("/sys/kernel/btf/vmlinux", "rb") as f:
        data = f.read()
    btf = Btf(data, name="vmlinux", use_cache=True)
else:
    btf = Btf.from_file("/sys/kernel/btf/vmlinux")
ids = [btf.find_by_name(n, BtfKind.STRUCT)[0] for n in names]
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, peak_kib())
"""

BARE = PEAK + "print(peak_kib())"


def timeit(fn: Callable[[], object], repeat: int) -> List[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def libbpf_run() -> Callable[[], object]:
    lib = ctypes.CDLL(LIBBPF)
    lib.btf__parse.restype = ctypes.c_void_p
    lib.btf__parse.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    lib.btf__find_by_name_kind.restype = ctypes.c_int32
    lib.btf__find_by_name_kind.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
    lib.btf__free.argtypes = [ctypes.c_void_p]
    encoded = [n.encode() for n in NAMES]

    def run() -> object:
        h = lib.btf__parse(VMLINUX.encode(), None)
        ids = [lib.btf__find_by_name_kind(h, n, BTF_KIND_STRUCT) for n in encoded]
        assert min(ids) > 0
        lib.btf__free(h)
        return ids
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--process-repeat", type=int, default=5)
    args = ap.parse_args()

    cache_dir = tempfile.mkdtemp(prefix="purebpf-bench-cache-")
    os.environ["PUREBPF_CACHE_DIR"] = cache_dir
    os.environ.pop("PUREBPF_NO_CACHE", None)

    from purebpf.btf import Btf, BtfKind

    def cold() -> object:
        btf = Btf.from_file(VMLINUX)  # from_file never uses the cache
        return [btf.find_by_name(n, BtfKind.STRUCT)[0] for n in NAMES]

    def warm() -> object:
        with open(VMLINUX, "rb") as f:
            data = f.read()
        btf = Btf(data, name=VMLINUX, use_cache=True)
        return [btf.find_by_name(n, BtfKind.STRUCT)[0] for n in NAMES]

    lb = libbpf_run()
    expected = lb()
    assert cold() == expected and warm() == expected  # also fills the cache

    results: Dict[str, List[float]] = {
        "libbpf": timeit(lb, args.repeat),
        "purebpf cold": timeit(cold, args.repeat),
        "purebpf warm": timeit(warm, args.repeat),
    }
    base = min(results["libbpf"])
    print(f"vmlinux BTF: {os.path.getsize(VMLINUX)} bytes, {len(Btf.from_file(VMLINUX))} type ids; "
          f"{len(NAMES)} lookups; {args.repeat} repetitions in-process")
    for name, times in results.items():
        best, med = min(times), statistics.median(times)
        print(f"  {name:14s} best {best * 1e3:7.2f} ms  median {med * 1e3:7.2f} ms  "
              f"ratio(best) {best / base:5.2f}x")

    # Fresh interpreters: import time, open+lookups, peak RSS above bare.
    env = dict(os.environ)
    bare_rss = [int(subprocess.run([sys.executable, "-c", BARE], check=True, capture_output=True,
                                   text=True).stdout) for _ in range(3)]
    bare = min(bare_rss)
    print(f"fresh process ({args.process_repeat} runs each; bare interpreter peak RSS {bare} KiB):")
    for mode in ("nocache", "cache"):
        rows = []
        for _ in range(args.process_repeat):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, ",".join(NAMES), mode], check=True,
                                 capture_output=True, text=True, env=env).stdout.split()
            wall = time.perf_counter() - t
            rows.append((float(out[0]), float(out[1]), int(out[2]), wall))
        imp = min(r[0] for r in rows)
        work = min(r[1] for r in rows)
        rss = max(r[2] for r in rows) - bare
        wall = min(r[3] for r in rows)
        label = "cold (no cache)" if mode == "nocache" else "warm (cache)"
        print(f"  {label:16s} import {imp * 1e3:6.1f} ms  open+lookups {work * 1e3:6.1f} ms "
              f"(ratio {work / base:5.2f}x)  whole process {wall * 1e3:6.1f} ms  "
              f"peak RSS +{rss / 1024:5.1f} MiB")


if __name__ == "__main__":
    main()
