"""The BTF reader (purebpf.btf.Btf) against independent oracles.

Oracles: libbpf.so.1 through ctypes (btf__parse / btf__type_by_id raw words,
btf__find_by_name_kind, btf__resolve_size, btf__align_of, split BTF built
with btf__new_empty_split + btf__add_*), ``bpftool btf dump -j``, the
Construct wire schemas (parity with the fast offset pass), and the C source
of a small test object for readable type names.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.btf import (
    Array,
    Btf,
    BtfKind,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    Volatile,
)
from purebpf.btf import cache as btf_cache
from purebpf.errors import BtfError, NotFoundError, PurebpfError

ROOT = Path(__file__).resolve().parent.parent
LIBBPF_PATH = "/usr/lib/x86_64-linux-gnu/libbpf.so.1"
VMLINUX = "/sys/kernel/btf/vmlinux"
CLANG = shutil.which("clang-19")
BPFTOOL = shutil.which("bpftool")

# A small object exercising every kind clang emits, bitfields, signed enums,
# enum64, packed structs, function pointers, qualifiers, decl tags and CO-RE.
TEST_SOURCE = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
struct inner { int a; char b[3]; };
struct s {
    int x;
    unsigned f1:3, f2:5;
    struct inner in;
    union { int i; float f; } u;
    const volatile u64 *p;
    int (*cb)(void *, int);
    double d;
    char name[16];
    struct inner *arr[2];
    int (*(*fp)(int))[4];
} __attribute__((preserve_access_index));
enum e { A = -1, B = 2 };
enum e64 { C = 0xffffffffffULL, D = 1 };
struct packed_s { char c; int i; } __attribute__((packed));
struct fwd_only;
union fwd_union;
struct holds_fwd { struct fwd_only *f; union fwd_union *u; };
typedef const char *cstr;
int __attribute__((btf_decl_tag("tag1"))) tagged_global = 3;
struct s gs;
enum e ge; enum e64 ge64; struct packed_s gp; struct holds_fwd gh; cstr gstr;
char * __restrict__ grestrict;
static __attribute__((noinline)) int sub(struct s *p) { return p->in.a + p->f2; }
__attribute__((section("tp/syscalls/sys_enter_x"), used)) int prog(struct s *ctx)
{
    int r = __builtin_preserve_field_info(ctx->f2, 0);
    r += __builtin_preserve_type_info(*ctx, 0) + __builtin_preserve_enum_value(*(enum e *)B, 1);
    return sub(ctx) + ctx->x + r + tagged_global + ge + (int)ge64 + gp.i + (gh.f ? 1 : 0)
        + (gstr ? 1 : 0) + (grestrict ? 1 : 0);
}
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


# ----------------------------------------------------------------- objects

@pytest.fixture(scope="session")
def built_objects(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    """The test source compiled little- and big-endian with clang-19."""
    if CLANG is None:
        pytest.skip("clang-19 not installed")
    d = tmp_path_factory.mktemp("btfobj")
    src = d / "kinds.bpf.c"
    src.write_text(TEST_SOURCE)
    out = []
    for target in ("bpf", "bpfeb"):
        obj = d / f"kinds.{target}.o"
        subprocess.run([CLANG, "-g", "-O2", "-target", target, "-c", str(src), "-o", str(obj)],
                       check=True)
        out.append(obj)
    return out


def fixture_objects() -> List[Path]:
    return sorted((ROOT / "fixtures" / "obj").glob("*.o"))


@pytest.fixture(scope="session")
def all_objects(built_objects: List[Path]) -> List[Path]:
    return built_objects + fixture_objects()


def _elf_btf(path: Path) -> bytes:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        assert sec is not None
        return bytes(sec.data())


# ----------------------------------------------------------------- libbpf

class Libbpf:
    """The few libbpf BTF entry points the tests use, through ctypes."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(LIBBPF_PATH, use_errno=True)
        P, U32, S32, CP = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32, ctypes.c_char_p
        sig = {
            "btf__parse": (P, [CP, P]),
            "btf__new": (P, [P, U32]),
            "btf__parse_raw_split": (P, [CP, P]),
            "btf__new_empty_split": (P, [P]),
            "btf__free": (None, [P]),
            "btf__type_cnt": (U32, [P]),
            "btf__type_by_id": (P, [P, U32]),
            "btf__name_by_offset": (CP, [P, U32]),
            "btf__find_by_name_kind": (S32, [P, CP, U32]),
            "btf__resolve_size": (ctypes.c_int64, [P, U32]),
            "btf__align_of": (ctypes.c_int, [P, U32]),
            "btf__raw_data": (P, [P, ctypes.POINTER(U32)]),
            "btf__add_int": (ctypes.c_int, [P, CP, ctypes.c_size_t, ctypes.c_int]),
            "btf__add_struct": (ctypes.c_int, [P, CP, U32]),
            "btf__add_field": (ctypes.c_int, [P, CP, ctypes.c_int, U32, U32]),
            "btf__add_ptr": (ctypes.c_int, [P, ctypes.c_int]),
            "btf__add_typedef": (ctypes.c_int, [P, CP, ctypes.c_int]),
            "btf__add_array": (ctypes.c_int, [P, ctypes.c_int, ctypes.c_int, U32]),
            "btf__add_enum": (ctypes.c_int, [P, CP, U32]),
            "btf__add_enum_value": (ctypes.c_int, [P, CP, ctypes.c_int64]),
            "btf__add_func_proto": (ctypes.c_int, [P, ctypes.c_int]),
            "btf__add_func_param": (ctypes.c_int, [P, CP, ctypes.c_int]),
            "btf__add_func": (ctypes.c_int, [P, CP, ctypes.c_int, ctypes.c_int]),
            "btf__add_const": (ctypes.c_int, [P, ctypes.c_int]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        self.lib = lib

    def parse(self, path: str) -> int:
        h = self.lib.btf__parse(path.encode(), None)
        assert h, f"libbpf cannot parse {path}: errno {ctypes.get_errno()}"
        return int(h)

    def new(self, data: bytes, base: Optional[int] = None) -> Optional[int]:
        if base is None:
            buf = ctypes.create_string_buffer(data, len(data))
            h = self.lib.btf__new(buf, len(data))
        else:
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=".btf") as f:
                f.write(data)
                f.flush()
                h = self.lib.btf__parse_raw_split(f.name.encode(), base)
        return int(h) if h else None

    def raw(self, h: int) -> bytes:
        size = ctypes.c_uint32()
        p = self.lib.btf__raw_data(h, ctypes.byref(size))
        return ctypes.string_at(p, size.value)

    def name(self, h: int, off: int) -> str:
        s = self.lib.btf__name_by_offset(h, off)
        assert s is not None, f"libbpf: no string at {off}"
        return bytes(s).decode()

    # Trailer length in u32 words per kind, written out from btf.h for the
    # oracle (independent of purebpf's own table).
    _FIXED = {1: 1, 3: 3, 14: 1, 17: 1}
    _PER = {4: 3, 5: 3, 6: 2, 13: 2, 15: 3, 19: 3}

    def wire(self, h: int, type_id: int) -> Tuple[Any, ...]:
        """(kind, name, kflag, vlen, size_or_type, trailer) of a type, names resolved."""
        p = self.lib.btf__type_by_id(h, type_id)
        assert p, f"libbpf: no type {type_id}"
        name_off, info, sot = (ctypes.c_uint32 * 3).from_address(p)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        n = self._FIXED.get(kind, 0) + self._PER.get(kind, 0) * vlen
        words = list((ctypes.c_uint32 * n).from_address(p + 12)) if n else []
        trailer: List[Any]
        if kind in (4, 5):
            trailer = [(self.name(h, words[i]), words[i + 1], words[i + 2]) for i in range(0, n, 3)]
        elif kind in (6, 13):
            trailer = [(self.name(h, words[i]), words[i + 1]) for i in range(0, n, 2)]
        elif kind == 19:
            trailer = [(self.name(h, words[i]), words[i + 1], words[i + 2]) for i in range(0, n, 3)]
        elif kind == 15:
            trailer = [tuple(words[i:i + 3]) for i in range(0, n, 3)]
        else:
            trailer = words
        if kind in (17, 18):
            kflag = 0  # attribute-style tags: not represented in the model
        return (kind, self.name(h, name_off), kflag, vlen, sot, trailer)


def our_wire(t: Any) -> Tuple[Any, ...]:
    """Re-express one decoded type as the wire fields libbpf shows."""
    kind = int(t.kind)
    if isinstance(t, Int):
        return (kind, t.name, 0, 0, t.size, [int(t.encoding) << 24 | t.offset << 16 | t.bits])
    if isinstance(t, (Ptr, Typedef, Volatile, Const, Restrict, TypeTag)):
        return (kind, t.name, 0, 0, t.type, [])
    if isinstance(t, Array):
        return (kind, t.name, 0, 0, 0, [t.type, t.index_type, t.nelems])
    if isinstance(t, (Struct, Union)):
        mem = [(m.name, m.type, (m.bitfield_size << 24 | m.bit_offset) if t.kind_flag else m.bit_offset)
               for m in t.members]
        return (kind, t.name, int(t.kind_flag), len(mem), t.size, mem)
    if isinstance(t, Enum):
        return (kind, t.name, int(t.signed), len(t.values), t.size,
                [(v.name, v.value & 0xFFFFFFFF) for v in t.values])
    if isinstance(t, Enum64):
        return (kind, t.name, int(t.signed), len(t.values), t.size,
                [(v.name, v.value & 0xFFFFFFFF, (v.value >> 32) & 0xFFFFFFFF) for v in t.values])
    if isinstance(t, Fwd):
        return (kind, t.name, int(t.is_union), 0, 0, [])
    if isinstance(t, Func):
        return (kind, t.name, 0, int(t.linkage), t.type, [])
    if isinstance(t, FuncProto):
        return (kind, t.name, 0, len(t.params), t.return_type, [(p.name, p.type) for p in t.params])
    if isinstance(t, Var):
        return (kind, t.name, 0, 0, t.type, [int(t.linkage)])
    if isinstance(t, Datasec):
        return (kind, t.name, 0, len(t.vars), t.size, [(v.type, v.offset, v.size) for v in t.vars])
    if isinstance(t, Float):
        return (kind, t.name, 0, 0, t.size, [])
    if isinstance(t, DeclTag):
        return (kind, t.name, 0, 0, t.type, [t.component_idx & 0xFFFFFFFF])
    raise AssertionError(f"unexpected type {t!r}")


@pytest.fixture(scope="session")
def libbpf() -> Libbpf:
    if not os.path.exists(LIBBPF_PATH):
        pytest.skip("libbpf.so.1 not installed")
    return Libbpf()


@pytest.fixture(scope="session")
def vmlinux_pair(libbpf: Libbpf) -> Iterator[Tuple[Btf, int]]:
    if not os.path.exists(VMLINUX):
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux")
    h = libbpf.parse(VMLINUX)
    yield Btf.from_file(VMLINUX), h
    libbpf.lib.btf__free(h)


def _check_against_libbpf(btf: Btf, libbpf: Libbpf, h: int, ids: Any) -> None:
    assert len(btf) == libbpf.lib.btf__type_cnt(h)
    for type_id in ids:
        assert our_wire(btf[type_id]) == libbpf.wire(h, type_id), f"type {type_id}"


# ------------------------------------------------------------ basic reading

def test_every_object_matches_libbpf(all_objects: List[Path], libbpf: Libbpf) -> None:
    for path in all_objects:
        btf = Btf.from_file(path)
        h = libbpf.parse(str(path))
        try:
            _check_against_libbpf(btf, libbpf, h, btf.ids())
            assert btf.byteorder == ("big" if b"bpfeb" in path.name.encode() else "little")
        finally:
            libbpf.lib.btf__free(h)


def test_vmlinux_matches_libbpf(vmlinux_pair: Tuple[Btf, int], libbpf: Libbpf) -> None:
    btf, h = vmlinux_pair
    _check_against_libbpf(btf, libbpf, h, btf.ids())


def test_walkers_match_libbpf(all_objects: List[Path], libbpf: Libbpf) -> None:
    checked = 0
    for path in all_objects:
        btf = Btf.from_file(path)
        h = libbpf.parse(str(path))
        try:
            _check_walkers(btf, libbpf, h, btf.ids())
            checked += 1
        finally:
            libbpf.lib.btf__free(h)
    assert checked >= 2


def _check_walkers(btf: Btf, libbpf: Libbpf, h: int, ids: Any) -> None:
    for type_id in ids:
        want = libbpf.lib.btf__resolve_size(h, type_id)
        if want >= 0:
            assert btf.size_of(type_id) == want, f"size_of({type_id})"
        else:
            with pytest.raises(BtfError):
                btf.size_of(type_id)
        align = libbpf.lib.btf__align_of(h, type_id)
        if align > 0:
            assert btf.align_of(type_id) == align, f"align_of({type_id})"
        else:
            with pytest.raises(BtfError):
                btf.align_of(type_id)


def test_vmlinux_walkers_match_libbpf(vmlinux_pair: Tuple[Btf, int], libbpf: Libbpf) -> None:
    btf, h = vmlinux_pair
    rng = random.Random(1)
    ids = rng.sample(list(btf.ids()), 5000)
    ids.append(btf.find_by_name("task_struct", BtfKind.STRUCT)[0])
    _check_walkers(btf, libbpf, h, ids)


def test_find_by_name_matches_libbpf(all_objects: List[Path], libbpf: Libbpf) -> None:
    for path in all_objects:
        btf = Btf.from_file(path)
        h = libbpf.parse(str(path))
        try:
            pairs = {(t.name, t.kind) for t in btf if t.name}
            for name, kind in pairs:
                want = libbpf.lib.btf__find_by_name_kind(h, name.encode(), kind)
                got = btf.find_by_name(name, kind)
                assert got and got[0] == want, (path, name, kind)
                assert all(btf[i].name == name and btf[i].kind == kind for i in got)
                # without a kind filter: every type of that name, ascending
                every = btf.find_by_name(name)
                assert every == sorted(i for i in btf.ids() if btf[i].name == name)
            assert libbpf.lib.btf__find_by_name_kind(h, b"no_such_type_xyz", 4) < 0
            assert btf.find_by_name("no_such_type_xyz") == []
            assert btf.find_by_name("int\0x") == []
        finally:
            libbpf.lib.btf__free(h)


def test_vmlinux_find_by_name_matches_libbpf(vmlinux_pair: Tuple[Btf, int], libbpf: Libbpf) -> None:
    btf, h = vmlinux_pair
    rng = random.Random(2)
    ids = rng.sample(list(btf.ids()), 1500)
    for type_id in ids:
        t = btf[type_id]
        if not t.name:
            continue
        want = libbpf.lib.btf__find_by_name_kind(h, t.name.encode(), t.kind)
        got = btf.find_by_name(t.name, t.kind)
        assert got[0] == want, t
        assert type_id in got
    ts = btf.find("task_struct", BtfKind.STRUCT)
    assert ts.id == libbpf.lib.btf__find_by_name_kind(h, b"task_struct", BtfKind.STRUCT)
    with pytest.raises(NotFoundError):
        btf.find("no_such_type_xyz", BtfKind.STRUCT)


def test_vmlinux_name_index_matches_scan(vmlinux_pair: Tuple[Btf, int]) -> None:
    """The hash index (used after many lookups / from the cache) gives the scan's answers."""
    btf, _ = vmlinux_pair
    fresh = Btf.from_bytes(btf.raw)
    index = fresh._build_name_index()
    rng = random.Random(3)
    names = {btf[i].name for i in rng.sample(list(btf.ids()), 400)} | {"", "task_struct", "int"}
    for name in names:
        scanned = btf.find_by_name(name)
        via_index = [fresh.start_id + i for i in
                     index.lookup(name.encode(), fresh, fresh._name_column())]
        if name:
            assert via_index == scanned, name
        assert scanned == sorted(scanned)


def test_many_lookups_switch_to_the_hash_index(all_objects: List[Path]) -> None:
    """After enough scanning lookups the hash index takes over, with the same answers."""
    from purebpf.btf import btf as btf_module

    for path in all_objects:
        btf = Btf.from_file(path)
        names = sorted({t.name for t in btf} | {"no_such_type_xyz"})
        before = {n: btf.find_by_name(n) for n in names}
        while btf._name_index is None:
            btf.find_by_name("int")
            assert btf._scans <= btf_module._SCANS_BEFORE_INDEX + 1
        assert {n: btf.find_by_name(n) for n in names} == before
        for n in names:
            assert before[n] == [t.id for t in btf if t.name == n]


def test_bpftool_json(all_objects: List[Path]) -> None:
    if BPFTOOL is None:
        pytest.skip("bpftool not installed")
    for path in all_objects:
        out = subprocess.run([BPFTOOL, "btf", "dump", "file", str(path), "-j"], check=True,
                             capture_output=True, text=True).stdout
        types = json.loads(out)["types"]
        btf = Btf.from_file(path)
        assert len(types) == len(btf) - 1
        for jt in types:
            t = btf[jt["id"]]
            assert t.kind.name == jt["kind"]
            assert (t.name or "(anon)") == jt["name"]
            if "size" in jt:
                assert t.size == jt["size"]  # type: ignore[union-attr]
            if "type_id" in jt:
                assert getattr(t, "type", getattr(t, "return_type", None)) == jt["type_id"]
            if "members" in jt:
                assert isinstance(t, (Struct, Union))
                assert [(m.name or "(anon)", m.type, m.bit_offset, m.bitfield_size)
                        for m in t.members] == [
                    (m["name"], m["type_id"], m["bits_offset"], m.get("bitfield_size", 0))
                    for m in jt["members"]]
            if "values" in jt:
                assert [(v.name, v.value) for v in t.values] == [  # type: ignore[union-attr]
                    (v["name"], v["val"]) for v in jt["values"]]


def test_header_and_attributes(built_objects: List[Path]) -> None:
    le, be = (Btf.from_file(p) for p in built_objects)
    raw = _elf_btf(built_objects[0])
    assert le.raw == raw
    assert le.header.magic == 0xEB9F and le.header.version == 1 and le.header.hdr_len == 24
    assert le.header.type_len + le.header.str_len + 24 == len(raw)
    assert be.byteorder == "big" and le.byteorder == "little"
    assert le.start_id == 1 and le.base is None
    assert list(le.ids()) == list(range(1, len(le)))
    assert [t.id for t in le] == list(le.ids())
    assert le[0].kind == BtfKind.UNKN and le.type_name(0) == "void"
    assert le.string_at(0) == ""
    for bad in (-1, len(le), len(le) + 10):
        with pytest.raises(NotFoundError):
            le[bad]
    with pytest.raises(BtfError):
        le.string_at(le.header.str_len)
    # big-endian decoding gives the same types
    assert [our_wire(t) for t in be] == [our_wire(t) for t in le]


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(BtfError) as exc:
        Btf.from_file(tmp_path / "missing.o")
    assert exc.value.file == str(tmp_path / "missing.o")
    with pytest.raises(BtfError) as exc:
        Btf.from_file("/bin/true")  # an ELF file without .BTF
    assert exc.value.section == ".BTF"
    bad_elf = tmp_path / "bad.o"
    bad_elf.write_bytes(b"\x7fELF" + b"\xff" * 60)
    with pytest.raises(BtfError):
        Btf.from_file(bad_elf)
    raw = tmp_path / "raw.btf"
    raw.write_bytes(make_btf(INT, STRS))
    assert Btf.from_file(raw).find("int").id == 1


def test_type_names_follow_the_c_source(built_objects: List[Path]) -> None:
    """type_name spells the C declarations of TEST_SOURCE."""
    btf = Btf.from_file(built_objects[0])
    s = btf.find("s", BtfKind.STRUCT)
    assert isinstance(s, Struct)
    members = {m.name: btf.type_name(m.type) for m in s.members}
    assert members == {
        "x": "int", "f1": "unsigned int", "f2": "unsigned int", "in": "struct inner",
        "u": "union (anon)", "p": "const volatile u64 *", "cb": "int (*)(void *, int)",
        "d": "double", "name": "char[16]", "arr": "struct inner *[2]",
        "fp": "int (*(*)(int))[4]",
    }
    assert btf.type_name(btf.find("gstr", BtfKind.VAR).type) == "cstr"  # type: ignore[union-attr]
    cstr = btf.find("cstr", BtfKind.TYPEDEF)
    assert btf.type_name(cstr.type) == "const char *"  # type: ignore[union-attr]
    assert btf.type_name(btf.find("grestrict", BtfKind.VAR).type) == "char *restrict"  # type: ignore[union-attr]
    holds = btf.find("holds_fwd", BtfKind.STRUCT)
    assert [btf.type_name(m.type) for m in holds.members] == [  # type: ignore[union-attr]
        "struct fwd_only *", "union fwd_union *"]
    assert btf.type_name(btf.find("e64", BtfKind.ENUM64).id) == "enum e64"
    # skip_modifiers / skip_qualifiers
    p_target = btf[btf[s.members[5].type].type]  # type: ignore[union-attr]
    assert isinstance(p_target, Const)
    resolved = btf.skip_modifiers(p_target.id)
    assert btf[resolved].name == "unsigned long long"
    kept = btf.skip_qualifiers(p_target.id)
    assert isinstance(btf[kept], Typedef) and btf[kept].name == "u64"
    assert btf.skip_modifiers(s.id) == s.id


# --------------------------------------------------------------- parity

def _construct_walk(btf: Btf) -> Iterator[Tuple[int, Any]]:
    from purebpf.btf.wire import wire_format

    fmt = wire_format(btf.byteorder)
    section = btf.raw[btf._type_start:btf._type_start + btf.header.type_len]
    stream = io.BytesIO(section)
    while stream.tell() < len(section):
        pos = stream.tell()
        yield pos, fmt.btf_type_record.parse_stream(stream)


def _construct_wire(btf: Btf, rec: Any) -> Tuple[Any, ...]:
    """The Construct record in the our_wire shape (names resolved through btf)."""
    hdr, tr = rec.header, rec.trailer
    kind, vlen, kflag = hdr.info.kind, hdr.info.vlen, int(hdr.info.kind_flag)
    name = btf.string_at(hdr.name_off)
    trailer: List[Any]
    if kind == 1:
        trailer = [tr.encoding << 24 | tr.offset << 16 | tr.bits]
    elif kind == 3:
        trailer = [tr.type, tr.index_type, tr.nelems]
    elif kind in (4, 5):
        trailer = [(btf.string_at(m.name_off), m.type, m.offset) for m in tr]
    elif kind == 6:
        trailer = [(btf.string_at(v.name_off), v.val) for v in tr]
    elif kind == 19:
        trailer = [(btf.string_at(v.name_off), v.val_lo32, v.val_hi32) for v in tr]
    elif kind == 13:
        trailer = [(btf.string_at(p.name_off), p.type) for p in tr]
    elif kind == 14:
        trailer = [tr.linkage]
    elif kind == 15:
        trailer = [(v.type, v.offset, v.size) for v in tr]
    elif kind == 17:
        trailer = [tr.component_idx & 0xFFFFFFFF]
    else:
        trailer = []
    sot = hdr.size_or_type
    if kind == 3:
        sot = 0  # arrays keep everything in the trailer
    if kind in (17, 18):
        kflag = 0
    if kind in (1, 2, 8, 9, 10, 11, 14, 16, 17, 18) or kind == 7:
        vlen_shown = 0
    else:
        vlen_shown = vlen
    if kind == 7:
        sot = 0
    return (kind, name, kflag, vlen_shown, sot, trailer)


def test_fast_pass_parity_with_construct(all_objects: List[Path]) -> None:
    for path in all_objects:
        btf = Btf.from_file(path)
        walked = list(_construct_walk(btf))
        assert [pos for pos, _ in walked] == [4 * o for o in btf._offsets], path
        for type_id, (_, rec) in zip(btf.ids(), walked):
            assert our_wire(btf[type_id]) == _construct_wire(btf, rec), (path, type_id)


def test_vmlinux_parity_with_construct(vmlinux_pair: Tuple[Btf, int]) -> None:
    from purebpf.btf.wire import wire_format

    btf, _ = vmlinux_pair
    fmt = wire_format(btf.byteorder)
    rng = random.Random(4)
    section = btf.raw[btf._type_start:btf._type_start + btf.header.type_len]
    ids = rng.sample(list(btf.ids()), 3000) + [len(btf) - 1, 1]
    for type_id in ids:
        start = 4 * btf._offsets[type_id - 1]
        end = 4 * btf._offsets[type_id] if type_id < len(btf) - 1 else len(section)
        stream = io.BytesIO(section[start:end])
        rec = fmt.btf_type_record.parse_stream(stream)
        assert stream.tell() == end - start, type_id  # the record fills exactly its slot
        assert our_wire(btf[type_id]) == _construct_wire(btf, rec), type_id


# ------------------------------------------------------------- split BTF

@pytest.fixture
def split_pair(built_objects: List[Path], libbpf: Libbpf) -> Iterator[Tuple[Btf, Btf, int, int]]:
    """A split BTF built by libbpf on top of the little-endian test object."""
    base_raw = _elf_btf(built_objects[0])
    base_h = libbpf.new(base_raw)
    assert base_h
    lib = libbpf.lib
    split_h = lib.btf__new_empty_split(base_h)
    assert split_h
    int_id = lib.btf__find_by_name_kind(base_h, b"int", BtfKind.INT)
    my_int = lib.btf__add_int(split_h, b"split_int", 8, 1)
    st = lib.btf__add_struct(split_h, b"split_s", 24)
    assert lib.btf__add_field(split_h, b"a", int_id, 0, 0) == 0
    assert lib.btf__add_field(split_h, b"x", my_int, 64, 0) == 0  # 'x' is also a base string
    assert lib.btf__add_field(split_h, b"fresh_member", my_int, 128, 0) == 0
    ptr = lib.btf__add_ptr(split_h, st)
    assert lib.btf__add_typedef(split_h, b"split_t", ptr) > 0
    assert lib.btf__add_array(split_h, int_id, my_int, 5) > 0
    en = lib.btf__add_enum(split_h, b"e", 4)  # same name as a base enum
    assert lib.btf__add_enum_value(split_h, b"SPLIT_V", 7) == 0
    proto = lib.btf__add_func_proto(split_h, int_id)
    assert lib.btf__add_func_param(split_h, b"arg", ptr) == 0
    assert lib.btf__add_func(split_h, b"split_fn", 1, proto) > 0
    assert lib.btf__add_const(split_h, en) > 0
    raw = libbpf.raw(split_h)
    base = Btf.from_bytes(base_raw, name="base")
    split = Btf.from_bytes(raw, base=base, name="split")
    yield base, split, split_h, base_h
    lib.btf__free(split_h)
    lib.btf__free(base_h)


def test_split_btf_matches_libbpf(split_pair: Tuple[Btf, Btf, int, int], libbpf: Libbpf) -> None:
    base, split, split_h, base_h = split_pair
    assert split.start_id == len(base) and split.base is base
    assert len(split) == libbpf.lib.btf__type_cnt(split_h)
    assert list(split.ids()) == list(range(len(base), len(split)))
    _check_against_libbpf(split, libbpf, split_h, range(1, len(split)))
    # the same bytes re-parsed by libbpf's split reader agree too
    h2 = libbpf.new(split.raw, base=base_h)
    assert h2
    try:
        _check_against_libbpf(split, libbpf, h2, range(1, len(split)))
        _check_walkers(split, libbpf, h2, range(1, len(split)))
    finally:
        libbpf.lib.btf__free(h2)
    for name, kind in (("split_s", BtfKind.STRUCT), ("int", BtfKind.INT), ("e", BtfKind.ENUM),
                       ("split_t", BtfKind.TYPEDEF), ("s", BtfKind.STRUCT)):
        want = libbpf.lib.btf__find_by_name_kind(split_h, name.encode(), kind)
        assert split.find_by_name(name, kind)[0] == want, name
    # 'e' names a base enum and a split enum: both, ascending
    es = split.find_by_name("e", BtfKind.ENUM)
    assert len(es) == 2 and es[0] < split.start_id <= es[1]
    st = split.find("split_s", BtfKind.STRUCT)
    assert isinstance(st, Struct)
    assert [m.name for m in st.members] == ["a", "x", "fresh_member"]
    assert split.type_name(split.find("split_t").type) == "struct split_s *"  # type: ignore[union-attr]
    assert [t.id for t in split] == list(split.ids())
    assert split[1] == base[1]


def test_split_btf_from_file(split_pair: Tuple[Btf, Btf, int, int], tmp_path: Path) -> None:
    base, split, _, _ = split_pair
    p = tmp_path / "split.btf"
    p.write_bytes(split.raw)
    again = Btf.from_file(p, base=base)
    assert [our_wire(t) for t in again] == [our_wire(t) for t in split]


def test_split_btf_cache(split_pair: Tuple[Btf, Btf, int, int], built_objects: List[Path],
                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, split, _, _ = split_pair
    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PUREBPF_NO_CACHE", raising=False)
    first = Btf(split.raw, base=base, use_cache=True)
    second = Btf(split.raw, base=base, use_cache=True)
    assert len(list(tmp_path.iterdir())) == 1
    for name in ("e", "split_s", "int", "split_fn", "s"):
        assert first.find_by_name(name) == second.find_by_name(name) == split.find_by_name(name)
    # the same split bytes on another base get another key (names come from the base)
    other_base = Btf.from_file(built_objects[1])
    third = Btf(split.raw, base=other_base, use_cache=True)
    assert third._key != first._key and len(list(tmp_path.iterdir())) == 2


def test_kernel_btf_loaders(vmlinux_pair: Tuple[Btf, int], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    btf, _ = vmlinux_pair
    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(tmp_path))
    v = Btf.load_vmlinux()
    assert v is Btf.load_vmlinux()  # cached per process
    assert len(v) == len(btf) and v.raw == btf.raw
    with pytest.raises(NotFoundError):
        Btf.load_kernel_module("no_such_module_xyz")
    with pytest.raises(NotFoundError):
        Btf.load_kernel_module("../vmlinux")
    modules = [m for m in os.listdir("/sys/kernel/btf") if m != "vmlinux"]
    if modules:
        mod = Btf.load_kernel_module(modules[0])
        assert mod.base is v and mod.start_id == len(v)


# ------------------------------------------------------------------ cache

def test_cache_round_trip(vmlinux_pair: Tuple[Btf, int], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    btf, _ = vmlinux_pair
    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PUREBPF_NO_CACHE", raising=False)
    first = Btf(btf.raw, name="v1", use_cache=True)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("btf-")
    second = Btf(btf.raw, name="v2", use_cache=True)
    assert second._name_index is not None and list(second._offsets) == list(btf._offsets)
    for name in ("task_struct", "int", "sk_buff", "no_such_type_xyz"):
        assert second.find_by_name(name) == btf.find_by_name(name) == first.find_by_name(name)
    # a corrupt cache file is ignored (and the answers stay right)
    data = bytearray(files[0].read_bytes())
    data[-5] ^= 0xFF
    files[0].write_bytes(bytes(data))
    assert btf_cache.load(btf_cache.key_for(btf.raw), type_len=btf.header.type_len) is None
    third = Btf(btf.raw, name="v3", use_cache=True)
    assert third.find_by_name("task_struct") == btf.find_by_name("task_struct")
    # truncated
    files[0].write_bytes(files[0].read_bytes()[:100])
    assert btf_cache.load(btf_cache.key_for(btf.raw), type_len=btf.header.type_len) is None


def test_tampered_cache_raises_only_btf_errors(built_objects: List[Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file with a valid checksum but nonsense offsets cannot crash the reader."""
    import zlib

    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PUREBPF_NO_CACHE", raising=False)
    raw = _elf_btf(built_objects[0])
    Btf(raw, use_cache=True)
    (path,) = list(tmp_path.iterdir())
    blob = bytearray(path.read_bytes())
    head = struct.Struct("=8s32sIII")
    magic, key, count, type_len, _ = head.unpack_from(blob, 0)
    struct.pack_into("=I", blob, head.size + 4 * 5, 0x0FFFFFF0)  # offsets[5]
    struct.pack_into("=I", blob, head.size + 4 * count * 3, 0x0FFFFFF0)  # first hash order entry
    payload = bytes(blob[head.size:])
    head.pack_into(blob, 0, magic, key, count, type_len, zlib.crc32(payload))
    path.write_bytes(bytes(blob))
    btf = Btf(raw, use_cache=True)
    with pytest.raises(BtfError):
        btf[6]
    with pytest.raises(BtfError):
        btf.kind_of(6)
    for t_id in btf.ids():
        try:
            btf.find_by_name(btf.type_name(t_id) if t_id != 6 else "x")
        except (BtfError, NotFoundError):
            pass


def test_cache_disabled_and_unwritable(built_objects: List[Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _elf_btf(built_objects[0])
    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("PUREBPF_NO_CACHE", "1")
    assert not btf_cache.enabled()
    monkeypatch.delenv("PUREBPF_NO_CACHE")
    assert btf_cache.enabled()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PUREBPF_CACHE_DIR", str(blocker / "sub"))
    b = Btf(raw, use_cache=True)  # cannot write: silently ignored
    assert b.find_by_name("s", BtfKind.STRUCT) == Btf.from_bytes(raw).find_by_name("s", BtfKind.STRUCT)
    monkeypatch.delenv("PUREBPF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert btf_cache.cache_dir() == str(tmp_path / "xdg" / "purebpf")


# -------------------------------------------------------------- bad input

def make_btf(types: List[int], strings: bytes = b"\0", *, order: str = "<",
             hdr: Optional[Dict[str, int]] = None) -> bytes:
    """A raw BTF blob from u32 type words and a string section."""
    tbytes = struct.pack(order + f"{len(types)}I", *types)
    fields = dict(magic=0xEB9F, version=1, flags=0, hdr_len=24, type_off=0,
                  type_len=len(tbytes), str_off=len(tbytes), str_len=len(strings))
    fields.update(hdr or {})
    head = struct.pack(order + "HBBIIIII", fields["magic"], fields["version"], fields["flags"],
                       fields["hdr_len"], fields["type_off"], fields["type_len"],
                       fields["str_off"], fields["str_len"])
    return head + tbytes + strings


def info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return kflag << 31 | kind << 24 | vlen


STRS = b"\0int\0s\0a\0"  # offsets: int=1, s=5, a=7
INT = [1, info(1), 4, (1 << 24) | 32]  # int, signed, 32 bits


def _bad(data: bytes, section: Optional[str] = None) -> BtfError:
    with pytest.raises(BtfError) as exc:
        Btf.from_bytes(data, name="bad")
    err = exc.value
    assert err.file == "bad" and err.reason
    if section is not None:
        assert err.section == section
    return err


def test_minimal_synthetic_btf() -> None:
    data = make_btf(INT + [5, info(4, 1), 4, 7, 1, 0], STRS)
    btf = Btf.from_bytes(data)
    assert btf[1] == Int(1, "int", size=4, encoding=btf[1].encoding, offset=0, bits=32)  # type: ignore[union-attr]
    assert btf.size_of(2) == 4 and btf.align_of(2) == 4
    be = Btf.from_bytes(make_btf(INT + [5, info(4, 1), 4, 7, 1, 0], STRS, order=">"))
    assert be.byteorder == "big" and our_wire(be[2]) == our_wire(btf[2])


def test_bad_headers() -> None:
    good = make_btf(INT, STRS)
    assert _bad(good[:7], "header").offset == 0
    assert _bad(good[:20], "header") is not None
    _bad(b"\x00\x00" + good[2:], "header")
    _bad(make_btf(INT, STRS, hdr={"version": 2}), "header")
    assert _bad(make_btf(INT, STRS, hdr={"hdr_len": 16}), "header").offset == 4
    _bad(make_btf(INT, STRS, hdr={"hdr_len": 4096}), "header")
    _bad(make_btf(INT, STRS, hdr={"type_len": 4096}), "header")
    _bad(make_btf(INT, STRS, hdr={"str_len": 4096}), "header")
    _bad(make_btf(INT, STRS, hdr={"str_off": 0}), "header")  # overlap
    _bad(make_btf(INT, STRS, hdr={"type_len": 14}), "header")
    _bad(make_btf(INT, b"x\0int\0"), "strings")
    _bad(make_btf(INT, b"\0int"), "strings")
    # hdr_len > 24 with non-zero extra bytes
    longer = make_btf(INT, STRS)
    patched = bytearray(longer[:24] + b"\x01\0\0\0" + longer[24:])
    struct.pack_into("<I", patched, 4, 28)
    _bad(bytes(patched), "header")
    patched[24] = 0
    assert len(Btf.from_bytes(bytes(patched))) == 2


def test_bad_type_section() -> None:
    err = _bad(make_btf(INT + [5, info(4, 1000), 4], STRS), "types")
    assert err.offset == 24 + 16 and "vlen" in err.reason
    assert "unknown BTF kind 20" in _bad(make_btf(INT + [0, info(20), 0], STRS), "types").reason
    _bad(make_btf(INT + [0, info(0), 0], STRS), "types")
    _bad(make_btf(INT + [0, info(2)], STRS), "types")  # header cut short
    _bad(make_btf([1, info(1), 4], STRS), "types")  # INT without its trailer


def _lazy_bad(types: List[int], strings: bytes = STRS) -> Btf:
    return Btf.from_bytes(make_btf(types, strings), name="lazy")


def test_bad_types_detected_on_decode() -> None:
    btf = _lazy_bad(INT + [999, info(2), 1])  # name past the string section
    with pytest.raises(BtfError) as exc:
        btf[2]
    assert exc.value.section == "types" and exc.value.offset == 24 + 16
    with pytest.raises(BtfError):
        _lazy_bad(INT + [0, info(2, kflag=1), 1])[2]  # kind_flag on a PTR
    with pytest.raises(BtfError):
        _lazy_bad(INT + [0, info(2, vlen=3), 1])[2]  # vlen on a PTR
    with pytest.raises(BtfError):
        _lazy_bad(INT + [1, info(12, vlen=7), 0])[2]  # unknown func linkage
    with pytest.raises(BtfError):
        _lazy_bad(INT + [1, info(14), 1, 9])[2]  # unknown var linkage
    with pytest.raises(BtfError):
        _lazy_bad(INT + [5, info(4, 1), 4, 4000, 1, 0])[2]  # member name past the end


def test_dangling_references_and_loops() -> None:
    dangling = _lazy_bad(INT + [0, info(2), 999, 5, info(8), 2])  # ptr -> 999, typedef s -> ptr
    for fn in (dangling.skip_modifiers, dangling.size_of, dangling.align_of, dangling.type_name):
        try:
            fn(3)
        except (BtfError, NotFoundError):
            pass
    with pytest.raises(BtfError):
        dangling.type_name(2)
    with pytest.raises(BtfError):
        _lazy_bad(INT + [5, info(8), 5]).size_of(2)  # typedef -> missing id 5
    with pytest.raises(NotFoundError):
        dangling.size_of(50)
    loop = _lazy_bad(INT + [5, info(8), 3, 7, info(8), 2])  # typedef s -> a -> s
    for fn in (loop.skip_modifiers, loop.size_of, loop.align_of):
        with pytest.raises(BtfError):
            fn(2)
    assert loop.skip_qualifiers(2) == 2  # typedefs are kept: no walk at all
    assert loop.type_name(2) == "s"
    self_loop = _lazy_bad(INT + [5, info(10), 2])  # const -> itself
    for fn in (self_loop.skip_modifiers, self_loop.skip_qualifiers, self_loop.size_of,
               self_loop.type_name):
        with pytest.raises(BtfError):
            fn(2)
    array_loop = _lazy_bad(INT + [0, info(3), 0, 2, 1, 2])  # array of itself
    for fn in (array_loop.size_of, array_loop.align_of, array_loop.type_name):
        with pytest.raises(BtfError):
            fn(2)
    struct_loop = _lazy_bad(INT + [5, info(4, 1), 4, 7, 2, 0])  # struct s { struct s a; }
    with pytest.raises(BtfError):
        struct_loop.align_of(2)
    assert struct_loop.size_of(2) == 4  # size comes from the header, no walk needed
    ptr_loop = _lazy_bad(INT + [0, info(2), 2])  # pointer to itself: legal to walk once
    assert ptr_loop.size_of(2) == 8
    with pytest.raises(BtfError):
        ptr_loop.type_name(2)


def test_branching_loops_fail_fast() -> None:
    """Self-referencing prototypes/structs with two references each: no exponential walk."""
    proto = _lazy_bad(INT + [0, info(13, 2), 1, 0, 2, 0, 2])  # int (*)(self, self)
    with pytest.raises(BtfError):
        proto.type_name(2)
    wide = _lazy_bad(INT + [5, info(4, 2), 8, 7, 2, 0, 7, 2, 32])  # struct s { s a; s a; }
    with pytest.raises(BtfError):
        wide.align_of(2)
    # a deep DAG of prototypes: each references the next one twice
    words = list(INT)
    for i in range(2, 40):
        words += [0, info(13, 2), 1, 0, i + 1, 0, i + 1]
    words += [0, info(2), 1]
    dag = _lazy_bad(words)
    with pytest.raises(BtfError):
        dag.type_name(2)
    assert dag.type_name(len(dag) - 2) == "int (int *, int *)"


def test_size_overflow_and_sizeless() -> None:
    big = _lazy_bad(INT + [0, info(3), 0, 1, 1, 0x7FFFFFFF])
    with pytest.raises(BtfError):
        big.size_of(2)
    fn = _lazy_bad(INT + [0, info(13), 1, 1, info(12, 1), 2])
    for f in (fn.size_of, fn.align_of):
        with pytest.raises(BtfError):
            f(3)
    with pytest.raises(BtfError):
        fn.size_of(0)


def _walk_everything(btf: Btf) -> None:
    for type_id in btf.ids():
        t = btf[type_id]
        for fn in (btf.skip_modifiers, btf.skip_qualifiers, btf.size_of, btf.align_of,
                   btf.type_name):
            try:
                fn(type_id)
            except (BtfError, NotFoundError):
                pass
        btf.find_by_name(t.name)


@pytest.fixture(scope="module")
def mutation_seeds(built_objects: List[Path]) -> List[bytes]:
    seeds = [_elf_btf(p) for p in built_objects]
    seeds += [_elf_btf(p) for p in fixture_objects()[:3]]
    return seeds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_btf_raises_only_purebpf_errors(mutation_seeds: List[bytes], data: Any) -> None:
    seed = bytearray(data.draw(st.sampled_from(mutation_seeds)))
    action = data.draw(st.sampled_from(["flip", "truncate", "header", "words"]))
    if action == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(seed) - 1))
            seed[i] ^= 1 << data.draw(st.integers(0, 7))
    elif action == "truncate":
        seed = seed[:data.draw(st.integers(0, len(seed)))]
    elif action == "header":
        off = data.draw(st.sampled_from([4, 8, 12, 16, 20]))
        seed[off:off + 4] = data.draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "little")
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(24, len(seed) - 4)) & ~3
            seed[i:i + 4] = data.draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "little")
    try:
        btf = Btf.from_bytes(bytes(seed))
    except BtfError:
        return
    try:
        _walk_everything(btf)
    except (BtfError, NotFoundError):
        pass
    except PurebpfError as exc:  # pragma: no cover - reported as a failure
        raise AssertionError(f"unexpected purebpf error {exc!r}")


def test_import_does_not_pull_heavy_modules() -> None:
    code = ("import sys, purebpf.btf; b = purebpf.btf.Btf; "
            "print(any(m.split('.')[0] in ('construct', 'elftools') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "False"
