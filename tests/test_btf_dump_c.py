"""purebpf.btf.dump_c: the C header (vmlinux.h) dumper.

Oracles:
* ``bpftool btf dump file F format c`` (bpftool 7.1): the output must be
  byte-identical, for the running kernel's BTF and for every fixture object;
* clang-19: the generated headers must compile, and a probe file of
  ``_Static_assert(offsetof(...) == N)`` must hold, where N is read from the
  BTF by libbpf (libbpf.so.1 through ctypes), not by purebpf;
* libbpf's own ``btf_dump__dump_type()`` (through ctypes) for the root-type
  subsets bpftool cannot produce from the command line.
"""

from __future__ import annotations

import ctypes
import difflib
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purebpf.btf import Btf
from purebpf.btf.dump_c import FOOTER, HEADER, _tables_from_model, _tables_from_wire, dump_c
from purebpf.errors import BtfError, NotFoundError, PurebpfError

from conftest import fixture_objects

VMLINUX = Path("/sys/kernel/btf/vmlinux")
CLANG = shutil.which("clang-19")
BPFTOOL = shutil.which("bpftool")
BPF_INCLUDE = Path("/usr/include/bpf")

needs_bpftool = pytest.mark.skipif(BPFTOOL is None, reason="bpftool not installed")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(),
                                   reason="kernel feature missing: /sys/kernel/btf/vmlinux")


# --------------------------------------------------------------------------- helpers

def bpftool_c(path: Path) -> str:
    assert BPFTOOL is not None
    proc = subprocess.run([BPFTOOL, "btf", "dump", "file", str(path), "format", "c"],
                          capture_output=True, check=True)
    return proc.stdout.decode("utf-8", "surrogateescape")


def assert_same_text(expected: str, actual: str, what: str) -> None:
    """Equal, or fail showing the first differing lines."""
    if expected == actual:
        return
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                     "bpftool", "purebpf", lineterm="", n=3))
    pytest.fail(f"{what}: output differs from the oracle\n" + "\n".join(diff[:40]))


def compile_bpf(source: str, tmp: Path, name: str, *, target: str = "bpf",
                extra: Sequence[str] = ()) -> Path:
    """Compile ``source`` with clang-19 for BPF; fail with clang's messages."""
    assert CLANG is not None
    src = tmp / f"{name}.c"
    obj = tmp / f"{name}.o"
    src.write_text(source)
    proc = subprocess.run([CLANG, "-target", target, "-g", "-O2", "-c", str(src), "-o", str(obj),
                           "-I", str(tmp), "-I", str(BPF_INCLUDE.parent), *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"clang-19 failed on {name}.c:\n{proc.stderr[:4000]}")
    return obj


# A C file exercising what the dumper must reproduce: bitfields, packing,
# padding, anonymous members, enums of every flavour, function pointers,
# arrays of arrays, qualifiers, type tags and a name collision.
SAMPLE_C = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
typedef u32 u32_alias;
typedef const volatile int cv_int;

enum color { RED, GREEN = 5, BLUE = -3 };
enum big { BIG_A = 1, BIG_B = 0xffffffffffULL };
enum small_unsigned { SU_A = 0xfffffff0U };
enum { ANON_CONST_A = 7, ANON_CONST_B };
enum empty_fwd;

struct list { struct list *next, *prev; };
struct fwd_only;
union fwd_union;

struct bits {
    unsigned int a: 3;
    unsigned int b: 5;
    int c: 7;
    unsigned long long d: 33;
    char e;
    unsigned short f: 2;
};

struct __attribute__((packed)) packed_s { char c; int i; short s; };
struct aligned_s { char c; long long x __attribute__((aligned(16))); };
struct padded { int a; long: 64; long: 64; int b; };
struct tail_pad { long long x; char c; };
struct nested_anon {
    int kind;
    union { int i; float f; struct { short lo, hi; } parts; };
    struct { char tag; enum { IN_A, IN_B } inner; } named_anon;
    enum color colors[2][3];
};

typedef int (*callback_t)(void *ctx, const char *fmt, ...);
typedef void (*noargs_t)(void);
struct ops {
    callback_t cb;
    int (*handlers[4])(struct list *, u64);
    void (*(*getter)(int))(void);
    const char *const *names;
    volatile u32_alias counter;
    cv_int cv;
    struct fwd_only *opaque;
    union fwd_union *opaque_u;
    int matrix[2][3][4];
    char (*ptr_to_array)[16];
    int __attribute__((btf_type_tag("user"))) *user_ptr;
    struct list head;
};

struct empty {};
struct flex { int n; int data[]; };

static int collide(void)
{
    /* a second "struct list", in block scope: dumped as struct list___2 */
    static struct list { int differently; } local;
    return local.differently++;
}

struct all {
    struct bits b; struct packed_s p; struct aligned_s al; struct padded pd;
    struct tail_pad tp; struct nested_anon na; struct ops o; struct empty e;
    enum big big; enum small_unsigned su; noargs_t na_fn; enum empty_fwd *efp;
    struct flex *fl;
};

struct all global_all;
int anon_const_user = ANON_CONST_B;

__attribute__((section("tc"), used)) int prog(struct all *a)
{
    return collide() + a->b.c + a->o.matrix[1][2][3] + anon_const_user;
}

char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"""


@pytest.fixture(scope="module")
def sample_objects(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    """The sample compiled little- and big-endian (clang-19), when clang is present."""
    if CLANG is None:
        return []
    tmp = tmp_path_factory.mktemp("dump_c_sample")
    return [compile_bpf(SAMPLE_C, tmp, "sample_el", target="bpfel"),
            compile_bpf(SAMPLE_C, tmp, "sample_eb", target="bpfeb")]


def objects_with_btf() -> List[Path]:
    out = []
    for path in fixture_objects():
        if b".BTF" in path.read_bytes():
            out.append(path)
    return out


# ------------------------------------------------------------------ byte identity

@needs_bpftool
@needs_vmlinux
def test_vmlinux_identical_to_bpftool() -> None:
    expected = bpftool_c(VMLINUX)
    actual = dump_c(Btf.from_file(VMLINUX))
    assert actual.startswith(HEADER) and actual.endswith(FOOTER)
    assert_same_text(expected, actual, str(VMLINUX))


@needs_bpftool
@pytest.mark.parametrize("path", objects_with_btf(), ids=lambda p: p.name)
def test_fixture_identical_to_bpftool(path: Path) -> None:
    assert_same_text(bpftool_c(path), dump_c(Btf.from_file(path)), path.name)


@needs_bpftool
@needs_clang
def test_sample_identical_to_bpftool(sample_objects: List[Path]) -> None:
    assert sample_objects
    for path in sample_objects:
        actual = dump_c(Btf.from_file(path))
        assert_same_text(bpftool_c(path), actual, path.name)
        # The sample's tricky parts really are in there.
        for needle in ("__attribute__((packed))", "long: 64;", ": 33;", "struct list___2",
                       "(*handlers[4])", "(void)", "[2][3][4]", "btf_type_tag(\"user\")",
                       "enum empty_fwd", "struct fwd_only;", "union fwd_union;"):
            assert needle in actual, (path.name, needle)


@needs_clang
def test_fast_tables_match_type_model(sample_objects: List[Path]) -> None:
    """The raw-bytes reader used for speed agrees with the decoded type model."""
    paths = list(sample_objects) + objects_with_btf()[:6]
    assert paths
    for path in paths:
        btf = Btf.from_file(path)
        wire = _tables_from_wire(btf)
        model = _tables_from_model(btf)
        assert wire.kind == model.kind, path.name
        assert wire.name == model.name, path.name
        assert wire.ref == model.ref, path.name
        assert wire.size == model.size, path.name
        assert wire.ptr_size == model.ptr_size == 8
        for type_id, (a, b) in enumerate(zip(wire.extra, model.extra)):
            if wire.kind[type_id] == 13:  # params: name offsets vs names
                assert [wire.strings[k] for k in a[0]] == b[0], (path.name, type_id)
                assert a[1] == b[1], (path.name, type_id)
            elif wire.kind[type_id] in (4, 5):
                assert tuple(a) == tuple(b), (path.name, type_id)
            else:
                assert a == b, (path.name, type_id)
        assert dump_c(btf) == dump_c(cast(Btf, _ModelOnly(btf))), path.name


class _ModelOnly:
    """A Btf look-alike without raw bytes: forces the type-model path."""

    def __init__(self, btf: Btf) -> None:
        self._btf = btf
        self.name = btf.name

    def __len__(self) -> int:
        return len(self._btf)

    def __getitem__(self, type_id: int) -> object:
        return self._btf[type_id]


# ------------------------------------------------------------------ compilation

CORE_PROG = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    int ppid = BPF_CORE_READ(prev, real_parent, tgid);
    unsigned long flags = BPF_CORE_READ(next, mm, def_flags);
    return ppid + (int)flags + prev->pid;
}
"""


@needs_clang
@needs_vmlinux
def test_vmlinux_header_compiles(tmp_path: Path) -> None:
    (tmp_path / "vmlinux.h").write_text(dump_c(Btf.from_file(VMLINUX)), errors="surrogateescape")
    obj = compile_bpf(CORE_PROG, tmp_path, "core_prog", extra=["-D__TARGET_ARCH_x86"])
    # The program's own BTF (from the header) has the types it used.
    names = {t.name for t in Btf.from_file(obj)}
    assert {"task_struct", "mm_struct"} <= names


# libbpf through ctypes: an oracle for layouts and for btf_dump__dump_type().

class _LibBpf:
    def __init__(self) -> None:
        lib = ctypes.CDLL("libbpf.so.1")
        lib.btf__parse.restype = ctypes.c_void_p
        lib.btf__parse.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.btf__free.argtypes = [ctypes.c_void_p]
        lib.btf__find_by_name_kind.restype = ctypes.c_int32
        lib.btf__find_by_name_kind.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__type_by_id.restype = ctypes.c_void_p
        lib.btf__type_by_id.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__name_by_offset.restype = ctypes.c_char_p
        lib.btf__name_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__resolve_size.restype = ctypes.c_int64
        lib.btf__resolve_size.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf_dump__new.restype = ctypes.c_void_p
        lib.btf_dump__new.argtypes = [ctypes.c_void_p, _PRINTF_FN, ctypes.c_void_p, ctypes.c_void_p]
        lib.btf_dump__dump_type.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf_dump__free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        libc = ctypes.CDLL(None)
        libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                   ctypes.c_void_p]
        self.libc = libc

    def parse(self, path: Path) -> int:
        btf = self.lib.btf__parse(str(path).encode(), None)
        assert btf, f"libbpf cannot parse {path}"
        return int(btf)

    def header(self, btf: int, type_id: int) -> Tuple[int, int, int, int]:
        """(kind, vlen, kflag, size_or_type) of ``struct btf_type`` ``type_id``."""
        ptr = self.lib.btf__type_by_id(btf, type_id)
        _name_off, info, size = struct.unpack("=III", ctypes.string_at(ptr, 12))
        return (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size

    def members(self, btf: int, type_id: int, prefix: str = "", base: int = 0,
                depth: int = 0) -> List[Tuple[str, int, int]]:
        """Every member reachable by name (``a.b.c``) from struct ``type_id``:
        ``(designator, bit offset, bitfield size)``, read from ``struct btf_member``.
        Anonymous and nested struct/union members are followed a few levels down."""
        ptr = self.lib.btf__type_by_id(btf, type_id)
        _kind, vlen, kflag, _size = self.header(btf, type_id)
        raw = ctypes.string_at(ptr + 12, 12 * vlen)
        out = []
        for m_name_off, m_type, m_off in struct.iter_unpack("=III", raw):
            name = self.lib.btf__name_by_offset(btf, m_name_off).decode()
            bit_off, bits = (m_off & 0xFFFFFF, m_off >> 24) if kflag else (m_off, 0)
            path = f"{prefix}{name}" if name else prefix.rstrip(".")
            if name:
                out.append((path, base + bit_off, bits))
            # Follow typedefs/qualifiers to a struct or union member.
            target, kind = m_type, self.header(btf, m_type)[0]
            while kind in (8, 9, 10, 11):
                target = self.header(btf, target)[3]
                kind = self.header(btf, target)[0]
            if kind in (4, 5) and depth < 3:
                sub_prefix = f"{path}." if path else ""
                out.extend(self.members(btf, target, sub_prefix, base + bit_off, depth + 1))
        return out

    def dump_types(self, btf: int, ids: Iterable[int]) -> str:
        chunks: List[bytes] = []
        buf = ctypes.create_string_buffer(1 << 16)

        def printf(_ctx: Optional[int], fmt: bytes, args: Optional[int]) -> None:
            n = self.libc.vsnprintf(buf, len(buf), fmt, args)
            chunks.append(buf.raw[:n])

        callback = _PRINTF_FN(printf)
        dumper = self.lib.btf_dump__new(btf, callback, None, None)
        assert dumper
        try:
            for type_id in ids:
                assert self.lib.btf_dump__dump_type(dumper, type_id) == 0
        finally:
            self.lib.btf_dump__free(dumper)
        return b"".join(chunks).decode("utf-8", "surrogateescape")


_PRINTF_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)


@pytest.fixture(scope="module")
def libbpf() -> _LibBpf:
    try:
        return _LibBpf()
    except OSError as exc:  # pragma: no cover - the image ships libbpf1
        pytest.skip(f"libbpf.so.1 not loadable: {exc}")


def normalise_libbpf_1_1_2(text: str) -> str:
    """The system libbpf.so (1.1.2) and bpftool's built-in copy differ in two places:
    the shared library writes zero-argument prototypes as ``()`` and adds
    ``__attribute__((mode(byte|word)))`` to odd-sized enums; bpftool does neither."""
    text = text.replace(" __attribute__((mode(byte)))", "").replace(
        " __attribute__((mode(word)))", "")
    for before, after in ((")();", ")(void);"), (")(),", ")(void),"), (")())", ")(void))"),
                          (")()", ")(void)")):
        text = text.replace(before, after)
    return text


ROOTS = (("task_struct", 4), ("sk_buff", 4))


@needs_vmlinux
def test_roots_match_libbpf_dump_type(libbpf: _LibBpf) -> None:
    btf = Btf.from_file(VMLINUX)
    lb = libbpf.parse(VMLINUX)
    try:
        for name, kind in ROOTS:
            type_id = libbpf.lib.btf__find_by_name_kind(lb, name.encode(), kind)
            assert type_id > 0
            expected = normalise_libbpf_1_1_2(libbpf.dump_types(lb, [type_id]))
            actual = dump_c(btf, root_types=[type_id])
            assert actual.startswith(HEADER) and actual.endswith(FOOTER)
            body = actual[len(HEADER):-len(FOOTER)]
            assert_same_text(normalise_libbpf_1_1_2(body), expected, f"roots {name}")
        # Several roots share one dumper: later roots do not repeat earlier types.
        ids = [libbpf.lib.btf__find_by_name_kind(lb, n.encode(), k) for n, k in ROOTS]
        expected = normalise_libbpf_1_1_2(libbpf.dump_types(lb, ids))
        body = dump_c(btf, root_types=ids)[len(HEADER):-len(FOOTER)]
        assert_same_text(expected, normalise_libbpf_1_1_2(body), "roots together")
    finally:
        libbpf.lib.btf__free(lb)


@needs_clang
@needs_vmlinux
def test_root_subset_compiles_with_kernel_layouts(tmp_path: Path, libbpf: _LibBpf) -> None:
    """A subset header keeps every layout: offsetof/sizeof checked against libbpf's view."""
    btf = Btf.from_file(VMLINUX)
    lb = libbpf.parse(VMLINUX)
    asserts: List[str] = []
    ids = []
    try:
        for name, kind in ROOTS:
            type_id = libbpf.lib.btf__find_by_name_kind(lb, name.encode(), kind)
            ids.append(type_id)
            members = libbpf.members(lb, type_id)
            size = libbpf.lib.btf__resolve_size(lb, type_id)
            asserts.append(f"_Static_assert(sizeof(struct {name}) == {size}, \"size {name}\");")
            named = 0
            for m_name, bit_off, bits in members:
                if not m_name or bits:
                    continue  # offsetof() needs a named, non-bitfield member
                assert bit_off % 8 == 0
                asserts.append(f"_Static_assert(__builtin_offsetof(struct {name}, {m_name}) == "
                               f"{bit_off // 8}, \"{name}.{m_name}\");")
                named += 1
            assert named > 50, (name, named)
    finally:
        libbpf.lib.btf__free(lb)
    header = dump_c(btf, root_types=ids)
    full = dump_c(btf)
    assert len(header) < len(full) // 2  # really a subset
    (tmp_path / "subset.h").write_text(header, errors="surrogateescape")
    probe = '#include "subset.h"\n' + "\n".join(asserts) + "\nint probe_anchor;\n"
    compile_bpf(probe, tmp_path, "probe")


@needs_clang
def test_sample_roots_compile(sample_objects: List[Path], tmp_path: Path) -> None:
    for path in sample_objects[:1]:
        btf = Btf.from_file(path)
        root = btf.find_by_name("all")
        assert root
        header = dump_c(btf, root_types=root)
        assert "struct ops {" in header and "struct list___2" not in header
        (tmp_path / "all.h").write_text(header)
        compile_bpf('#include "all.h"\nint f(struct all *a) { return a->o.matrix[1][1][1]; }\n',
                    tmp_path, "all_probe")


def test_unknown_root_is_not_found() -> None:
    btf = Btf.from_bytes(build_btf([int_type("int")]))
    with pytest.raises(NotFoundError):
        dump_c(btf, root_types=[5])
    assert dump_c(btf, root_types=[]) == HEADER + FOOTER
    assert dump_c(btf) == HEADER + FOOTER  # an INT needs no declaration


# ----------------------------------------------------------- hand-made (bad) input

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT = 1, 2, 3, 4
KIND_TYPEDEF, KIND_CONST = 8, 10


class _Types:
    """A tiny BTF builder: types as (name, info, size_or_type, trailer bytes)."""

    def __init__(self, str_start: int = 0) -> None:
        self.strings = bytearray(b"\0")
        self.str_start = str_start  # split BTF: offsets continue after the base's strings
        self.offsets: Dict[str, int] = {"": 0}

    def name(self, text: str) -> int:
        if text not in self.offsets:
            self.offsets[text] = self.str_start + len(self.strings)
            self.strings += text.encode() + b"\0"
        return self.offsets[text]


TypeSpec = Callable[[_Types], bytes]


def int_type(name: str, size: int = 4) -> TypeSpec:
    return lambda b: struct.pack("<III", b.name(name), KIND_INT << 24, size) + struct.pack(
        "<I", (1 << 24) | (size * 8))


def ref_type(kind: int, target: int, name: str = "") -> TypeSpec:
    return lambda b: struct.pack("<III", b.name(name), kind << 24, target)


def struct_type(name: str, size: int, members: Sequence[Tuple[str, int, int]]) -> TypeSpec:
    def build(b: _Types) -> bytes:
        out = struct.pack("<III", b.name(name), (KIND_STRUCT << 24) | len(members), size)
        for m_name, m_type, bit_off in members:
            out += struct.pack("<III", b.name(m_name), m_type, bit_off)
        return out
    return build


def build_btf(types: Sequence[TypeSpec], str_start: int = 0) -> bytes:
    b = _Types(str_start)
    body = b"".join(spec(b) for spec in types)
    strings = bytes(b.strings)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strings))
    return header + body + strings


def dump_bytes(data: bytes) -> str:
    return dump_c(Btf.from_bytes(data, name="<test>"))


@needs_bpftool
def test_split_btf_identical_to_bpftool(tmp_path: Path) -> None:
    """Split BTF (as for kernel modules): ids and string offsets continue the base's."""
    base_bytes = build_btf([
        int_type("int"),                                   # 1
        struct_type("base_s", 4, [("a", 1, 0)]),           # 2
        ref_type(KIND_PTR, 2),                             # 3
    ])
    base_str_len = struct.unpack_from("<I", base_bytes, 20)[0]
    split_bytes = build_btf([
        struct_type("mod_s", 24, [("b", 2, 0), ("p", 3, 64), ("own", 6, 128)]),  # 4
        ref_type(KIND_TYPEDEF, 4, "mod_t"),                                       # 5
        struct_type("base_s", 8, [("x", 1, 0), ("y", 1, 32)]),                    # 6
        ref_type(KIND_PTR, 5),                                                    # 7
        struct_type("user", 8, [("m", 7, 0)]),                                    # 8
    ], str_start=base_str_len)
    (tmp_path / "base.btf").write_bytes(base_bytes)
    (tmp_path / "split.btf").write_bytes(split_bytes)
    base = Btf.from_bytes(base_bytes, name="base")
    split = Btf.from_bytes(split_bytes, base=base, name="split")
    assert BPFTOOL is not None
    expected = subprocess.run([BPFTOOL, "-B", str(tmp_path / "base.btf"), "btf", "dump", "file",
                               str(tmp_path / "split.btf"), "format", "c"],
                              capture_output=True, check=True).stdout.decode()
    actual = dump_c(split)
    assert_same_text(expected, actual, "split BTF")
    assert "struct base_s___2 {" in actual and "struct mod_s {" in actual


@needs_bpftool
def test_deeply_nested_structs_like_bpftool(tmp_path: Path) -> None:
    """200 structs each embedding the previous one: legal, deep, and no RecursionError."""
    types: List[TypeSpec] = [int_type("int"), struct_type("s0", 4, [("v", 1, 0)])]
    for level in range(1, 200):
        types.append(struct_type(f"s{level}", 4 * (level + 1),
                                 [("x", 1, 0), ("inner", level + 1, 32)]))
    data = build_btf(types)
    (tmp_path / "nested.btf").write_bytes(data)
    assert_same_text(bpftool_c(tmp_path / "nested.btf"), dump_bytes(data), "nested")


def test_handmade_btf_dumps() -> None:
    text = dump_bytes(build_btf([
        int_type("int"),                                    # 1
        struct_type("pair", 8, [("a", 1, 0), ("b", 1, 32)]),  # 2
        ref_type(KIND_TYPEDEF, 2, "pair_t"),                # 3
        ref_type(KIND_PTR, 3),                              # 4
        struct_type("holder", 8, [("p", 4, 0)]),            # 5
    ]))
    assert text == HEADER + (
        "struct pair {\n\tint a;\n\tint b;\n};\n\n"
        "typedef struct pair pair_t;\n\n"
        "struct holder {\n\tpair_t *p;\n};\n\n") + FOOTER


@pytest.mark.parametrize("types, what", [
    # typedef A -> const -> typedef A
    ([ref_type(KIND_TYPEDEF, 2, "A"), ref_type(KIND_CONST, 1)], "typedef/const loop"),
    # a pointer to itself
    ([ref_type(KIND_PTR, 1), struct_type("s", 8, [("p", 1, 0)])], "pointer loop"),
    # a struct embedding itself
    ([struct_type("s", 8, [("self", 1, 0)])], "struct cycle"),
    # typedef T -> ptr -> typedef T
    ([ref_type(KIND_TYPEDEF, 2, "T"), ref_type(KIND_PTR, 1)], "typedef/pointer loop"),
    # a typedef of a type id that does not exist
    ([int_type("int"), ref_type(KIND_TYPEDEF, 99, "dangling")], "dangling id"),
    # a struct member of a type id that does not exist
    ([struct_type("s", 4, [("m", 42, 0)])], "dangling member"),
    # a struct size that would need a gigabyte of padding lines
    ([int_type("int"), struct_type("huge", 1 << 30, [("m", 1, 0)])], "huge padding"),
    # names that are not C identifiers
    ([int_type("int"), struct_type("not an identifier", 4, [("m", 1, 0)])], "bad struct name"),
    ([int_type("int"), struct_type("s", 4, [("m-1", 1, 0)])], "bad member name"),
    ([int_type("int"), ref_type(KIND_TYPEDEF, 1, "1st")], "bad typedef name"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_btf_raises_btf_error(types: Sequence[TypeSpec], what: str) -> None:
    data = build_btf(types)
    try:
        btf = Btf.from_bytes(data, name="<bad>")
    except BtfError:
        return  # the reader already refused it: fine
    with pytest.raises(BtfError) as info:
        dump_c(btf)
    assert info.value.file == "<bad>"


def test_deep_chain_is_an_error_not_a_recursion_error() -> None:
    depth = 5000
    types: List[TypeSpec] = [int_type("int")]
    for i in range(depth):
        types.append(ref_type(KIND_CONST, i + 1))  # const -> const -> ... -> int
    types.append(ref_type(KIND_TYPEDEF, depth + 1, "deep_t"))
    with pytest.raises(BtfError):
        dump_bytes(build_btf(types))


def test_long_but_legal_chain() -> None:
    types: List[TypeSpec] = [int_type("int")]
    for i in range(30):
        types.append(ref_type(KIND_PTR, i + 1))
    types.append(ref_type(KIND_TYPEDEF, 31, "p30"))
    text = dump_bytes(build_btf(types))
    assert "typedef int " + "*" * 30 + "p30;\n" in text


@needs_clang
def test_mutated_sample_only_raises_purebpf_errors(sample_objects: List[Path]) -> None:
    """Corrupt type-section words at random: a purebpf error or a header, nothing else."""
    raw = Btf.from_file(sample_objects[0]).raw
    hdr_len, type_off, type_len = struct.unpack_from("<III", raw, 4)[0], *struct.unpack_from(
        "<II", raw, 8)
    start = hdr_len + type_off
    words = type_len // 4

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.tuples(st.integers(0, words - 1), st.integers(0, 2**32 - 1)),
                               min_size=1, max_size=4))
    def check(patches: List[Tuple[int, int]]) -> None:
        data = bytearray(raw)
        for index, value in patches:
            struct.pack_into("<I", data, start + 4 * index, value)
        try:
            text = dump_c(Btf.from_bytes(bytes(data), name="<mutant>"))
        except PurebpfError:
            return
        assert text.startswith(HEADER) and text.endswith(FOOTER)

    check()
