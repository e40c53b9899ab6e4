"""Benchmark: from start to every program of a CO-RE object loaded in the kernel.

    python3 benchmarks/bench_load.py [--object PATH] [--repeat N]     (root)

Same object, same run, two loaders:

* purebpf: ``open_object(path).load()``;
* libbpf: benchmarks/bench_load_libbpf.c (``bpf_object__open_file`` +
  ``bpf_object__load``), built here with ``gcc -O2 ... -lbpf`` into
  benchmarks/build/.

Every sample is a fresh process, so nothing is cached in memory between
samples (purebpf's on-disk BTF index cache, if enabled, is warm, as it is
after a machine's first load).  Figures, medians over ``--repeat`` samples:

(a) in-process: purebpf from the ``open_object`` call to loaded, imports
    excluded (the figure for a long-running embedder), against libbpf's whole
    process (fork/exec and dynamic linking included);
(b) whole process: ``python -c "...open_object(p).load()"`` from spawn to
    exit, against libbpf's whole process; the bare interpreter's start time
    (``python -I -S -c pass``, and with ``site``) is printed beside it as the
    floor no Python tool can go under.

PYTHONDONTWRITEBYTECODE is set in this environment; it is removed for the
timed children after one warm-up run, so the byte-code cache (.pyc) exists
and is used, as in a normal installation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "benchmarks" / "build"
DEFAULT_OBJECT = ROOT / "fixtures" / "obj" / "core_kernel.bpf.o"

#: Lists the modules a load imports (run once, in a process of its own).
LIST_IMPORTS = """\
import sys
from purebpf.object import open_object
before = set(sys.modules)
open_object(sys.argv[1]).load().close()
print(" ".join(sorted(m for m in set(sys.modules) - before if "." in m or m in ("elftools", "construct"))))
"""

#: Imports all of them first, then times open -> loaded.
IN_PROCESS = """\
import importlib, sys, time
from purebpf.object import open_object
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
t0 = time.perf_counter_ns()
obj = open_object(sys.argv[1]).load()
t1 = time.perf_counter_ns()
obj.close()
print(t1 - t0)
"""

WHOLE = "import sys; from purebpf.object import open_object; open_object(sys.argv[1]).load().close()"


def build_libbpf_loader() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    exe = BUILD / "bench_load_libbpf"
    src = ROOT / "benchmarks" / "bench_load_libbpf.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        gcc = shutil.which("gcc")
        if gcc is None:
            sys.exit("gcc is needed to build the libbpf loader")
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(src), "-lbpf"], check=True)
    return exe


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(cmd: Sequence[str], env: Dict[str, str]) -> float:
    """Seconds from spawn to exit of ``cmd`` (which must succeed)."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t1 = time.perf_counter()
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {proc.stderr.decode(errors='replace')}")
    return t1 - t0


def reported(cmd: Sequence[str], env: Dict[str, str]) -> float:
    """The nanoseconds ``cmd`` prints, as seconds."""
    proc = subprocess.run(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {proc.stderr.decode(errors='replace')}")
    return int(proc.stdout.split()[-1]) / 1e9


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main(argv: "List[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--object", type=Path, default=DEFAULT_OBJECT)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root (programs are loaded into the kernel)")
    obj = str(args.object)
    exe = build_libbpf_loader()
    py = sys.executable
    env = child_env()

    # warm-up: writes .pyc files, fills purebpf's on-disk caches, pages in libbpf
    subprocess.run([py, "-c", WHOLE, obj], env=env, check=True)
    listed = subprocess.run([py, "-c", LIST_IMPORTS, obj], env=env, check=True, stdout=subprocess.PIPE)
    modules = listed.stdout.decode().split()
    subprocess.run([py, "-c", IN_PROCESS, obj, *modules], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(exe), obj], env=env, check=True, stdout=subprocess.DEVNULL)

    samples: Dict[str, List[float]] = {k: [] for k in
                                       ("libbpf_process", "libbpf_inner", "pb_inner", "pb_process",
                                        "bare", "site")}
    for _ in range(args.repeat):  # interleaved, so drift affects all alike
        t0 = time.perf_counter()
        inner = reported([str(exe), obj], env)
        samples["libbpf_process"].append(time.perf_counter() - t0)
        samples["libbpf_inner"].append(inner)
        samples["pb_inner"].append(reported([py, "-c", IN_PROCESS, obj, *modules], env))
        samples["pb_process"].append(wall([py, "-c", WHOLE, obj], env))
        samples["bare"].append(wall([py, "-I", "-S", "-c", "pass"], env))
        samples["site"].append(wall([py, "-c", "pass"], env))
    med = {k: statistics.median(v) for k, v in samples.items()}

    print(f"object: {os.path.relpath(obj, ROOT)}   samples: {args.repeat} (medians)")
    print(f"libbpf whole process           {ms(med['libbpf_process'])}"
          f"   (open->loaded inside: {ms(med['libbpf_inner']).strip()})")
    print(f"(a) purebpf open->loaded       {ms(med['pb_inner'])}"
          f"   ratio vs libbpf process: {med['pb_inner'] / med['libbpf_process']:.2f}x  (goal <= 2x, then 1.5x)")
    print(f"(b) purebpf whole process      {ms(med['pb_process'])}"
          f"   ratio vs libbpf process: {med['pb_process'] / med['libbpf_process']:.2f}x  (goal <= 5x, then 3x)")
    print(f"    interpreter floor: python -I -S -c pass {ms(med['bare']).strip()}, "
          f"with site {ms(med['site']).strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
