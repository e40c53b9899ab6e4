"""CO-RE differential test: purebpf's relocated instructions vs libbpf.so.1's.

libbpf (1.1, through ctypes) opens each fixture with ``btf_custom_path`` set
to the target BTF.  A custom SEC() handler registered for the fixture's
section captures, in its ``prog_prepare_load_fn`` callback, the instructions
libbpf is about to hand to the kernel -- CO-RE relocations applied,
subprograms appended, maps resolved -- and aborts the load, so no program
ever reaches the verifier.  Every slot is compared with purebpf's output,
except the fields libbpf fills in later stages (map fds / global data
addresses in ld_imm64, bpf-to-bpf call offsets).

The helpers here are reused by the other CO-RE tests (runtime check, bench).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import pytest

from purebpf.btf import Btf
from purebpf.core_reloc import relocate_object
from purebpf.insn import decode, encode, format_instruction
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "fixtures" / "core"
OBJ = CORE / "obj"

BPF_PROG_TYPE_RAW_TRACEPOINT = 17


class OpenOpts(ctypes.Structure):
    """``struct bpf_object_open_opts`` of libbpf 1.1 (<bpf/libbpf.h>)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_stub", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_char_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


PREPARE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long)


class HandlerOpts(ctypes.Structure):
    """``struct libbpf_prog_handler_opts``."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("cookie", ctypes.c_long),
        ("prog_setup_fn", ctypes.c_void_p),
        ("prog_prepare_load_fn", PREPARE_FN),
        ("prog_attach_fn", ctypes.c_void_p),
    ]


class RunOpts(ctypes.Structure):
    """``struct bpf_test_run_opts``."""

    _fields_ = [
        ("sz", ctypes.c_size_t), ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32), ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int), ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32),
    ]


def libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    vp = ctypes.c_void_p
    lib.bpf_object__open_file.restype = vp
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.POINTER(OpenOpts)]
    lib.bpf_object__load.argtypes = [vp]
    lib.bpf_object__close.argtypes = [vp]
    lib.bpf_object__next_program.restype = vp
    lib.bpf_object__next_program.argtypes = [vp, vp]
    lib.bpf_object__next_map.restype = vp
    lib.bpf_object__next_map.argtypes = [vp, vp]
    lib.bpf_map__name.restype = ctypes.c_char_p
    lib.bpf_map__name.argtypes = [vp]
    lib.bpf_map__fd.argtypes = [vp]
    lib.bpf_map__set_initial_value.argtypes = [vp, vp, ctypes.c_size_t]
    lib.bpf_map_lookup_elem.argtypes = [ctypes.c_int, vp, vp]
    lib.bpf_program__name.restype = ctypes.c_char_p
    lib.bpf_program__name.argtypes = [vp]
    lib.bpf_program__set_autoload.argtypes = [vp, ctypes.c_bool]
    lib.bpf_program__insns.restype = vp
    lib.bpf_program__insns.argtypes = [vp]
    lib.bpf_program__insn_cnt.restype = ctypes.c_size_t
    lib.bpf_program__insn_cnt.argtypes = [vp]
    lib.bpf_program__fd.argtypes = [vp]
    lib.bpf_prog_test_run_opts.argtypes = [ctypes.c_int, ctypes.POINTER(RunOpts)]
    lib.libbpf_register_prog_handler.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                                 ctypes.POINTER(HandlerOpts)]
    lib.libbpf_unregister_prog_handler.argtypes = [ctypes.c_int]
    lib.libbpf_set_print.restype = vp
    lib.libbpf_set_print.argtypes = [vp]
    lib.libbpf_set_print(None)
    return lib


def open_object(lib: ctypes.CDLL, path: Path, target: Optional[Path]) -> int:
    opts = OpenOpts(sz=ctypes.sizeof(OpenOpts))
    if target is not None:
        opts.btf_custom_path = str(target).encode()
    obj = lib.bpf_object__open_file(str(path).encode(), ctypes.byref(opts))
    if not obj:
        raise OSError(ctypes.get_errno(), f"libbpf cannot open {path}")
    return int(obj)


def programs_of(lib: ctypes.CDLL, obj: int) -> List[Tuple[str, int]]:
    out = []
    prog = lib.bpf_object__next_program(obj, None)
    while prog:
        out.append((lib.bpf_program__name(prog).decode(), prog))
        prog = lib.bpf_object__next_program(obj, prog)
    return out


class _Capture:
    """Custom SEC() handlers that capture relocated instructions and abort the load.

    libbpf 1.1 corrupts its heap when its custom-handler array shrinks to zero
    entries and a handler is registered again, so one sentinel handler (for a
    section name no object uses) is registered once and never removed; the
    capturing handlers are registered only for the duration of a capture, and
    libbpf's own SEC() handling is intact outside of it.
    """

    lib: Optional[ctypes.CDLL] = None
    capture: Optional[Dict[str, bytes]] = None
    keep: List[object] = []

    @classmethod
    def library(cls) -> ctypes.CDLL:
        if cls.lib is None:
            lib = libbpf()

            @PREPARE_FN
            def prepare(prog: int, opts: int, cookie: int) -> int:
                if cls.capture is None:
                    return 0
                name = lib.bpf_program__name(prog).decode()
                cnt = lib.bpf_program__insn_cnt(prog)
                cls.capture[name] = ctypes.string_at(lib.bpf_program__insns(prog), cnt * 8)
                return -125  # -ECANCELED: stop here, never load

            hopts = HandlerOpts(sz=ctypes.sizeof(HandlerOpts), prog_prepare_load_fn=prepare)
            sentinel = lib.libbpf_register_prog_handler(b"purebpf_test_sentinel", 0, 0, ctypes.byref(hopts))
            assert sentinel >= 0, sentinel
            cls.keep += [prepare, hopts]
            cls.lib = lib
        return cls.lib

    @classmethod
    def register(cls, patterns: Dict[str, int]) -> List[int]:
        """Install capturing handlers for ``{section pattern: prog type}``."""
        lib = cls.library()
        hopts = cls.keep[1]
        ids = []
        for pattern, prog_type in patterns.items():
            hid = lib.libbpf_register_prog_handler(pattern.encode(), prog_type, 0, ctypes.byref(hopts))  # type: ignore[arg-type]
            assert hid >= 0, (pattern, hid)
            ids.append(hid)
        return ids

    @classmethod
    def unregister(cls, ids: List[int]) -> None:
        lib = cls.library()
        for hid in ids:
            lib.libbpf_unregister_prog_handler(hid)


def libbpf_relocated(path: Path, target: Optional[Path],
                     patterns: Optional[Dict[str, int]] = None) -> Dict[str, bytes]:
    """Each program's instructions as libbpf would load them (CO-RE applied).

    ``patterns`` maps the SEC() patterns of the object to program types
    (default: the fixtures' ``raw_tp``).
    """
    lib = _Capture.library()
    ids = _Capture.register(patterns or {"raw_tp+": BPF_PROG_TYPE_RAW_TRACEPOINT})
    captured: Dict[str, bytes] = {}
    _Capture.capture = captured
    try:
        names = [n for n, _ in programs_of_path(lib, path, target)]
        for name in names:
            obj = open_object(lib, path, target)
            try:
                for other, prog in programs_of(lib, obj):
                    lib.bpf_program__set_autoload(prog, other == name)
                lib.bpf_object__load(obj)
            finally:
                lib.bpf_object__close(obj)
    finally:
        _Capture.capture = None
        _Capture.unregister(ids)
    return captured


def shared_libbpf() -> ctypes.CDLL:
    """The process-wide libbpf handle (libbpf's own SEC() handlers in effect)."""
    return _Capture.library()


def programs_of_path(lib: ctypes.CDLL, path: Path, target: Optional[Path]) -> List[Tuple[str, int]]:
    obj = open_object(lib, path, target)
    try:
        return [(n, 0) for n, _ in programs_of(lib, obj)]
    finally:
        lib.bpf_object__close(obj)


def slots(code: bytes) -> List[bytes]:
    return [code[i:i + 8] for i in range(0, len(code), 8)]


def compare_program(ours: Sequence[object], theirs: bytes, start: int = 0,
                    elf_sites: Sequence[int] = ()) -> List[str]:
    """Differences between our instructions and libbpf's slots starting at ``start``.

    Skipped: the ELF relocation sites of the program (``elf_sites``, slots
    relative to the program: map/global/extern ld_imm64 and calls, which libbpf
    fills in after CO-RE), any other ld_imm64 that libbpf turned into a map
    reference (src != 0), and the immediate of bpf-to-bpf calls.
    """
    mine = slots(encode(list(ours)))  # type: ignore[arg-type]
    lib_slots = slots(theirs)[start:start + len(mine)]
    skip = set()
    for site in elf_sites:
        skip.update((site, site + 1) if mine[site][0] == 0x18 else (site,))
    diffs: List[str] = []
    skip_next = False
    for i, (a, b) in enumerate(zip(mine, lib_slots)):
        if skip_next or i in skip:
            skip_next = False
            continue
        if b[0] == 0x18 and (b[1] >> 4) != 0:   # ld_imm64 with a pseudo src (map, map value)
            skip_next = True
            continue
        if b[0] == 0x85 and (b[1] >> 4) == 1:   # bpf-to-bpf call
            if a[:4] != b[:4]:
                diffs.append(f"slot {start + i}: call {a.hex()} != {b.hex()}")
            continue
        if a != b:
            diffs.append(f"slot {start + i}: purebpf {_show(a)} != libbpf {_show(b)}")
    if len(lib_slots) < len(mine):
        diffs.append(f"libbpf has only {len(lib_slots)} slots from {start}, purebpf {len(mine)}")
    return diffs


def _show(slot: bytes) -> str:
    """One slot, disassembled when it is a whole instruction, else as hex."""
    if slot[0] == 0x18 or len(slot) != 8:
        return slot.hex()
    return f"{format_instruction(decode(slot)[0])} ({slot.hex()})"


def subprogram_starts(theirs: bytes, main_len: int) -> Dict[int, int]:
    """Map call slot -> callee start slot, for the pseudo calls of libbpf's program."""
    out: Dict[int, int] = {}
    for i, s in enumerate(slots(theirs)):
        if s[0] == 0x85 and (s[1] >> 4) == 1:
            imm = int.from_bytes(s[4:8], "little", signed=True)
            out[i] = i + 1 + imm
    return out


# --------------------------------------------------------------------------- cases

CASES: List[Tuple[str, Optional[str]]] = [
    ("fields.bpf.o", "target_v1.o"),
    ("fields.bpf.o", "target_v2.o"),
    ("kernel.bpf.o", None),          # the running kernel's vmlinux BTF
    ("edge.bpf.o", "target_v1.o"),
]

#: Programs of the fixtures that must be refused (by both libbpf and purebpf).
REFUSED = {"edge.bpf.o": {"ambiguous", "too_far"}}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("libbpf differential test needs root (libbpf creates maps before loading)")


def check_against_libbpf(obj_path: Path, target_path: Optional[Path]) -> Tuple[int, Set[str]]:
    """Relocate with purebpf and libbpf; assert identical code.

    Returns the number of relocations compared and the refused programs.

    A program whose relocation purebpf refuses must be refused by libbpf too
    (libbpf never reaches the load callback for it), and vice versa.
    """
    spec = ObjectSpec.from_file(str(obj_path))
    target = Btf.from_file(str(target_path)) if target_path is not None else None
    ours = relocate_object(spec, target)
    theirs = libbpf_relocated(obj_path, target_path)
    refused = {p.name for p in spec.programs if ours.programs[p.name].errors}
    for prog in spec.programs:  # a subprogram's failure fails every caller
        for rel in prog.relocations:
            if rel.kind.name == "SUBPROG_CALL" and ours.programs[rel.target].errors:
                refused.add(prog.name)
    assert set(theirs) == {p.name for p in spec.programs} - refused, \
        f"libbpf relocated {sorted(theirs)}, purebpf refused {sorted(refused)}"
    checked = 0
    for prog in spec.programs:
        if prog.name in refused:
            continue
        mine = ours.programs[prog.name]
        lib_code = theirs[prog.name]
        diffs = compare_program(mine.instructions, lib_code)
        checked += len(mine.explanations)
        main_slots = len(encode(list(mine.instructions))) // 8
        # libbpf appended the called subprograms; locate each through its call
        calls = subprogram_starts(lib_code, main_slots)
        for rel in prog.relocations:
            if rel.kind.name == "SUBPROG_CALL" and rel.slot in calls:
                sub = ours.programs[rel.target]
                diffs += compare_program(sub.instructions, lib_code, calls[rel.slot])
                checked += len(sub.explanations)
        assert not diffs, f"{prog.name}: " + "; ".join(diffs)
    return checked, refused


@pytest.mark.parametrize("obj_name,target_name", CASES)
def test_relocated_instructions_match_libbpf(obj_name: str, target_name: Optional[str]) -> None:
    needs_root()
    spec = ObjectSpec.from_file(str(OBJ / obj_name))
    checked, refused = check_against_libbpf(OBJ / obj_name, OBJ / target_name if target_name else None)
    assert refused == REFUSED.get(obj_name, set())
    # every CO-RE relocation of the accepted programs was compared, subprograms' included
    assert checked == sum(len(p.core_relos) for p in spec.programs + spec.subprograms
                          if p.name not in refused)


def test_differential_check_detects_unrelocated_code() -> None:
    """The comparison is not vacuous: the unrelocated program differs from libbpf's."""
    needs_root()
    spec = ObjectSpec.from_file(str(OBJ / "fields.bpf.o"))
    theirs = libbpf_relocated(OBJ / "fields.bpf.o", OBJ / "target_v1.o")
    prog = spec.program("core_fields")
    assert len(compare_program(prog.instructions, theirs["core_fields"])) > 20


# --------------------------------------------------------------------------- all fixtures


def _fixture_objects_with_core() -> List[str]:
    out = []
    for path in sorted((ROOT / "fixtures" / "obj").glob("*.bpf.o")):
        try:
            spec = ObjectSpec.from_file(str(path))
        except Exception:  # noqa: BLE001 - another test reports unreadable fixtures
            continue
        if spec.byteorder == "little" and any(p.core_relos for p in spec.programs + spec.subprograms):
            out.append(path.name)
    return out


@pytest.mark.parametrize("obj_name", _fixture_objects_with_core())
def test_project_fixtures_match_libbpf_on_vmlinux(obj_name: str) -> None:
    """Every project fixture with CO-RE records, relocated against the running
    kernel, gives libbpf's instructions for each program libbpf could relocate."""
    needs_root()
    path = ROOT / "fixtures" / "obj" / obj_name
    spec = ObjectSpec.from_file(str(path))
    patterns = {p.kind.pattern: int(p.kind.prog_type) for p in spec.programs if p.kind is not None}
    ours = relocate_object(spec)
    theirs = libbpf_relocated(path, None, patterns)
    compared = 0
    for prog in spec.programs:
        if prog.name not in theirs:
            # libbpf stopped before relocating it (e.g. an extern it cannot resolve)
            continue
        mine = ours.programs[prog.name]
        assert not mine.errors, [str(e) for e in mine.errors]
        diffs = compare_program(mine.instructions, theirs[prog.name],
                                elf_sites=[r.slot for r in prog.relocations])
        calls = subprogram_starts(theirs[prog.name], 0)
        for rel in prog.relocations:
            if rel.kind.name == "SUBPROG_CALL" and rel.slot in calls:
                sub = spec.program(rel.target) if rel.target in {p.name for p in spec.programs} \
                    else next(p for p in spec.subprograms if p.name == rel.target)
                diffs += compare_program(ours.programs[rel.target].instructions, theirs[prog.name],
                                         calls[rel.slot], elf_sites=[r.slot for r in sub.relocations])
        assert not diffs, f"{prog.name}: " + "; ".join(diffs)
        compared += len(mine.explanations)
    assert compared > 0 or not any(p.core_relos for p in spec.programs), \
        f"libbpf relocated none of {obj_name}'s programs with CO-RE records"
