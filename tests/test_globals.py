"""Global data views (purebpf.maps.GlobalData) over fixtures/obj/globals.bpf.o.

Oracles: the section bytes and symbol offsets from llvm-objcopy-19 /
llvm-readelf-19 decoded here with struct (open mode), the kernel's map
(BPF_MAP_LOOKUP_ELEM key 0, BPF_OBJ_GET_INFO_BY_FD) after load, and a tiny
XDP program run with BPF_PROG_TEST_RUN that copies one global to another.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from purebpf.errors import KernelError, NotFoundError, StateError
from purebpf.maps import (GlobalData, Map, data_section_is_mmapable, internal_map_name,
                          libbpf_object_name)
from purebpf.spec import ObjectSpec
from purebpf.uapi import MapFlags

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "fixtures" / "obj" / "globals.bpf.o"

READELF = shutil.which("llvm-readelf-19")
OBJCOPY = shutil.which("llvm-objcopy-19")
needs_tools = pytest.mark.skipif(not (READELF and OBJCOPY), reason="needs llvm-19 tools")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

#: C types of the integer globals in fixtures/src/globals.bpf.c, as struct formats.
INT_FORMATS = {
    "cfg_verdict": "=I", "cfg_magic": "=Q", "cfg_static_bias": "=i",
    "packets_seen": "=Q", "data_small": "=h", "static_counter": "=I",
    "ctr_runs": "=Q", "ctr_drops": "=Q", "table_shift": "=H",
    "bytes_seen": "=Q", "static_bss_total": "=Q", "count_packets.local_static_calls": "=I",
}
#: Arrays of 1-byte integers, read as bytes.
CHAR_ARRAYS = {"cfg_name", "data_bytes"}


@pytest.fixture(scope="module")
def spec() -> ObjectSpec:
    return ObjectSpec.from_file(OBJ)


def elf_symbols() -> Dict[str, Tuple[str, int, int]]:
    """name -> (section name, offset, size) of OBJECT symbols, per llvm-readelf."""
    assert READELF
    sections: Dict[int, str] = {}
    out = subprocess.run([READELF, "-S", "--wide", str(OBJ)], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[") and "]" in line:
            idx, rest = line[1:].split("]", 1)
            if idx.strip().isdigit() and rest.split():
                sections[int(idx)] = rest.split()[0]
    syms: Dict[str, Tuple[str, int, int]] = {}
    out = subprocess.run([READELF, "-s", "--wide", str(OBJ)], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        cols = line.split()
        if len(cols) == 8 and cols[3] == "OBJECT" and cols[6].isdigit():
            syms[cols[7]] = (sections[int(cols[6])], int(cols[1], 16), int(cols[2], 0))
    return syms


def section_bytes(name: str, size: int) -> bytes:
    """The section's contents per llvm-objcopy (zeros for NOBITS .bss)."""
    assert OBJCOPY
    if name == ".bss":
        return bytes(size)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sec.bin"
        subprocess.run([OBJCOPY, f"--dump-section={name}={out}", str(OBJ), str(Path(tmp) / "o")],
                       check=True, capture_output=True)
        return out.read_bytes()


# -- open mode (no kernel) -------------------------------------------------------------


@needs_tools
def test_open_values_match_elf(spec: ObjectSpec) -> None:
    syms = elf_symbols()
    checked = 0
    for sec in spec.data_sections:
        if sec.kind not in ("data", "rodata", "bss"):
            continue
        view = GlobalData(sec, spec.btf)
        raw = section_bytes(sec.name, sec.size)
        assert bytes(view.raw) == raw[:sec.size]
        for var in sec.variables:
            if var.name not in syms:
                continue
            sec_name, offset, size = syms[var.name]
            assert sec_name == sec.name
            if var.name in INT_FORMATS:
                expected = struct.unpack_from(INT_FORMATS[var.name], raw, offset)[0]
                assert view[var.name] == expected, var.name
                checked += 1
            elif var.name in CHAR_ARRAYS:
                assert view[var.name] == raw[offset:offset + size]
                checked += 1
            else:
                assert view.get_bytes(var.name) == raw[offset:offset + size]
    assert checked >= 12
    rodata = GlobalData(spec.data_section(".rodata"), spec.btf)
    assert rodata["cfg_static_bias"] == -7
    assert rodata["cfg_name"].rstrip(b"\0") == b"purebpf"


def test_open_writes_edit_initial_bytes(spec: ObjectSpec) -> None:
    sec = spec.data_section(".data")
    view = GlobalData(sec, spec.btf)
    off = sec.variable("data_small").offset
    view["data_small"] = -300
    assert bytes(view.raw[off:off + 2]) == struct.pack("=h", -300)
    assert view["data_small"] == -300
    with pytest.raises(ValueError, match="out of range"):
        view["data_small"] = 40000
    with pytest.raises(ValueError, match="out of range"):
        view["static_counter"] = -1
    with pytest.raises(TypeError):
        view["packets_seen"] = "many"
    view["data_bytes"] = b"\x09\x08"
    assert view["data_bytes"] == b"\x09\x08\x00\x00\x00\x00"
    with pytest.raises(ValueError):
        view["data_bytes"] = b"1234567"
    with pytest.raises(NotFoundError) as exc:
        view["nope"]
    assert isinstance(exc.value, LookupError)
    assert sec.data[off:off + 2] == struct.pack("=h", -2)  # the spec is untouched
    ro = GlobalData(spec.data_section(".rodata"), spec.btf)
    ro["cfg_name"] = "hello"
    assert ro["cfg_name"] == b"hello" + bytes(11)
    ro["cfg_limits"] = struct.pack("=IIB3x", 1, 2, 0)
    with pytest.raises(ValueError):
        ro["cfg_limits"] = b"short"


def test_names_and_flags(spec: ObjectSpec) -> None:
    assert libbpf_object_name(str(OBJ)) == "globals"
    assert internal_map_name("globals", ".rodata") == "globals.rodata"
    assert internal_map_name("globals", ".bss") == "globals.bss"
    assert internal_map_name("averyveryverylongname", ".data") == "averyver.data"  # 8 + 5: prefix cut to 16 - 7 - 1
    assert internal_map_name("globals", ".data.counters") == ".data.counters"
    assert internal_map_name("globals", ".rodata.str1.1") == ".rodata.str1.1"
    assert data_section_is_mmapable(spec.data_section(".bss"))
    assert not data_section_is_mmapable(spec.data_section(".rodata.str1.1"))


# -- live (kernel) -------------------------------------------------------------------------


@pytest.fixture
def views(spec: ObjectSpec) -> Iterator[Dict[str, GlobalData]]:
    out = {s.name: GlobalData(s, spec.btf) for s in spec.data_sections if s.size}
    try:
        yield out
    finally:
        for v in out.values():
            v.close()


@needs_root
@pytest.mark.kernel
def test_create_map_writes_initial_bytes(spec: ObjectSpec, views: Dict[str, GlobalData]) -> None:
    views[".rodata"]["cfg_verdict"] = 1
    views[".data"]["packets_seen"] = 77
    for name, view in views.items():
        before = bytes(view.raw)
        live = view.create_map(name=internal_map_name("globals", name))
        assert live.lookup(0) == before
        info = live.info()
        assert info.name == internal_map_name("globals", name)
        assert info.key_size == 4 and info.value_size == view.section.size
        assert info.max_entries == 1
        expected = MapFlags.RDONLY_PROG if view.readonly else 0
        if data_section_is_mmapable(view.section):
            expected |= MapFlags.MMAPABLE
        assert info.map_flags == expected
        assert view.mmapped == bool(expected & MapFlags.MMAPABLE)
    assert views[".rodata"]["cfg_verdict"] == 1
    assert views[".data"]["packets_seen"] == 77


@needs_root
@pytest.mark.kernel
def test_live_data_shared_with_map(views: Dict[str, GlobalData]) -> None:
    bss, data = views[".bss"], views[".data"]
    bss.create_map(name="globals.bss")
    data.create_map(name="globals.data")
    bss["bytes_seen"] = 123456789
    off = bss.variable("bytes_seen").offset
    raw = bss.map.lookup(0)
    assert isinstance(raw, bytes)
    assert raw[off:off + 8] == struct.pack("=Q", 123456789)
    # a write through the map shows in the mmap'ed view
    whole = bytearray(data.map.lookup(0))  # type: ignore[arg-type]
    doff = data.variable("data_small").offset
    whole[doff:doff + 2] = struct.pack("=h", -1234)
    data.map.update(0, bytes(whole))
    assert data["data_small"] == -1234
    data.raw[doff:doff + 2] = struct.pack("=h", 5)  # the memoryview is the shared memory
    assert data.map.lookup(0)[doff:doff + 2] == struct.pack("=h", 5)  # type: ignore[index]


@needs_root
@pytest.mark.kernel
def test_rodata_frozen_after_load(views: Dict[str, GlobalData]) -> None:
    ro = views[".rodata"]
    ro["cfg_magic"] = 5
    ro.create_map(name="globals.rodata")
    with pytest.raises(StateError, match="read-only after load"):
        ro["cfg_magic"] = 6
    with pytest.raises(StateError):
        ro.set_bytes("cfg_verdict", b"\0\0\0\0")
    assert ro.raw.readonly
    with pytest.raises(KernelError) as exc:
        ro.map.update(0, bytes(ro.section.size))
    assert exc.value.errno == errno.EPERM
    assert ro["cfg_magic"] == 5
    strs = views[".rodata.str1.1"]
    strs.create_map(name=".rodata.str1.1")
    assert not strs.mmapped
    assert strs.read_bytes() == b"literal-string\0"
    assert strs.raw.tobytes() == b"literal-string\0"
    assert strs.raw.readonly


@needs_root
@pytest.mark.kernel
def test_close_and_no_leaks(spec: ObjectSpec) -> None:
    before = set(os.listdir("/proc/self/fd"))
    view = GlobalData(spec.data_section(".data"), spec.btf)
    live = view.create_map(name="globals.data")
    map_id = live.id
    view.close()
    view.close()
    assert live.closed
    with pytest.raises(StateError):
        view["packets_seen"]
    with pytest.raises(StateError):
        view.map
    assert set(os.listdir("/proc/self/fd")) == before
    with pytest.raises(KernelError) as exc:
        Map.from_id(map_id)
    assert exc.value.errno == errno.ENOENT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _ld_map_value(dst: int, map_fd: int, offset: int) -> bytes:
    """ld_imm64 with src_reg BPF_PSEUDO_MAP_VALUE: the address of map_fd's value + offset."""
    return _insn(0x18, dst, 2, 0, map_fd) + _insn(0, 0, 0, 0, offset)


@needs_root
@pytest.mark.kernel
def test_program_sees_user_writes_and_user_sees_program_writes(
        spec: ObjectSpec, views: Dict[str, GlobalData]) -> None:
    from purebpf.syscall import prog_load, prog_test_run
    from purebpf.uapi import ProgType

    bss, ro = views[".bss"], views[".rodata"]
    ro["cfg_magic"] = 0x5EED
    ro.create_map(name="globals.rodata")
    bss.create_map(name="globals.bss")
    bss["bytes_seen"] = 4242
    src = bss.variable("bytes_seen").offset
    dst = bss.variable("static_bss_total").offset
    magic = ro.variable("cfg_magic").offset
    last = bss.variable("last").offset + 8  # last.sum
    bss_fd, ro_fd = bss.map.fileno(), ro.map.fileno()
    insns = b"".join([
        _ld_map_value(1, bss_fd, src),
        _insn(0x79, 2, 1, 0),          # r2 = *(u64 *)(r1 + 0)
        _ld_map_value(3, bss_fd, dst),
        _insn(0x7B, 3, 2, 0),          # *(u64 *)(r3 + 0) = r2
        _ld_map_value(4, ro_fd, magic),
        _insn(0x79, 5, 4, 0),          # r5 = cfg_magic
        _ld_map_value(6, bss_fd, last),
        _insn(0x7B, 6, 5, 0),          # last.sum = r5
        _insn(0xB7, 0, 0, 0, 2),       # r0 = XDP_PASS
        _insn(0x95),
    ])
    prog, _log = prog_load(ProgType.XDP, insns, "GPL", name="copy_globals")
    with prog:
        result = prog_test_run(prog, data_in=bytes(64))
    assert result.retval == 2
    assert bss["static_bss_total"] == 4242
    assert bss.get_bytes("last")[8:16] == struct.pack("=Q", 0x5EED)


@needs_root
@pytest.mark.kernel
def test_close_with_a_view_still_held(spec: ObjectSpec) -> None:
    before = set(os.listdir("/proc/self/fd"))
    view = GlobalData(spec.data_section(".bss"), spec.btf)
    view.create_map(name="globals.bss")
    held = view.raw
    held[0:4] = b"\x01\x02\x03\x04"
    view.close()  # must not raise although the memory is still exported
    with pytest.raises(StateError):
        view.raw
    del held  # the mapping (and its descriptor) go with the last view of it
    import gc

    gc.collect()
    assert set(os.listdir("/proc/self/fd")) == before


@needs_root
@pytest.mark.kernel
def test_integer_arrays_read_and_write_as_lists() -> None:
    """``__u32 bss_histogram[16]`` and ``const volatile __u32 table_sizes[4]`` are lists
    of ints; the expected values come from the fixture's C source and the program's
    bucketing rule (``len >> table_shift``, capped at 15)."""
    from purebpf.object import open_object

    with open_object(str(OBJ)) as opened:
        tables = opened.data_section(".rodata.tables")
        assert tables["table_sizes"] == [64, 128, 256, 512]  # the C initializer
        tables["table_sizes"] = (1, 2, 3, 4)
        assert tables.get_bytes("table_sizes") == struct.pack("=4I", 1, 2, 3, 4)
        with pytest.raises(ValueError, match="holds 4 integers, got 3"):
            tables["table_sizes"] = [1, 2, 3]
        with pytest.raises(ValueError, match="4-byte unsigned"):
            tables["table_sizes"] = [1, 2, 3, -4]
        tables["table_shift"] = 5
        with opened.load() as obj:
            prog = obj.programs["count_packets"]
            for size, times in ((64, 3), (100, 2), (1000, 1)):
                prog.test_run(bytes(size), repeat=times)
            histogram = obj.bss["bss_histogram"]
            expected = [0] * 16
            for size, times in ((64, 3), (100, 2), (1000, 1)):
                expected[min(size >> 5, 15)] += times
            assert histogram == expected
            assert obj.bss.get_bytes("bss_histogram") == struct.pack("=16I", *expected)
            obj.bss["bss_histogram"] = list(range(16))
            assert obj.bss.get_bytes("bss_histogram") == struct.pack("=16I", *range(16))
            # byte arrays stay bytes
            assert obj.data["data_bytes"] == bytes([1, 2, 3, 4, 5, 6])
