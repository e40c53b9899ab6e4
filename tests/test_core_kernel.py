"""CO-RE against the running kernel's BTF (/sys/kernel/btf/vmlinux).

Expected layouts come from libbpf.so.1 (ctypes): ``btf__load_vmlinux_btf``,
then member offsets walked over libbpf's ``struct btf_type`` / ``btf_member``
records, ``btf__resolve_size`` and ``btf_enum`` values -- not from purebpf.
With root, the program is also loaded by libbpf, run, and its output compared
with what the test process knows about itself (pid, tgid, parent, comm).
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from purebpf.core_reloc import CoreExplanation, load_target_btf, relocate_object
from purebpf.spec import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "core" / "obj"
VMLINUX = "/sys/kernel/btf/vmlinux"

pytestmark = pytest.mark.skipif(not os.path.exists(VMLINUX),
                                reason="kernel feature missing: /sys/kernel/btf/vmlinux")

BTF_KIND_STRUCT, BTF_KIND_ENUM = 4, 6


class LibbpfBtf:
    """Just enough of libbpf's BTF API to find member offsets and enum values."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libbpf.so.1")
        vp = ctypes.c_void_p
        lib.btf__load_vmlinux_btf.restype = vp
        lib.btf__find_by_name_kind.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__find_by_name_kind.restype = ctypes.c_int32
        lib.btf__type_by_id.argtypes = [vp, ctypes.c_uint32]
        lib.btf__type_by_id.restype = vp
        lib.btf__name_by_offset.argtypes = [vp, ctypes.c_uint32]
        lib.btf__name_by_offset.restype = ctypes.c_char_p
        lib.btf__resolve_size.argtypes = [vp, ctypes.c_uint32]
        lib.btf__resolve_size.restype = ctypes.c_int64
        lib.btf__free.argtypes = [vp]
        self.lib = lib
        self.btf = lib.btf__load_vmlinux_btf()
        assert self.btf

    def _type(self, tid: int) -> Tuple[int, int, int, int]:
        """(name_off, kind, vlen, kflag) and the address of the trailer."""
        p = self.lib.btf__type_by_id(self.btf, tid)
        name_off, info, _ = struct.unpack("<III", ctypes.string_at(p, 12))
        return name_off, (info >> 24) & 0x1F, info & 0xFFFF, info >> 31

    def _members(self, tid: int) -> List[Tuple[str, int, int]]:
        p = self.lib.btf__type_by_id(self.btf, tid)
        _, kind, vlen, kflag = self._type(tid)
        raw = ctypes.string_at(p + 12, 12 * vlen)
        out = []
        for i in range(vlen):
            name_off, mtype, off = struct.unpack_from("<III", raw, 12 * i)
            out.append((self.lib.btf__name_by_offset(self.btf, name_off).decode(), mtype,
                        off & 0xFFFFFF if kflag else off))
        return out

    def _skip(self, tid: int) -> int:
        while True:
            p = self.lib.btf__type_by_id(self.btf, tid)
            _, kind, _, _ = self._type(tid)
            if kind not in (8, 9, 10, 11, 18):
                return tid
            tid = struct.unpack("<I", ctypes.string_at(p + 8, 4))[0]

    def find_member(self, tid: int, name: str) -> Optional[Tuple[int, int]]:
        """(bit offset, member type id), searching anonymous members too."""
        for mname, mtype, off in self._members(self._skip(tid)):
            if mname == name:
                return off, mtype
            if not mname:
                inner = self._skip(mtype)
                if self._type(inner)[1] in (4, 5):
                    found = self.find_member(inner, name)
                    if found is not None:
                        return off + found[0], found[1]
        return None

    def struct_id(self, name: str) -> int:
        tid = self.lib.btf__find_by_name_kind(self.btf, name.encode(), BTF_KIND_STRUCT)
        assert tid > 0, name
        return int(tid)

    def offset_of(self, struct_name: str, path: str) -> Optional[int]:
        tid = self.struct_id(struct_name)
        bits = 0
        for part in path.split("."):
            found = self.find_member(tid, part)
            if found is None:
                return None
            bits += found[0]
            tid = found[1]
        return bits // 8

    def size_of_member(self, struct_name: str, path: str) -> int:
        tid = self.struct_id(struct_name)
        for part in path.split("."):
            found = self.find_member(tid, part)
            assert found is not None
            tid = found[1]
        return int(self.lib.btf__resolve_size(self.btf, tid))

    def size_of_struct(self, name: str) -> int:
        return int(self.lib.btf__resolve_size(self.btf, self.struct_id(name)))

    def enum_value(self, enum_name: str, value_name: str) -> Optional[int]:
        tid = self.lib.btf__find_by_name_kind(self.btf, enum_name.encode(), BTF_KIND_ENUM)
        assert tid > 0
        p = self.lib.btf__type_by_id(self.btf, tid)
        _, _, vlen, _ = self._type(tid)
        raw = ctypes.string_at(p + 12, 8 * vlen)
        for i in range(vlen):
            name_off, val = struct.unpack_from("<Ii", raw, 8 * i)
            if self.lib.btf__name_by_offset(self.btf, name_off).decode() == value_name:
                return val
        return None


@lru_cache(maxsize=None)
def kernel_explanations() -> Tuple[CoreExplanation, ...]:
    spec = ObjectSpec.from_file(str(OBJ / "kernel.bpf.o"))
    result = relocate_object(spec)  # default target: the running kernel
    assert not result.errors, [str(e) for e in result.errors]
    return result.explanations


def test_kernel_struct_offsets_match_libbpf_parse() -> None:
    oracle = LibbpfBtf()
    checked = 0
    for e in kernel_explanations():
        path = e.access.split("::", 1)[-1]
        if e.kind == 0:
            assert e.new_value == oracle.offset_of("task_struct", path), e.access
        elif e.kind == 1:
            assert e.new_value == oracle.size_of_member("task_struct", path), e.access
        elif e.kind == 2:
            want = oracle.offset_of("task_struct", path) is not None
            assert e.new_value == int(want), e.access
        elif e.kind == 9:
            assert e.new_value == oracle.size_of_struct("task_struct"), e.access
        elif e.kind in (10, 11):
            value = oracle.enum_value("bpf_func_id", path.rsplit("___", 1)[0])
            assert e.new_value == (int(value is not None) if e.kind == 10 else value), e.access
        else:
            continue
        checked += 1
    assert checked >= 15


def test_type_matches_on_kernel_types() -> None:
    by_access = {e.access: e for e in kernel_explanations() if e.kind == 12}
    # struct list_head { struct list_head *next, *prev; } in every kernel
    assert by_access["struct list_head___k"].new_value == 1
    assert by_access["struct list_head___bad"].new_value == 0
    reason = by_access["struct list_head___bad"].candidates[0].reason
    assert "member `next`" in reason and "struct list_head *" in reason, reason


def test_candidate_search_is_lazy_on_vmlinux() -> None:
    """Relocating must not decode every vmlinux type (only a few named ones)."""
    target = load_target_btf()
    spec = ObjectSpec.from_file(str(OBJ / "kernel.bpf.o"))
    relocate_object(spec, target)
    decoded = len(getattr(target.main, "_types", {}))
    assert 0 < decoded < 2000, decoded


def test_kernel_run_reports_this_process() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load and run BPF programs")
    from test_core_libbpf import RunOpts, open_object, programs_of, shared_libbpf

    lib = shared_libbpf()
    obj = open_object(lib, OBJ / "kernel.bpf.o", None)
    try:
        assert lib.bpf_object__load(obj) == 0
        bss = None
        m = lib.bpf_object__next_map(obj, None)
        while m:
            if lib.bpf_map__name(m).decode().endswith(".bss"):
                bss = m
            m = lib.bpf_object__next_map(obj, m)
        assert bss is not None
        (_, prog), = programs_of(lib, obj)
        opts = RunOpts(sz=ctypes.sizeof(RunOpts))
        assert lib.bpf_prog_test_run_opts(lib.bpf_program__fd(prog), ctypes.byref(opts)) == 0
        out = ctypes.create_string_buffer(20 * 8 + 16)
        key = ctypes.c_uint32(0)
        assert lib.bpf_map_lookup_elem(lib.bpf_map__fd(bss), ctypes.byref(key), out) == 0
    finally:
        lib.bpf_object__close(obj)
    vals = struct.unpack("<20Q", out.raw[:160])
    names = ("off_pid off_tgid off_comm off_flags off_state off_exec_start off_vruntime off_parent "
             "sz_comm sz_state has_state_old has_new_state pid tgid parent_tgid lh_matches "
             "lh_bad_matches task_size helper_id no_helper_exists").split()
    got = dict(zip(names, vals))
    assert got["pid"] == threading.get_native_id()
    assert got["tgid"] == os.getpid()
    assert got["parent_tgid"] == os.getppid()
    comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_bytes().strip()
    assert out.raw[160:].split(b"\0")[0] == comm
    # and the relocated constants the kernel ran with are purebpf's
    ours = {e.access: e.new_value for e in kernel_explanations() if e.kind == 0}
    assert got["off_pid"] == ours["struct task_struct___k::pid"]
    assert got["off_exec_start"] == ours["struct task_struct___k::se.exec_start"]
    assert (got["has_state_old"], got["has_new_state"], got["helper_id"]) == (0, 1, 1)
