"""BTF dumpers against bpftool: the raw text dump byte for byte, the JSON dump object for object.

Oracle: bpftool 7.1 (``bpftool btf dump file F`` and ``bpftool -j ...``).
Inputs: every fixture object, a C source compiled here for both byte orders
covering every BTF kind, the running kernel's vmlinux BTF, and split BTF
built with libbpf (through ctypes) over a small base and over vmlinux.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import functools
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.btf import Btf
from purebpf.btf.dump_json import dump_json, json_types
from purebpf.btf.dump_raw import KIND_NAMES, dump_raw, iter_raw_lines
from purebpf.errors import BtfError, ParseError, PurebpfError

from conftest import fixture_objects

VMLINUX = Path("/sys/kernel/btf/vmlinux")


def _find_bpftool() -> Optional[str]:
    if os.path.exists("/usr/sbin/bpftool"):
        return "/usr/sbin/bpftool"
    return shutil.which("bpftool")


BPFTOOL = _find_bpftool()
needs_bpftool = pytest.mark.skipif(BPFTOOL is None, reason="oracle tool missing: bpftool is not installed")


# ---------------------------------------------------------------------------
# oracle helpers


def bpftool_dump(path: Path, *, as_json: bool = False, base: Optional[Path] = None) -> "subprocess.CompletedProcess[bytes]":
    """Run ``bpftool [-j] [-B base] btf dump file PATH``."""
    assert BPFTOOL is not None
    cmd = [BPFTOOL]
    if as_json:
        cmd.append("-j")
    if base is not None:
        cmd += ["-B", str(base)]
    cmd += ["btf", "dump", "file", str(path)]
    return subprocess.run(cmd, capture_output=True, check=False)


def assert_same_text(ours: str, expected: bytes, what: str) -> None:
    """Byte-identical or fail showing the first differing lines (unified diff, <= 40 lines)."""
    ours_b = ours.encode("utf-8", "surrogateescape")
    if ours_b == expected:
        return
    a = expected.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    b = ours.splitlines(keepends=True)
    diff = list(difflib.unified_diff(a, b, fromfile=f"bpftool {what}", tofile=f"purebpf {what}", n=3))
    shown = "".join(diff[:40])
    more = f"\n... ({len(diff) - 40} more diff lines)" if len(diff) > 40 else ""
    pytest.fail(f"raw dump of {what} differs from bpftool ({len(b)} vs {len(a)} lines):\n{shown}{more}")


def first_json_difference(ours: Any, theirs: Any, path: str = "$") -> Optional[str]:
    """Where two parsed JSON documents first differ (None when equal)."""
    if type(ours) is not type(theirs):
        return f"{path}: {ours!r} != {theirs!r}"
    if isinstance(ours, dict):
        if list(ours) != list(theirs):
            return f"{path}: keys {list(ours)} != {list(theirs)}"
        for k in ours:
            d = first_json_difference(ours[k], theirs[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(ours, list):
        for i, (x, y) in enumerate(zip(ours, theirs)):
            d = first_json_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(ours) != len(theirs):
            return f"{path}: {len(ours)} items != {len(theirs)} items"
        return None
    return None if ours == theirs else f"{path}: {ours!r} != {theirs!r}"


def assert_same_json(ours: str, expected: bytes, what: str) -> None:
    mine = json.loads(ours)
    theirs = json.loads(expected.decode("utf-8", "surrogateescape"))
    if mine != theirs:
        pytest.fail(f"JSON dump of {what} differs from bpftool -j: "
                    f"{first_json_difference(mine, theirs)}")


# ---------------------------------------------------------------------------
# a C source with every BTF kind, compiled here for both byte orders

ALL_KINDS_C = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(x) __attribute__((section(x), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))

enum uns { U_A = 0, U_B = 0xffffffff, U_C = 0x80000000 };
enum sgn { S_A = -1, S_B = 2, S_C = -2147483647 - 1 };
enum big64 { B_A = 0x100000000ULL, B_B = 0xffffffffffffffffULL };
enum sbig64 { SB_A = -0x100000000LL, SB_B = 3 };

struct bits {
    unsigned int a:3;
    int b:5;
    unsigned long long c:40;
    char d;
    union { int x; float y; };
    struct fwdonly *fp;
    union fwdu *fu;
    double dd;
    _Bool flag;
    signed char sc;
    int arr[4][2];
    volatile const int * restrict rp;
    int __ttag("user") *tp;
    int (*fnp)(int, char *);
    char tail[];
} __tag("structtag");

struct tagged { int m __tag("memtag"); int n; };
union un { int i; long l; };

int glob_a = 1;
static volatile int stat_vol = 5;
const volatile int ro_c = 3;
int bss_d;
u64 gtyped; u32 gtyped2;
extern int ext_e __attribute__((weak));
extern int kfn(int x) __attribute__((section(".ksyms"))) __attribute__((weak));
extern unsigned int CONFIG_HZ __attribute__((section(".kconfig"))) __attribute__((weak));
struct bits gbits;
struct tagged gtag;
union un gun;
enum uns gu; enum sgn gs; enum big64 gb; enum sbig64 gsb;

static __attribute__((noinline)) int helper(int x __tag("argtag"), ...) { return x + stat_vol; }

SEC("tp/syscalls/sys_enter_write") int prog(void *ctx)
{
    return helper(glob_a, 1) + ro_c + bss_d + (ext_e ? 1 : 0) + gbits.a + gtag.m + gun.i
        + gu + gs + (int)gb + (int)gsb + (int)gtyped + gtyped2 + kfn(1) + CONFIG_HZ;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def compiled_objects(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("oracle tool missing: clang-19 is not installed")
    d = tmp_path_factory.mktemp("btf_dump_src")
    src = d / "all_kinds.bpf.c"
    src.write_text(ALL_KINDS_C)
    out: Dict[str, Path] = {}
    for target in ("bpf", "bpfel", "bpfeb"):
        obj = d / f"all_kinds.{target}.o"
        subprocess.run([clang, "-g", "-O2", "-target", target, "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        out[target] = obj
    return out


OBJECT_CASES = [f"fixture:{p.name}" for p in fixture_objects()] + [
    "compiled:bpf", "compiled:bpfeb"]


def _object_path(case: str, compiled: Dict[str, Path]) -> Path:
    kind, _, name = case.partition(":")
    if kind == "compiled":
        return compiled[name]
    return Path(__file__).resolve().parent.parent / "fixtures" / "obj" / name


@needs_bpftool
@pytest.mark.parametrize("case", OBJECT_CASES)
def test_raw_and_json_match_bpftool_for_objects(case: str, compiled_objects: Dict[str, Path]) -> None:
    path = _object_path(case, compiled_objects)
    text = bpftool_dump(path)
    if text.returncode != 0:
        # bpftool cannot read it (an object without .BTF, say): we must refuse too.
        with pytest.raises(PurebpfError):
            dump_raw(Btf.from_file(path))
        return
    btf = Btf.from_file(path)
    assert_same_text(dump_raw(btf), text.stdout, path.name)
    js = bpftool_dump(path, as_json=True)
    assert js.returncode == 0, js.stderr
    assert_same_json(dump_json(btf), js.stdout, path.name)


@needs_bpftool
def test_compiled_source_covers_every_kind(compiled_objects: Dict[str, Path]) -> None:
    """The hand-written source really exercises every kind, per bpftool's own dump."""
    out = bpftool_dump(compiled_objects["bpf"]).stdout.decode()
    kinds = {line.split()[1] for line in out.splitlines() if line.startswith("[")}
    assert kinds == set(KIND_NAMES) - {"UNKNOWN"}
    for needle in ("bitfield_size=", "encoding=SIGNED size=4", "encoding=UNSIGNED size=4",
                   "LL\n", "ULL\n", "fwd_kind=union", "linkage=extern", "linkage=static",
                   "component_idx=-1", "component_idx=0", "(FUNC 'kfn')", "encoding=BOOL"):
        assert needle in out, needle


@needs_bpftool
def test_big_and_little_endian_objects_dump_alike(compiled_objects: Dict[str, Path]) -> None:
    le = Btf.from_file(compiled_objects["bpfel"])
    be = Btf.from_file(compiled_objects["bpfeb"])
    assert (le.byteorder, be.byteorder) == ("little", "big")
    assert dump_raw(le) == dump_raw(be)
    assert dump_json(le) == dump_json(be)


@needs_bpftool
@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
def test_vmlinux_raw_matches_bpftool() -> None:
    expected = bpftool_dump(VMLINUX)
    assert expected.returncode == 0, expected.stderr
    assert_same_text(dump_raw(Btf.from_file(VMLINUX)), expected.stdout, "vmlinux")


@needs_bpftool
@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
def test_vmlinux_json_matches_bpftool() -> None:
    expected = bpftool_dump(VMLINUX, as_json=True)
    assert expected.returncode == 0, expected.stderr
    ours = dump_json(Btf.load_vmlinux())
    assert_same_json(ours, expected.stdout, "vmlinux")
    # Same key order and compact separators: even the text is bpftool's.
    assert ours.encode() == expected.stdout


# ---------------------------------------------------------------------------
# BTF built with libbpf through ctypes (base + split)


class LibbpfBtf:
    """A ``struct btf *`` being written with libbpf's btf__add_* API."""

    _lib: Optional[ctypes.CDLL] = None

    @classmethod
    def lib(cls) -> ctypes.CDLL:
        if cls._lib is None:
            name = ctypes.util.find_library("bpf") or "libbpf.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                pytest.skip("oracle library missing: libbpf.so.1")
            P, S, I, U32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32
            sigs: Dict[str, Tuple[Any, List[Any]]] = {
                "btf__new_empty": (P, []),
                "btf__new_empty_split": (P, [P]),
                "btf__parse": (P, [S, P]),
                "btf__free": (None, [P]),
                "btf__raw_data": (P, [P, ctypes.POINTER(U32)]),
                "btf__type_cnt": (U32, [P]),
                "btf__find_by_name_kind": (I, [P, S, U32]),
                "btf__add_int": (I, [P, S, ctypes.c_size_t, I]),
                "btf__add_float": (I, [P, S, ctypes.c_size_t]),
                "btf__add_ptr": (I, [P, I]),
                "btf__add_array": (I, [P, I, I, U32]),
                "btf__add_struct": (I, [P, S, U32]),
                "btf__add_union": (I, [P, S, U32]),
                "btf__add_field": (I, [P, S, I, U32, U32]),
                "btf__add_enum": (I, [P, S, U32]),
                "btf__add_enum_value": (I, [P, S, ctypes.c_int64]),
                "btf__add_enum64": (I, [P, S, U32, ctypes.c_bool]),
                "btf__add_enum64_value": (I, [P, S, ctypes.c_uint64]),
                "btf__add_fwd": (I, [P, S, I]),
                "btf__add_typedef": (I, [P, S, I]),
                "btf__add_volatile": (I, [P, I]),
                "btf__add_const": (I, [P, I]),
                "btf__add_restrict": (I, [P, I]),
                "btf__add_type_tag": (I, [P, S, I]),
                "btf__add_func": (I, [P, S, I, I]),
                "btf__add_func_proto": (I, [P, I]),
                "btf__add_func_param": (I, [P, S, I]),
                "btf__add_var": (I, [P, S, I, I]),
                "btf__add_datasec": (I, [P, S, U32]),
                "btf__add_datasec_var_info": (I, [P, I, U32, U32]),
                "btf__add_decl_tag": (I, [P, S, I, I]),
                "btf__set_endianness": (I, [P, I]),
            }
            for fn, (res, args) in sigs.items():
                f = getattr(lib, fn)
                f.restype = res
                f.argtypes = args
            cls._lib = lib
        return cls._lib

    def __init__(self, base: "Optional[LibbpfBtf]" = None, *, ptr: Optional[int] = None) -> None:
        lib = self.lib()
        if ptr is not None:
            self.ptr = ptr
        elif base is not None:
            self.ptr = lib.btf__new_empty_split(base.ptr)
        else:
            self.ptr = lib.btf__new_empty()
        assert self.ptr, "libbpf could not create a BTF object"

    @classmethod
    def parse(cls, path: Path) -> "LibbpfBtf":
        ptr = cls.lib().btf__parse(str(path).encode(), None)
        assert ptr, f"libbpf could not parse {path}"
        return cls(ptr=ptr)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.lib(), "btf__" + name)

        def call(*args: Any) -> int:
            conv = [a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a for a in args]
            ret: int = fn(self.ptr, *conv)
            assert ret >= 0, f"btf__{name}{args} failed: {ret}"
            return ret
        return call

    def raw(self) -> bytes:
        size = ctypes.c_uint32()
        p = self.lib().btf__raw_data(self.ptr, ctypes.byref(size))
        assert p
        return ctypes.string_at(p, size.value)

    def free(self) -> None:
        self.lib().btf__free(self.ptr)


def add_every_kind(b: LibbpfBtf, base_int: int, base_struct: int, base_var: int) -> None:
    """Append one or more types of every kind; some refer to the base, some names reuse base strings."""
    u8 = b.add_int("u8x", 1, 0)
    odd = b.add_int("odd_encoding", 1, 1 | 2)            # SIGNED|CHAR -> encoding=UNKN
    b.add_int("_Bool", 1, 4)
    b.add_int("base_s", 8, 1)                            # a name that lives in the base's strings
    b.add_ptr(base_struct)
    arr = b.add_array(base_int, u8, 7)
    s = b.add_struct("with_bits", 16)
    b.add_field("lo", base_int, 0, 3)
    b.add_field("hi", base_int, 3, 29)
    b.add_field(None, arr, 32, 0)
    b.add_field("b", base_struct, 64, 0)
    b.add_struct(None, 0)
    b.add_union("un", 8)
    b.add_field("x", base_int, 0, 0)
    b.add_field("y", odd, 0, 0)
    b.add_enum("uns", 4)
    b.add_enum_value("U_MAX", 0xFFFFFFFF)
    b.add_enum_value("U_HIGH", 0x80000000)
    b.add_enum(None, 4)
    b.add_enum_value("S_NEG", -1)
    b.add_enum_value("S_MIN", -(1 << 31))
    b.add_enum64("e64", 8, False)
    b.add_enum64_value("E_BIG", (1 << 64) - 1)
    b.add_enum64_value("E_33", 1 << 33)
    b.add_enum64("se64", 8, True)
    b.add_enum64_value("SE_NEG", (1 << 64) - (1 << 40))  # -2**40 as a u64
    b.add_fwd("fs", 0)
    b.add_fwd("fu", 1)
    b.add_fwd("fe", 2)                                   # an enum forward declaration: ENUM vlen=0
    td = b.add_typedef("td", s)
    b.add_volatile(td)
    b.add_const(base_int)
    b.add_restrict(b.add_ptr(td))
    b.add_type_tag("user", base_int)
    proto = b.add_func_proto(base_int)
    b.add_func_param("a", base_int)
    b.add_func_param(None, arr)
    b.add_func_param(None, 0)                            # ... (variadic)
    f_static = b.add_func("f_static", 0, proto)
    b.add_func("f_global", 1, proto)
    f_extern = b.add_func("f_extern", 2, proto)
    v_static = b.add_var("v_static", 0, base_int)
    v_global = b.add_var("v_global", 1, s)
    v_extern = b.add_var("v_extern", 2, base_int)
    b.add_datasec(".data.mod", 24)
    b.add_datasec_var_info(v_static, 0, 4)
    b.add_datasec_var_info(v_global, 8, 16)
    b.add_datasec_var_info(base_var, 4, 4)               # a VAR of the base
    b.add_datasec(".ksyms", 0)
    b.add_datasec_var_info(v_extern, 0, 4)
    b.add_datasec_var_info(f_extern, 0, 0)
    b.add_float("flt", 4)
    b.add_float("long double", 16)
    b.add_decl_tag("on_type", s, -1)
    b.add_decl_tag("on_member", s, 1)
    b.add_decl_tag("on_param", f_static, 0)
    b.add_decl_tag("q\"uote\\back", v_static, -1)       # JSON escapes
    b.add_typedef("caf\udce9", base_int)                 # a non-UTF-8 name (raw byte 0xe9)


def build_base(b: LibbpfBtf) -> Tuple[int, int, int]:
    i = b.add_int("int", 4, 1)
    s = b.add_struct("base_s", 8)
    b.add_field("a", i, 0, 0)
    b.add_field("b", i, 32, 0)
    v = b.add_var("base_var", 1, i)
    b.add_datasec(".data", 8)
    b.add_datasec_var_info(v, 0, 4)
    return i, s, v


@pytest.fixture(scope="module")
def split_files(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    d = tmp_path_factory.mktemp("btf_split")
    base = LibbpfBtf()
    ids = build_base(base)
    split = LibbpfBtf(base)
    add_every_kind(split, *ids)
    base_path, split_path = d / "base.btf", d / "split.btf"
    base_path.write_bytes(base.raw())
    split_path.write_bytes(split.raw())
    split.free()
    base.free()
    return base_path, split_path


@needs_bpftool
def test_split_btf_matches_bpftool(split_files: Tuple[Path, Path]) -> None:
    base_path, split_path = split_files
    base = Btf.from_file(base_path)
    split = Btf.from_file(split_path, base=base)
    assert split.start_id == 5      # the base holds types 1..4
    text = bpftool_dump(split_path, base=base_path)
    assert text.returncode == 0, text.stderr
    ours = dump_raw(split)
    assert ours.startswith("[5] INT 'u8x' ")       # only the split part, absolute ids
    assert_same_text(ours, text.stdout, "split BTF")
    js = bpftool_dump(split_path, base=base_path, as_json=True)
    assert js.returncode == 0, js.stderr
    assert_same_json(dump_json(split), js.stdout, "split BTF")
    # and the base alone
    assert_same_text(dump_raw(base), bpftool_dump(base_path).stdout, "split base")


@needs_bpftool
@pytest.mark.skipif(not VMLINUX.exists(), reason="kernel feature missing: /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
def test_split_over_vmlinux_matches_bpftool(tmp_path: Path) -> None:
    """A module-like split BTF whose types and strings continue vmlinux's."""
    vml = LibbpfBtf.parse(VMLINUX)
    base_int = vml.find_by_name_kind("int", 1)
    base_struct = vml.find_by_name_kind("task_struct", 4)
    base_var = vml.find_by_name_kind("runqueues", 14)     # a per-CPU VAR of vmlinux
    split = LibbpfBtf(vml)
    add_every_kind(split, base_int, base_struct, base_var)
    path = tmp_path / "module.btf"
    path.write_bytes(split.raw())
    split.free()
    vml.free()
    btf = Btf.from_file(path, base=Btf.load_vmlinux())
    text = bpftool_dump(path, base=VMLINUX)
    assert text.returncode == 0, text.stderr
    assert_same_text(dump_raw(btf), text.stdout, "split over vmlinux")
    js = bpftool_dump(path, base=VMLINUX, as_json=True)
    assert_same_json(dump_json(btf), js.stdout, "split over vmlinux")


# ---------------------------------------------------------------------------
# bad input: purebpf errors only, and bpftool's answer whenever both accept


@functools.lru_cache(maxsize=None)
def _small_btf() -> bytes:
    """A standalone (non-split) BTF blob with every kind, written by libbpf."""
    b = LibbpfBtf()
    add_every_kind(b, *build_base(b))
    raw = b.raw()
    b.free()
    return raw


@needs_bpftool
@pytest.mark.parametrize("big_endian", [False, True], ids=["little", "big"])
def test_libbpf_written_btf_matches_bpftool(tmp_path: Path, big_endian: bool) -> None:
    """Every kind (and bpftool's quirks) in a standalone BTF, written in either byte order."""
    b = LibbpfBtf()
    add_every_kind(b, *build_base(b))
    if big_endian:
        b.set_endianness(1)                                 # BTF_BIG_ENDIAN
    path = tmp_path / "every_kind.btf"
    path.write_bytes(b.raw())
    b.free()
    btf = Btf.from_file(path)
    assert btf.byteorder == ("big" if big_endian else "little")
    assert_same_text(dump_raw(btf), bpftool_dump(path).stdout, path.name)
    assert_same_json(dump_json(btf), bpftool_dump(path, as_json=True).stdout, path.name)


@needs_bpftool
def test_odd_but_loadable_btf_prints_like_bpftool(tmp_path: Path) -> None:
    """Dangling type ids, a DATASEC entry naming void, and a name_off that points at ""."""
    b = LibbpfBtf()
    i = b.add_int("int", 4, 1)
    v = b.add_var("v", 1, i)
    b.add_datasec(".d", 8)
    b.add_datasec_var_info(v, 0, 4)
    b.add_datasec_var_info(0, 4, 4)       # void: bpftool prints (UNKNOWN '(anon)')
    b.add_datasec_var_info(4, 4, 4)       # a later type
    b.add_datasec_var_info(999, 4, 4)     # past the last id: no annotation at all
    b.add_ptr(777)
    raw = bytearray(b.raw())
    b.free()
    # Give the PTR (the last 12 bytes of the type section) a name_off that points at the
    # NUL ending "int": an empty name that is not name_off 0, printed '' and not '(anon)'.
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
    strings = bytes(raw[hdr_len + str_off:hdr_len + str_off + str_len])
    struct.pack_into("<I", raw, hdr_len + type_off + type_len - 12, strings.index(b"int\0") + 3)
    path = tmp_path / "odd.btf"
    path.write_bytes(raw)
    btf = Btf.from_file(path)
    ours = dump_raw(btf)
    assert "(UNKNOWN '(anon)')" in ours and "[4] PTR '' type_id=777" in ours
    assert_same_text(ours, bpftool_dump(path).stdout, "odd BTF")
    assert_same_json(dump_json(btf), bpftool_dump(path, as_json=True).stdout, "odd BTF")


def test_empty_btf_dumps_nothing() -> None:
    b = LibbpfBtf()
    raw = b.raw()
    b.free()
    btf = Btf.from_bytes(raw)
    assert dump_raw(btf) == ""
    assert json.loads(dump_json(btf)) == {"types": []}


def test_truncated_type_section_is_a_btf_error() -> None:
    raw = bytearray(_small_btf())
    # Shrink type_len (header word 5) by 2 bytes: the last type's trailer no longer fits.
    type_len = int.from_bytes(raw[12:16], "little")
    raw[12:16] = (type_len - 2).to_bytes(4, "little")
    with pytest.raises(BtfError):
        btf = Btf.from_bytes(bytes(raw))
        dump_raw(btf)
    with pytest.raises(BtfError):
        btf = Btf.from_bytes(bytes(raw))
        dump_json(btf)


def test_iter_raw_lines_yields_one_chunk_per_type() -> None:
    btf = Btf.from_bytes(_small_btf())
    chunks = list(iter_raw_lines(btf))
    assert len(chunks) == len(btf) - 1
    assert [c.split(" ", 1)[0] for c in chunks] == [f"[{i}]" for i in btf.ids()]
    assert dump_raw(btf) == "\n".join(chunks) + "\n"


def test_json_types_are_the_dump_document() -> None:
    btf = Btf.from_bytes(_small_btf())
    types = json_types(btf)
    assert json.loads(dump_json(btf)) == {"types": types}
    assert [t["id"] for t in types] == list(range(1, len(types) + 1))


def test_json_without_bpftool_quirks_keeps_the_btf_values() -> None:
    """bpftool_compat=False: the values libbpf was given, not bpftool's renderings of them."""
    btf = Btf.from_bytes(_small_btf())
    compat = json_types(btf)
    faithful = json_types(btf, bpftool_compat=False)
    by_name = {t["name"]: t for t in faithful}
    assert [v["val"] for v in by_name["uns"]["values"]] == [0xFFFFFFFF, 0x80000000]
    assert [v["val"] for v in {t["name"]: t for t in compat}["uns"]["values"]] == [
        (1 << 64) - 1, (1 << 64) - (1 << 31)]
    signed = [t for t in faithful if t["kind"] == "ENUM" and t["encoding"] == "SIGNED"]
    assert [v["val"] for v in signed[0]["values"]] == [-1, -(1 << 31)]
    assert 'q"uote\\back' in by_name
    assert 'q"uote\nback' in {t["name"] for t in compat}
    # Everything else is identical.
    diffs = [i for i, (a, b) in enumerate(zip(compat, faithful)) if a != b]
    assert [faithful[i]["name"] for i in diffs] == ["uns", 'q"uote\\back']
    assert json.loads(dump_json(btf, bpftool_compat=False)) == {"types": faithful}


@needs_bpftool
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_btf_only_raises_parse_errors(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(_small_btf())
    for _ in range(data.draw(st.integers(1, 4), label="n")):
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        raw[pos] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        del raw[data.draw(st.integers(0, len(raw)), label="cut"):]
    blob = bytes(raw)
    try:
        btf = Btf.from_bytes(blob)
        text = dump_raw(btf)
        js = dump_json(btf)
    except ParseError:
        return
    # Accepted: whenever bpftool accepts it as well, the dumps must agree.
    path = tmp_path / "mutated.btf"
    path.write_bytes(blob)
    ref = bpftool_dump(path)
    if ref.returncode == 0:
        assert text.encode("utf-8", "surrogateescape") == ref.stdout
        ref_js = bpftool_dump(path, as_json=True)
        ours = json.loads(js)  # ours is always valid JSON
        try:
            theirs = json.loads(ref_js.stdout.decode("utf-8", "surrogateescape"))
        except json.JSONDecodeError:
            # bpftool 7.1 writes control characters in names unescaped, which
            # is not JSON; there is nothing to compare against then.
            return
        assert ours == theirs
