"""Benchmark: write vmlinux.h from the kernel's BTF.

    python benchmarks/bench_btf_dump_c.py [--repeat N] [--file PATH]

Measures, in one run on the same machine, and checks the outputs are equal:

* bpftool: ``bpftool btf dump file PATH format c`` as a subprocess, stdout to
  /dev/null (its whole process: start, parse, dump);
* purebpf in-process: ``dump_c(Btf.from_file(PATH))`` in this interpreter
  (open + dump; imports already done);
* purebpf as a whole process: a fresh interpreter that imports purebpf,
  dumps and writes to /dev/null, i.e. the same job bpftool's number covers.
  Byte-code caching is switched on for the child (``PYTHONDONTWRITEBYTECODE``
  removed, ``PYTHONPYCACHEPREFIX`` pointing at a temporary directory, one
  warm-up run), as in a normal installation; ``--no-pyc`` measures with
  whatever the environment says instead.

Wall-clock and CPU (user + system) times are printed, best and median of the
repetitions, with the ratio purebpf / bpftool.  The machine may be shared, so
CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Tuple

VMLINUX = "/sys/kernel/btf/vmlinux"

CHILD = r"""
import sys
from purebpf.btf import Btf
from purebpf.btf.dump_c import dump_c
text = dump_c(Btf.from_file(sys.argv[1]))
with open(os.devnull, "w", encoding="utf-8", errors="surrogateescape") as f:
    f.write(text)
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(fn: Callable[[], None], cpu: Callable[[], float], repeat: int) -> Tuple[List[float], List[float]]:
    walls: List[float] = []
    cpus: List[float] = []
    for _ in range(repeat):
        c0, t0 = cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return walls, cpus


def fmt(values: List[float]) -> str:
    return f"best {min(values) * 1000:8.1f} ms  median {statistics.median(values) * 1000:8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--file", default=VMLINUX)
    parser.add_argument("--no-pyc", action="store_true",
                        help="leave the child's byte-code cache settings as they are")
    args = parser.parse_args()

    from purebpf.btf import Btf
    from purebpf.btf.dump_c import dump_c

    path = args.file
    devnull = open(os.devnull, "wb")

    def bpftool() -> None:
        subprocess.run(["bpftool", "btf", "dump", "file", path, "format", "c"],
                       stdout=devnull, check=True)

    def in_process() -> None:
        dump_c(Btf.from_file(path))

    env = dict(os.environ)
    pyc_dir = tempfile.TemporaryDirectory(prefix="bench-pyc-")
    if not args.no_pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pyc_dir.name

    def whole_process() -> None:
        subprocess.run([sys.executable, "-c", "import os\n" + CHILD, path], stdout=devnull,
                       check=True, env=env)

    whole_process()  # warm-up: fills the byte-code cache

    # Child processes first, while this interpreter is still small.
    b_wall, b_cpu = measure(bpftool, children_cpu, args.repeat)
    p_wall, p_cpu = measure(whole_process, children_cpu, args.repeat)
    i_wall, i_cpu = measure(in_process, self_cpu, args.repeat)

    reference = subprocess.run(["bpftool", "btf", "dump", "file", path, "format", "c"],
                               capture_output=True, check=True).stdout
    ours = dump_c(Btf.from_file(path)).encode("utf-8", "surrogateescape")
    same = ours == reference
    print(f"{path}: {len(reference.splitlines())} lines, outputs identical: {same}")

    print(f"bpftool (process)          wall {fmt(b_wall)} | cpu {fmt(b_cpu)}")
    print(f"purebpf dump_c (in-proc)   wall {fmt(i_wall)} | cpu {fmt(i_cpu)}")
    print(f"purebpf (whole process)    wall {fmt(p_wall)} | cpu {fmt(p_cpu)}")
    for label, wall, cpu in (("in-process", i_wall, i_cpu), ("whole process", p_wall, p_cpu)):
        print(f"ratio purebpf {label:13s} / bpftool: wall {min(wall) / min(b_wall):5.2f}x (best), "
              f"{statistics.median(wall) / statistics.median(b_wall):5.2f}x (median); "
              f"cpu {min(cpu) / min(b_cpu):5.2f}x (best)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
