"""Loader differential test: purebpf's linked programs and kernel BTF vs libbpf's.

libbpf.so.1 (through ctypes) loads each fixture with a custom SEC() handler
whose ``prog_prepare_load_fn`` runs right before BPF_PROG_LOAD: at that
moment libbpf has created the maps, relocated CO-RE, appended subprograms and
resolved every ld_imm64, kfunc and ksym.  The callback records

* the final instructions (``bpf_program__insns``),
* ``func_info``/``line_info`` from the ``struct bpf_prog_load_opts`` libbpf is
  about to pass,
* libbpf's map fds with their names, and the contents of every map (so the
  ``.kconfig`` data can be compared),

and returns -ECANCELED so nothing reaches the verifier.  The BTF libbpf
loaded (``bpf_object__btf`` + ``btf__raw_data``) is read after that.

purebpf links the same program with fake map fds; map references are
compared by *which map* they name, every other byte exactly.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from purebpf.core_reloc import relocate_object
from purebpf.loader.btf_fixup import kernel_btf_bytes
from purebpf.loader.kconfig import kconfig_data
from purebpf.loader.ksyms import KernelResolver, KsymResolver
from purebpf.loader.linker import LinkedProgram, link_program
from purebpf.spec import ObjectSpec

from test_core_libbpf import PREPARE_FN, HandlerOpts, _Capture, open_object, programs_of

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures" / "obj").glob("*.bpf.o")) + \
    sorted((ROOT / "fixtures" / "core" / "obj").glob("*.bpf.o"))
ECANCELED = 125


class ProgLoadOpts(ctypes.Structure):
    """``struct bpf_prog_load_opts`` of libbpf 1.1 (<bpf/bpf.h>)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("attempts", ctypes.c_int),
        ("expected_attach_type", ctypes.c_uint32),
        ("prog_btf_fd", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_ifindex", ctypes.c_uint32),
        ("kern_version", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
        ("attach_prog_fd", ctypes.c_uint32),
        ("attach_btf_obj_fd", ctypes.c_uint32),
        ("fd_array", ctypes.c_void_p),
        ("func_info", ctypes.c_void_p),
        ("func_info_cnt", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("line_info", ctypes.c_void_p),
        ("line_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_char_p),
    ]


@dataclass
class Captured:
    insns: bytes
    func_info: bytes
    line_info: bytes
    func_info_rec_size: int
    line_info_rec_size: int
    map_names: Dict[int, str]
    map_values: Dict[str, bytes]


@dataclass
class LibbpfResult:
    programs: Dict[str, Captured] = field(default_factory=dict)
    btf: Dict[str, bytes] = field(default_factory=dict)  # program name -> BTF bytes


class _Hooks:
    """Our prepare callback, registered once per pattern around each capture."""

    obj: Optional[int] = None
    out: Optional[Dict[str, Captured]] = None
    keep: List[object] = []

    @classmethod
    def handler_opts(cls) -> HandlerOpts:
        if not cls.keep:
            lib = _Capture.library()
            lib.bpf_map__value_size.restype = ctypes.c_uint32
            lib.bpf_map__value_size.argtypes = [ctypes.c_void_p]
            lib.bpf_map__type.argtypes = [ctypes.c_void_p]

            @PREPARE_FN  # type: ignore[untyped-decorator]
            def prepare(prog: int, opts: int, cookie: int) -> int:
                if cls.out is None or cls.obj is None:
                    return 0
                name = lib.bpf_program__name(prog).decode()
                cnt = lib.bpf_program__insn_cnt(prog)
                o = ctypes.cast(opts, ctypes.POINTER(ProgLoadOpts)).contents
                fi = ctypes.string_at(o.func_info, o.func_info_cnt * o.func_info_rec_size) \
                    if o.func_info else b""
                li = ctypes.string_at(o.line_info, o.line_info_cnt * o.line_info_rec_size) \
                    if o.line_info else b""
                names: Dict[int, str] = {}
                values: Dict[str, bytes] = {}
                m = lib.bpf_object__next_map(cls.obj, None)
                while m:
                    mname = lib.bpf_map__name(m).decode()
                    fd = lib.bpf_map__fd(m)
                    names[fd] = mname
                    if lib.bpf_map__type(m) == 2:  # BPF_MAP_TYPE_ARRAY: data sections
                        size = lib.bpf_map__value_size(m)
                        key = ctypes.c_uint32(0)
                        buf = ctypes.create_string_buffer(size)
                        if lib.bpf_map_lookup_elem(fd, ctypes.byref(key), buf) == 0:
                            values[mname] = buf.raw
                    m = lib.bpf_object__next_map(cls.obj, m)
                cls.out[name] = Captured(ctypes.string_at(lib.bpf_program__insns(prog), cnt * 8),
                                         fi, li, o.func_info_rec_size, o.line_info_rec_size,
                                         names, values)
                return -ECANCELED

            cls.keep += [prepare, HandlerOpts(sz=ctypes.sizeof(HandlerOpts),
                                              prog_prepare_load_fn=prepare)]
        hopts = cls.keep[1]
        assert isinstance(hopts, HandlerOpts)
        return hopts


def libbpf_capture(path: Path, spec: ObjectSpec) -> LibbpfResult:
    """Load each program of ``path`` alone with libbpf, capturing what it would load."""
    lib = _Capture.library()
    lib.bpf_object__btf.restype = ctypes.c_void_p
    lib.bpf_object__btf.argtypes = [ctypes.c_void_p]
    lib.btf__raw_data.restype = ctypes.c_void_p
    lib.btf__raw_data.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    hopts = _Hooks.handler_opts()
    patterns = {p.kind.pattern: int(p.kind.prog_type) for p in spec.programs if p.kind is not None}
    ids = []
    result = LibbpfResult()
    try:
        for pattern, prog_type in patterns.items():
            hid = lib.libbpf_register_prog_handler(pattern.encode(), prog_type, 0, ctypes.byref(hopts))
            assert hid >= 0, (pattern, hid)
            ids.append(hid)
        for prog in spec.programs:
            obj = open_object(lib, path, None)
            try:
                for other, handle in programs_of(lib, obj):
                    lib.bpf_program__set_autoload(handle, other == prog.name)
                _Hooks.obj, _Hooks.out = obj, result.programs
                lib.bpf_object__load(obj)
                btf = lib.bpf_object__btf(obj)
                if btf and prog.name in result.programs:
                    size = ctypes.c_uint32()
                    raw = lib.btf__raw_data(btf, ctypes.byref(size))
                    result.btf[prog.name] = ctypes.string_at(raw, size.value)
            finally:
                _Hooks.obj = _Hooks.out = None
                lib.bpf_object__close(obj)
    finally:
        for hid in ids:
            lib.libbpf_unregister_prog_handler(hid)
    return result


# --------------------------------------------------------------------------- purebpf side

MAP_FD_BASE = 1000
DATA_FD_BASE = 2000


def purebpf_link(spec: ObjectSpec, ksyms: KsymResolver) -> Tuple[Dict[str, LinkedProgram], Dict[int, str]]:
    """Link every program of ``spec`` with fake fds; returns the programs and fd -> token."""
    maps = {m.name: MAP_FD_BASE + i for i, m in enumerate(spec.maps)}
    data = {d.name: DATA_FD_BASE + i for i, d in enumerate(spec.data_sections)}
    tokens = {fd: f"map:{n}" for n, fd in maps.items()}
    tokens.update({fd: f"data:{n}" for n, fd in data.items()})
    resolver = KernelResolver(maps, data, ksyms)
    reloc = relocate_object(spec)
    relocated = {name: r.instructions for name, r in reloc.programs.items()}
    out = {}
    for prog in spec.programs:
        if reloc.programs[prog.name].errors:
            continue
        out[prog.name] = link_program(spec, prog, relocated, resolver)
    return out, tokens


def libbpf_token(spec: ObjectSpec, name: str) -> str:
    """Which of the object's maps a libbpf map name stands for."""
    if any(m.name == name for m in spec.maps):
        return f"map:{name}"
    best = ""
    for sec in spec.data_sections:
        if name == sec.name or name.endswith(sec.name) or (len(name) == 15 and sec.name.startswith(name)):
            best = sec.name if len(sec.name) > len(best) else best
    return f"data:{best}" if best else f"unknown:{name}"


def compare_insns(spec: ObjectSpec, ours: bytes, tokens: Dict[int, str], theirs: Captured) -> List[str]:
    diffs: List[str] = []
    if len(ours) != len(theirs.insns):
        diffs.append(f"length {len(ours) // 8} != libbpf {len(theirs.insns) // 8} slots")
    i = 0
    n = min(len(ours), len(theirs.insns)) // 8
    while i < n:
        a = ours[i * 8:i * 8 + 8]
        b = theirs.insns[i * 8:i * 8 + 8]
        if a[0] == 0x18 and (a[1] >> 4) in (1, 2) and i + 1 < n:
            fd_a = int.from_bytes(a[4:8], "little", signed=True)
            fd_b = int.from_bytes(b[4:8], "little", signed=True)
            tok_a = tokens.get(fd_a, f"fd{fd_a}")
            tok_b = libbpf_token(spec, theirs.map_names.get(fd_b, f"fd{fd_b}"))
            if a[:4] != b[:4] or tok_a != tok_b:
                diffs.append(f"slot {i}: {a[:4].hex()} {tok_a} != libbpf {b[:4].hex()} {tok_b}")
            a2, b2 = ours[i * 8 + 8:i * 8 + 16], theirs.insns[i * 8 + 8:i * 8 + 16]
            if a2 != b2:
                diffs.append(f"slot {i + 1}: {a2.hex()} != libbpf {b2.hex()}")
            i += 2
            continue
        if a != b:
            diffs.append(f"slot {i}: {a.hex()} != libbpf {b.hex()}")
        i += 1
    return diffs


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


_CACHE: Dict[str, Tuple[ObjectSpec, LibbpfResult]] = {}


def _libbpf_for(path: Path) -> Tuple[ObjectSpec, LibbpfResult]:
    key = str(path)
    if key not in _CACHE:
        spec = ObjectSpec.from_file(key)
        _CACHE[key] = (spec, libbpf_capture(path, spec))
    return _CACHE[key]


def _little(paths: List[Path]) -> List[Path]:
    return [p for p in paths if ObjectSpec.from_file(str(p)).byteorder == "little"]


LITTLE = _little(FIXTURES)

@pytest.mark.parametrize("path", LITTLE, ids=[p.name for p in LITTLE])
def test_linked_programs_match_libbpf(path: Path) -> None:
    needs_root()
    spec, theirs = _libbpf_for(path)
    ours, tokens = purebpf_link(spec, KsymResolver())
    compared = 0
    for name, cap in theirs.programs.items():
        assert name in ours, f"libbpf prepared {name}, purebpf refused it"
        mine = ours[name]
        diffs = compare_insns(spec, mine.insns, tokens, cap)
        assert not diffs, f"{path.name}:{name}: " + "; ".join(diffs[:20])
        assert mine.func_info == cap.func_info, f"{name}: func_info differs"
        assert mine.line_info == cap.line_info, f"{name}: line_info differs"
        if cap.func_info:
            assert mine.func_info_rec_size == cap.func_info_rec_size
            assert mine.line_info_rec_size == cap.line_info_rec_size
        compared += 1
    # every program of every fixture reaches libbpf's load step on this kernel
    assert compared == len(spec.programs), \
        f"libbpf prepared only {sorted(theirs.programs)} of {path.name}"


@pytest.mark.parametrize("path", LITTLE, ids=[p.name for p in LITTLE])
def test_kernel_btf_matches_libbpf(path: Path) -> None:
    needs_root()
    spec, theirs = _libbpf_for(path)
    assert theirs.btf, f"libbpf loaded none of {path.name}'s programs"
    ours = kernel_btf_bytes(spec)
    for name, raw in theirs.btf.items():
        assert ours == raw, f"{path.name} (loading {name}): BTF differs from libbpf's"


KCONFIG_USERS = [p for p in LITTLE
                 if any(e.kind == "kconfig" for e in ObjectSpec.from_file(str(p)).externs)]


@pytest.mark.parametrize("path", KCONFIG_USERS, ids=[p.name for p in KCONFIG_USERS])
def test_kconfig_map_matches_libbpf(path: Path) -> None:
    needs_root()
    spec, theirs = _libbpf_for(path)
    cap = next(iter(theirs.programs.values()))
    values = {libbpf_token(spec, n): v for n, v in cap.map_values.items()}
    assert "data:.kconfig" in values
    assert kconfig_data(spec) == values["data:.kconfig"]


def test_comparison_is_not_vacuous() -> None:
    """A wrong map fd or a missing subprogram is reported."""
    needs_root()
    path = ROOT / "fixtures" / "obj" / "subprogs.bpf.o"
    spec, theirs = _libbpf_for(path)
    ours, tokens = purebpf_link(spec, KsymResolver())
    name, cap = next((n, c) for n, c in theirs.programs.items() if ours[n].subprograms)
    truncated = ours[name].insns[:-8]
    assert compare_insns(spec, truncated, tokens, cap)
    path = ROOT / "fixtures" / "obj" / "maps.bpf.o"
    spec, theirs = _libbpf_for(path)
    ours, tokens = purebpf_link(spec, KsymResolver())
    fds = sorted(tokens)
    swapped = {fd: tokens[fds[(i + 1) % len(fds)]] for i, fd in enumerate(fds)}  # every map renamed
    assert all(compare_insns(spec, ours[n].insns, swapped, c)
               for n, c in theirs.programs.items())
