"""Benchmark: CO-RE relocation of every fixture object against the running kernel.

    python3 benchmarks/bench_core.py [--repeat N]      (root: libbpf creates maps)

purebpf, per object: parse the ELF into an ObjectSpec and relocate every
program against vmlinux.  Two figures:

* ``cold``: vmlinux BTF opened afresh for each object that has CO-RE records
  (what libbpf does on every ``bpf_object__load``), so BTF opening is
  included every time -- through purebpf's normal path, i.e. with its
  on-disk offset/name-index cache warm, as it is after a machine's first run
  (set PUREBPF_NO_CACHE=1 to measure without that cache: vmlinux is then
  fully indexed for every object);
* ``shared``: one target BTF for all objects (how a long-lived process uses
  purebpf: the vmlinux BTF and its indexes are reused).

libbpf 1.1 (ctypes), per object: ``bpf_object__open_file`` +
``bpf_object__load``.  libbpf has no "relocate only" entry point in 1.1, so a
custom SEC() handler is registered for every section of the objects; its
``prog_prepare_load_fn`` runs after all CO-RE relocations are applied, just
before the first BPF_PROG_LOAD, and aborts the load there.  libbpf's figure
therefore also contains work purebpf does not do here: kernel feature probes,
loading the object's BTF into the kernel and creating its maps (syscalls).
``libbpf open`` is reported separately to show the parse share.

Big-endian objects are relocated by purebpf only (libbpf cannot load them on
a little-endian host) and are left out of the ratio.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from purebpf.btf import Btf  # noqa: E402
from purebpf.btf.btf import _vmlinux_cache  # noqa: E402  (per-process cache, dropped for "cold")
from purebpf.core_reloc import TargetBtf, relocate_object  # noqa: E402
from purebpf.spec import ObjectSpec  # noqa: E402

VMLINUX = "/sys/kernel/btf/vmlinux"


def objects() -> List[Path]:
    found = sorted((ROOT / "fixtures" / "obj").glob("*.bpf.o"))
    found += sorted((ROOT / "fixtures" / "core" / "obj").glob("*.bpf.o"))
    return found


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def purebpf_cold(path: Path) -> int:
    """Parse and relocate as a fresh process would: the per-process vmlinux cache is
    dropped, so the target BTF is opened again (through purebpf's normal path,
    which uses its on-disk index cache) -- and only if the object needs it."""
    _vmlinux_cache.clear()
    spec = ObjectSpec.from_file(str(path))
    return len(relocate_object(spec).explanations)  # opens the target only if needed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import test_core_libbpf as lb  # ctypes bindings shared with the tests

    objs = objects()
    specs = {p: ObjectSpec.from_file(str(p)) for p in objs}
    shared = TargetBtf(Btf.from_file(VMLINUX), name="vmlinux", override=False)

    # one custom handler per section pattern used by the objects (aborting before load)
    patterns: Dict[str, Tuple[int, int]] = {}
    for spec in specs.values():
        for prog in spec.programs:
            if prog.kind is not None:
                attach = prog.kind.expected_attach_type
                patterns.setdefault(prog.kind.pattern, (int(prog.kind.prog_type),
                                                        int(attach) if attach is not None else 0))
    lib = lb._Capture.library()
    handler_ids = lb._Capture.register({pat: ptype for pat, (ptype, _) in patterns.items()})
    try:
        return _run(args.repeat, objs, specs, shared, lib)
    finally:
        lb._Capture.unregister(handler_ids)


def _run(repeat: int, objs: List[Path], specs: Dict[Path, ObjectSpec], shared: TargetBtf,
         lib: ctypes.CDLL) -> int:
    import test_core_libbpf as lb

    def libbpf_open(path: Path) -> None:
        obj = lb.open_object(lib, path, None)
        lib.bpf_object__close(obj)

    def libbpf_relocate(path: Path) -> bool:
        captured: Dict[str, bytes] = {}
        lb._Capture.capture = captured
        try:
            obj = lb.open_object(lib, path, None)
            try:
                lib.bpf_object__load(obj)
            finally:
                lib.bpf_object__close(obj)
        finally:
            lb._Capture.capture = None
        return bool(captured)

    print(f"{'object':34} {'relos':>5} {'pure cold':>10} {'pure shared':>11} {'reloc only':>10} "
          f"{'libbpf open':>11} {'libbpf o+l':>10}")
    tot = {"cold": 0.0, "shared": 0.0, "reloc": 0.0, "lopen": 0.0, "lib": 0.0}
    for path in objs:
        spec = specs[path]
        nrel = sum(len(p.core_relos) for p in spec.programs + spec.subprograms)
        cold = timed(lambda: purebpf_cold(path), repeat)
        warm = timed(lambda: relocate_object(ObjectSpec.from_file(str(path)), shared), repeat)
        reloc = timed(lambda: relocate_object(spec, shared), repeat)
        lib_ok: Optional[bool]
        if spec.byteorder != "little":
            lib_ok = None
        else:
            try:
                lib_ok = libbpf_relocate(path)
            except OSError:
                lib_ok = False
        name = str(path.relative_to(ROOT / "fixtures"))
        if not lib_ok:
            why = "big-endian" if lib_ok is None else "libbpf failed before relocating"
            print(f"{name:34} {nrel:5} {cold * 1e3:9.2f}ms {warm * 1e3:10.2f}ms {reloc * 1e3:9.2f}ms"
                  f"   ({why}: not in ratio)")
            continue
        lopen = timed(lambda: libbpf_open(path), repeat)
        lrel = timed(lambda: libbpf_relocate(path), repeat)
        tot["cold"] += cold
        tot["shared"] += warm
        tot["reloc"] += reloc
        tot["lopen"] += lopen
        tot["lib"] += lrel
        print(f"{name:34} {nrel:5} {cold * 1e3:9.2f}ms {warm * 1e3:10.2f}ms {reloc * 1e3:9.2f}ms "
              f"{lopen * 1e3:10.2f}ms {lrel * 1e3:9.2f}ms")
    print()
    print(f"total (objects both handle): purebpf cold {tot['cold'] * 1e3:.1f} ms, "
          f"purebpf shared target {tot['shared'] * 1e3:.1f} ms (of which CO-RE relocation "
          f"{tot['reloc'] * 1e3:.1f} ms), libbpf open+load {tot['lib'] * 1e3:.1f} ms")
    print(f"ratio purebpf/libbpf: cold {tot['cold'] / tot['lib']:.2f}x, "
          f"shared target {tot['shared'] / tot['lib']:.2f}x (goal <= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
