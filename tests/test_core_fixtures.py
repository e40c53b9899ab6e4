"""CO-RE results on the conformance fixture, checked against gcc.

The expected values never come from the engine: a C probe compiled with gcc
includes the *target* definitions (fixtures/core/src/target_v1.h, and
target_v2.h: a packed layout with straddling bitfields) and prints
offsetof/sizeof/enum values, and builds a memory image of ``struct rec`` with
known field values.  Checks:

* pure: every relocation purebpf computes for fields.bpf.o against
  target_v1's BTF equals the probe's value; bitfields are checked by running
  the extraction the program performs (load byte_sz bytes at byte_off,
  shift left, shift right) over the gcc-built image;
* kernel: the program, loaded by libbpf and run with BPF_PROG_TEST_RUN on that
  image, stores the probe's values into its output struct (and purebpf's code
  is identical to libbpf's: test_core_libbpf.py).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from purebpf.btf import Btf
from purebpf.btf.types import essential_name
from purebpf.core_reloc import CoreExplanation, relocate_object
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "fixtures" / "core" / "src"
OBJ = ROOT / "fixtures" / "core" / "obj"
BITFIELDS = {"bf1", "bf2", "sbf", "ubf"}

# Values the probe stores in the image (chosen to show sign extension and widening).
IMAGE_INIT = """
    r.a = 0x11223344; r.b = 0x0102030405060708LL; r.small = 0x12345;
    r.pt.x = 77; r.pt.y = 0x1234; r.arr2d[1][2] = 4242; r.name[3] = 'Q';
    r.bf1 = 5; r.bf2 = 99; r.sbf = -300; r.ubf = 1; r.counter = 1000;
"""

# out field -> C expression over the target definitions (R is the image).
OUT_EXPECTED: List[Tuple[str, str]] = [
    ("off_a", "offsetof(struct rec, a)"), ("off_b", "offsetof(struct rec, b)"),
    ("off_name3", "offsetof(struct rec, name[3])"), ("off_pt_y", "offsetof(struct rec, pt.y)"),
    ("off_arr", "offsetof(struct rec, arr2d[1][2])"), ("off_tail2", "offsetof(struct rec, tail[2])"),
    ("off_counter", "offsetof(struct rec, counter) + R.counter"),
    ("sz_b", "sizeof(R.b)"), ("sz_name", "sizeof(R.name)"), ("sz_pt", "sizeof(R.pt)"),
    ("sz_arr_row", "sizeof(R.arr2d[1])"), ("sz_small", "sizeof(R.small)"),
    ("ex_a", "exists:offsetof(struct rec, a)"), ("ex_missing", "exists:offsetof(struct rec, missing)"),
    ("ex_counter", "exists:offsetof(struct rec, counter)"),
    ("bf1", "R.bf1"), ("bf2", "R.bf2"), ("sbf", "(long long)R.sbf"), ("ubf", "R.ubf"),
    ("signed_sbf", "({ struct rec t_ = {0}; t_.sbf = -1; t_.sbf < 0; })"),
    ("signed_bf1", "({ struct rec t_ = {0}; t_.bf1 = -1; t_.bf1 < 0; })"),
    ("signed_a", "({ struct rec t_ = {0}; t_.a = -1; t_.a < 0; })"),
    ("val_a", "(long long)R.a"), ("val_b", "R.b"), ("val_small", "R.small"),
    ("val_pt_y", "(long long)(int)R.pt.y"), ("val_arr12", "R.arr2d[1][2]"),
    ("val_name3", "R.name[3]"), ("val_missing", "0xdead"),
    ("amb_v", "AMB_V"),
    ("e_red", "C_RED"), ("e_blue", "C_BLUE"), ("e_green_exists", "exists:C_GREEN"),
    ("e_red_exists", "exists:C_RED"), ("e_big_a", "BIG_A"), ("e_big_gone_exists", "exists:BIG_GONE"),
    ("t_only_exists", "exists:sizeof(struct only_in_target)"),
    ("t_not_exists", "exists:sizeof(struct not_in_target)"), ("t_sized", "SIZED"),
    ("t_tdef_size", "TDEF_SIZE"), ("t_ok_matches", "TM_OK"), ("t_bad_matches", "TM_BAD"),
    ("t_bad_exists", "exists:sizeof(struct tm_bad)"), ("tid_local_nz", "1"), ("tid_target_nz", "1"),
]

TARGETS = ("target_v1", "target_v2")

# Per-target facts that are not a single C expression.  The type_matches
# answers follow from the definitions: v1's tm_ok has the local member types
# (int, pointer), v2's has `unsigned int a` (signedness differs); tm_bad is
# `long a` in v1 (size differs) and `int a` in v2.
TARGET_MACROS = {
    "target_v1": {"AMB_V": "offsetof(struct amb___v1, v)", "SIZED": "sizeof(struct sized)",
                  "TDEF_SIZE": "sizeof(tdef_t)", "TM_OK": "1", "TM_BAD": "0"},
    "target_v2": {"AMB_V": "offsetof(struct amb, v)", "SIZED": "sizeof(struct sized___v2)",
                  "TDEF_SIZE": "0", "TM_OK": "0", "TM_BAD": "1"},
}


def _cc() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("gcc (layout oracle) not installed")
    return cc


def run_probe(exprs: List[Tuple[str, str]], target: str = "target_v1") -> Dict[str, int]:
    """Compile and run a C probe printing each expression as an unsigned 64-bit number.

    ``exists:EXPR`` stands for 1 if EXPR compiles against the target, else 0.
    """
    macros = "\n".join(f"#define {k} ({v})" for k, v in TARGET_MACROS[target].items())
    resolved = [(k, str(int(compiles(v[7:], target))) if v.startswith("exists:") else v) for k, v in exprs]
    lines = "\n".join(f'    printf("%s %llu\\n", "{k}", (unsigned long long)({v}));' for k, v in resolved)
    src = f"""
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include "{target}.h"
{macros}
int main(void) {{
    static struct rec r; struct rec R;
    memset(&r, 0, sizeof(r));
{IMAGE_INIT}
    R = r;
{lines}
    return 0;
}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        c, exe = os.path.join(tmp, "p.c"), os.path.join(tmp, "p")
        Path(c).write_text(src)
        subprocess.run([_cc(), "-w", "-I", str(SRC), c, "-o", exe], check=True)
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    result: Dict[str, int] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        result[key] = int(value)
    return result


@lru_cache(maxsize=None)
def image(target: str = "target_v1") -> bytes:
    """``struct rec`` with IMAGE_INIT applied, as gcc lays it out (256 bytes, zero padded)."""
    src = f"""
#include <stdio.h>
#include <string.h>
#include "{target}.h"
int main(void) {{
    static struct rec r; unsigned char *p = (unsigned char *)&r; unsigned i;
    memset(&r, 0, sizeof(r));
{IMAGE_INIT}
    for (i = 0; i < sizeof(r); i++) printf("%02x", p[i]);
    return 0;
}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        c, exe = os.path.join(tmp, "p.c"), os.path.join(tmp, "p")
        Path(c).write_text(src)
        subprocess.run([_cc(), "-w", "-I", str(SRC), c, "-o", exe], check=True)
        hexdata = subprocess.run([exe], check=True, capture_output=True, text=True).stdout.strip()
    data = bytes.fromhex(hexdata)
    assert len(data) <= 256
    return data.ljust(256, b"\0")


@lru_cache(maxsize=None)
def compiles(expr: str, target: str = "target_v1") -> bool:
    """Whether ``expr`` is valid C over the target definitions (field/type/enumerator exists)."""
    src = f'#include <stddef.h>\n#include "{target}.h"\nunsigned long long f(void) {{ return (unsigned long long)({expr}); }}\n'
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "p.c")
        Path(c).write_text(src)
        r = subprocess.run([_cc(), "-w", "-c", "-I", str(SRC), c, "-o", os.path.join(tmp, "p.o")],
                           capture_output=True)
    return r.returncode == 0


#: (object, target) pairs and the programs whose relocation must be refused (see edge.bpf.c)
REFUSED = {("fields.bpf.o", "target_v1"): set(), ("fields.bpf.o", "target_v2"): set(),
           ("edge.bpf.o", "target_v1"): {"ambiguous", "too_far"}}


@lru_cache(maxsize=None)
def relocated(obj: str = "fields.bpf.o", target: str = "target_v1") -> Tuple[CoreExplanation, ...]:
    spec = ObjectSpec.from_file(str(OBJ / obj))
    result = relocate_object(spec, Btf.from_file(str(OBJ / f"{target}.o")))
    assert {p.name for p in result.programs.values() if p.errors} == REFUSED[(obj, target)], \
        [str(e) for e in result.errors]
    return tuple(e for e in result.explanations if e.outcome != "error")


def _path(e: CoreExplanation) -> str:
    return e.access.split("::", 1)[1]


def _target_type(e: CoreExplanation) -> str:
    """The target type to probe: the matched candidate, else the local name minus its flavor."""
    if e.target is not None:
        return e.target.type_name
    root = e.local_type
    kw, _, name = root.rpartition(" ")
    return f"{kw} {essential_name(name)}".strip()


@pytest.mark.parametrize("obj,target", sorted(REFUSED))
def test_field_and_type_values_match_gcc(obj: str, target: str) -> None:
    exps = relocated(obj, target)
    exprs: List[Tuple[str, str]] = []
    expect_exists: List[Tuple[int, str]] = []
    checked = 0
    for i, e in enumerate(exps):
        key = f"e{i}"
        if e.kind in (0, 1, 3) and _path(e).split(".")[-1] in BITFIELDS and e.kind != 3:
            continue  # bitfield offsets/sizes: checked by extraction below
        if e.kind == 0:
            exprs.append((key, f"offsetof({_target_type(e)}, {_path(e)})"))
        elif e.kind == 1:
            exprs.append((key, f"sizeof((({_target_type(e)} *)0)->{_path(e)})"))
        elif e.kind == 3:
            exprs.append((key, f"({{ {_target_type(e)} t_ = {{0}}; t_.{_path(e)} = -1; t_.{_path(e)} < 0; }})"))
        elif e.kind == 11:
            exprs.append((key, essential_name(_path(e))))
        elif e.kind == 9:
            size_expr = f"sizeof({_target_type(e)})"
            if compiles(size_expr, target):
                exprs.append((key, size_expr))
            else:  # the type does not exist in the target: size 0
                assert e.new_value == 0, e.access
                checked += 1
        elif e.kind == 2:
            expect_exists.append((i, f"offsetof({_target_type(e)}, {_path(e)})"))
        elif e.kind == 10:
            expect_exists.append((i, essential_name(_path(e))))
        elif e.kind == 8:
            expect_exists.append((i, f"sizeof({_target_type(e)})"))
        else:
            continue  # type ids / type_matches: compared with libbpf in test_core_libbpf
    # poisoned because the target lacks the field (not because of a size change)
    poisoned = [(k, x) for k, x in exprs
                if exps[int(k[1:])].outcome == "poisoned" and exps[int(k[1:])].target is None]
    for key, expr in poisoned:
        assert not compiles(expr, target), f"{exps[int(key[1:])].access}: poisoned although {expr} exists"
        checked += 1
    exprs = [kx for kx in exprs if kx not in poisoned]
    values = run_probe(exprs, target)
    for key, expr in exprs:
        e = exps[int(key[1:])]
        assert e.new_value == values[key], f"{e.program} #{e.insn_index} {e.kind_name} {e.access}: " \
                                           f"purebpf {e.new_value}, gcc {expr} = {values[key]}"
        checked += 1
    for i, expr in expect_exists:
        e = exps[i]
        assert e.new_value == int(compiles(expr, target)), f"{e.kind_name} {e.access}"
        checked += 1
    assert checked >= {"fields.bpf.o": 40, "edge.bpf.o": 10}[obj]


def test_v2_needs_a_widened_bitfield_load() -> None:
    """target_v2 exercises libbpf's load-size widening: bf2 is an unsigned int
    bitfield whose bits cross its 4-byte unit, so it is read with 8 bytes."""
    (e,) = [e for e in relocated("fields.bpf.o", "target_v2")
            if e.kind == 1 and e.access.endswith("::bf2")]
    assert e.new_value == 8 and compiles("sizeof(unsigned int) == 4", "target_v2")


def _extract(img: bytes, byte_off: int, byte_sz: int, lshift: int, rshift: int, signed: bool) -> int:
    """What BPF_CORE_READ_BITFIELD computes from the relocated constants."""
    raw = int.from_bytes(img[byte_off:byte_off + byte_sz], "little")
    val = (raw << lshift) & ((1 << 64) - 1)
    if signed and val & (1 << 63):
        val -= 1 << 64
    return (val >> rshift) & ((1 << 64) - 1)


@pytest.mark.parametrize("target", TARGETS)
def test_bitfields_extract_gcc_values(target: str) -> None:
    exps = relocated("fields.bpf.o", target)
    by_field: Dict[str, Dict[int, int]] = {}
    for e in exps:
        if e.program == "core_fields" and _path(e) in BITFIELDS and e.kind in (0, 1, 3, 4, 5):
            by_field.setdefault(_path(e), {})[e.kind] = e.new_value  # type: ignore[assignment]
    assert set(by_field) == BITFIELDS
    want = run_probe([(f, f"(long long)R.{f}") for f in sorted(BITFIELDS)], target)
    img = image(target)
    for name, k in by_field.items():
        got = _extract(img, k[0], k[1], k[4], k[5], bool(k[3]))
        assert got == want[name], f"{name}: extracted {got:#x}, gcc stored {want[name]:#x} ({k})"


# --------------------------------------------------------------------------- kernel


@pytest.mark.parametrize("target", TARGETS)
def test_program_run_outputs_gcc_values(target: str) -> None:
    """libbpf loads fields.bpf.o against the target and the kernel runs it on the image."""
    if os.geteuid() != 0:
        pytest.skip("needs root to load and run BPF programs")
    from test_core_libbpf import RunOpts, open_object, programs_of, shared_libbpf

    lib = shared_libbpf()
    img = image(target)
    obj = open_object(lib, OBJ / "fields.bpf.o", OBJ / f"{target}.o")
    try:
        maps = {}
        m = lib.bpf_object__next_map(obj, None)
        while m:
            maps[lib.bpf_map__name(m).decode()] = m
            m = lib.bpf_object__next_map(obj, m)
        data_map = next(v for k, v in maps.items() if k.endswith(".data"))
        bss_map = next(v for k, v in maps.items() if k.endswith(".bss"))
        cbuf = ctypes.create_string_buffer(img, len(img))
        assert lib.bpf_map__set_initial_value(data_map, cbuf, len(img)) == 0
        err = lib.bpf_object__load(obj)
        if err:
            pytest.fail(f"libbpf could not load fields.bpf.o: {err}")
        for name, prog in programs_of(lib, obj):
            opts = RunOpts(sz=ctypes.sizeof(RunOpts))  # raw_tp runs take no repeat/data
            assert lib.bpf_prog_test_run_opts(lib.bpf_program__fd(prog), ctypes.byref(opts)) == 0, name
        out = ctypes.create_string_buffer(8 * len(OUT_EXPECTED))
        key = ctypes.c_uint32(0)
        assert lib.bpf_map_lookup_elem(lib.bpf_map__fd(bss_map), ctypes.byref(key), out) == 0
    finally:
        lib.bpf_object__close(obj)
    got = dict(zip((k for k, _ in OUT_EXPECTED), struct.unpack(f"<{len(OUT_EXPECTED)}Q", out.raw)))
    want = run_probe(OUT_EXPECTED, target)
    diffs = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not diffs, diffs
