"""The .BTF.ext reader (purebpf.btf.BtfExt) against independent oracles.

* func_info: the FUNC symbols of ``llvm-readelf-19 -s`` (section, address, name).
* core_relo: the ``CO-RE <kind> [type_id] ... (access)`` lines of
  ``llvm-objdump-19 -dr``.
* line_info: the source files themselves (line ``line`` of ``file_name`` is
  ``line_text``).
* libbpf ``btf_ext__new`` through ctypes accepts what we accept and rejects
  the malformed sections we reject.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.btf import Btf, BtfExt, BtfKind, CoreRelo, CoreReloKind, FuncInfo, LineInfo
from purebpf.errors import BtfExtError

ROOT = Path(__file__).resolve().parent.parent
CLANG = shutil.which("clang-19")
READELF = shutil.which("llvm-readelf-19")
OBJDUMP = shutil.which("llvm-objdump-19")
LIBBPF_PATH = "/usr/lib/x86_64-linux-gnu/libbpf.so.1"

SOURCE = r"""
struct s { int a; int b; unsigned f:3; } __attribute__((preserve_access_index));
enum e { X = 1, Y = 5 };
static __attribute__((noinline)) int helper(struct s *p)
{
    return p->b
        + p->f;
}
__attribute__((noinline)) int global_fn(struct s *p) { return p->a * 3; }
__attribute__((section("xdp"), used)) int prog(struct s *ctx)
{
    int r = __builtin_preserve_type_info(*ctx, 1);
    r += __builtin_preserve_enum_value(*(enum e *)Y, 0);
    r += __builtin_preserve_field_info(ctx->f, 1);
    return helper(ctx) + global_fn(ctx) + r;
}
__attribute__((section("tc"), used)) int prog2(struct s *ctx) { return ctx->a + helper(ctx); }
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


@pytest.fixture(scope="session")
def ext_objects(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    if CLANG is None:
        pytest.skip("clang-19 not installed")
    d = tmp_path_factory.mktemp("extobj")
    src = d / "ext.bpf.c"
    src.write_text(SOURCE)
    out = []
    for target in ("bpf", "bpfeb"):
        obj = d / f"ext.{target}.o"
        subprocess.run([CLANG, "-g", "-O2", "-target", target, "-c", str(src), "-o", str(obj)],
                       check=True)
        out.append(obj)
    return out


@pytest.fixture(scope="session")
def objects(ext_objects: List[Path]) -> List[Path]:
    return ext_objects + sorted((ROOT / "fixtures" / "obj").glob("*.o"))


def sections(path: Path) -> Tuple[bytes, bytes]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        btf = elf.get_section_by_name(".BTF")
        ext = elf.get_section_by_name(".BTF.ext")
        assert btf is not None and ext is not None, path
        return bytes(btf.data()), bytes(ext.data())


def load(path: Path) -> Tuple[Btf, BtfExt]:
    btf_raw, ext_raw = sections(path)
    btf = Btf.from_bytes(btf_raw, name=str(path))
    return btf, BtfExt.from_bytes(ext_raw, btf, name=str(path))


# ------------------------------------------------------------------ oracles

def readelf_funcs(path: Path) -> Set[Tuple[str, int, str]]:
    """(section, address, name) of every defined FUNC symbol."""
    assert READELF is not None
    secs = subprocess.run([READELF, "-SW", str(path)], check=True, capture_output=True,
                          text=True).stdout
    names = {int(m.group(1)): m.group(2) for m in re.finditer(r"\[\s*(\d+)\]\s+(\S+)", secs)}
    syms = subprocess.run([READELF, "-sW", str(path)], check=True, capture_output=True,
                          text=True).stdout
    out = set()
    for line in syms.splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[3] == "FUNC" and cols[6].isdigit():
            out.add((names[int(cols[6])], int(cols[1], 16), cols[7]))
    return out


_LLVM_KINDS = {
    "byte_off": CoreReloKind.FIELD_BYTE_OFFSET, "byte_sz": CoreReloKind.FIELD_BYTE_SIZE,
    "field_exists": CoreReloKind.FIELD_EXISTS, "signed": CoreReloKind.FIELD_SIGNED,
    "lshift_u64": CoreReloKind.FIELD_LSHIFT_U64, "rshift_u64": CoreReloKind.FIELD_RSHIFT_U64,
    "local_type_id": CoreReloKind.TYPE_ID_LOCAL, "target_type_id": CoreReloKind.TYPE_ID_TARGET,
    "type_exists": CoreReloKind.TYPE_EXISTS, "type_size": CoreReloKind.TYPE_SIZE,
    "enumval_exists": CoreReloKind.ENUMVAL_EXISTS, "enumval_value": CoreReloKind.ENUMVAL_VALUE,
    "type_matches": CoreReloKind.TYPE_MATCHES,
}


def objdump_core_relos(path: Path) -> List[Tuple[str, int, int, int, Optional[str]]]:
    """(section, insn_off, kind, type_id, access or None) from llvm-objdump -dr."""
    assert OBJDUMP is not None
    text = subprocess.run([OBJDUMP, "-dr", str(path)], check=True, capture_output=True,
                          text=True).stdout
    out = []
    section = ""
    for line in text.splitlines():
        m = re.match(r"Disassembly of section (.*):$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"\s+([0-9a-f]+):\s+CO-RE <(\w+)> \[(\d+)\] (.*)$", line)
        if m:
            access = re.search(r"\(([\d:]+)\)$", m.group(4))
            out.append((section, int(m.group(1), 16), int(_LLVM_KINDS[m.group(2)]),
                        int(m.group(3)), access.group(1) if access else None))
    return out


def test_func_info_matches_elf_symbols(objects: List[Path]) -> None:
    if READELF is None:
        pytest.skip("llvm-readelf-19 not installed")
    for path in objects:
        btf, ext = load(path)
        ours = set()
        for sec, infos in ext.func_info.items():
            for fi in infos:
                assert isinstance(fi, FuncInfo)
                t = btf[fi.type_id]
                assert t.kind == BtfKind.FUNC
                assert fi.insn_index * 8 == fi.insn_off
                ours.add((sec, fi.insn_off, t.name))
        syms = readelf_funcs(path)
        # Every function symbol has its func_info; a linked object (bpftool
        # gen object) may keep func_info of a weak function whose symbol the
        # linker dropped, so the other direction is checked by address only.
        assert syms <= ours, path
        by_addr = {(sec, off): name for sec, off, name in syms}
        for sec, off, name in ours:
            assert by_addr.get((sec, off), name) == name
        if "linked" not in path.name:
            assert ours == syms, path
        assert ext.func_info_rec_size >= 8


def test_core_relos_match_llvm_objdump(objects: List[Path]) -> None:
    if OBJDUMP is None:
        pytest.skip("llvm-objdump-19 not installed")
    total = 0
    for path in objects:
        btf, ext = load(path)
        want = objdump_core_relos(path)
        got = []
        for sec, relos in ext.core_relos.items():
            for r in relos:
                assert isinstance(r, CoreRelo) and isinstance(r.kind, CoreReloKind)
                got.append((sec, r.insn_off, int(r.kind), r.type_id, r.access_str))
        assert len(got) == len(want), path
        for (gs, goff, gkind, gtype, gacc), (ws, woff, wkind, wtype, wacc) in zip(
                sorted(got), sorted(want, key=lambda w: (w[0], w[1], w[2], w[3], w[4] or ""))):
            assert (gs, goff, gkind, gtype) == (ws, woff, wkind, wtype), path
            if wacc is not None:
                assert gacc == wacc
        total += len(got)
    assert total >= 5


def test_line_info_matches_source(objects: List[Path]) -> None:
    checked = 0
    for path in objects:
        _, ext = load(path)
        assert ext.line_info, path
        for sec, lines in ext.line_info.items():
            offs = [li.insn_off for li in lines]
            assert offs == sorted(offs), (path, sec)
            for li in lines:
                assert isinstance(li, LineInfo)
                src = Path(li.file_name)
                if not src.is_absolute():
                    src = ROOT / src
                if not src.exists():
                    continue
                text = src.read_text().splitlines()
                assert 1 <= li.line <= len(text)
                assert text[li.line - 1] == li.line_text, (path, li)
                assert li.column <= len(li.line_text) + 1
                checked += 1
    assert checked >= 20


def test_big_endian_twin(ext_objects: List[Path]) -> None:
    _, le = load(ext_objects[0])
    _, be = load(ext_objects[1])
    assert le.func_info == be.func_info
    assert le.core_relos == be.core_relos
    assert le.header.hdr_len == be.header.hdr_len


# -------------------------------------------------------------- libbpf

@pytest.fixture(scope="session")
def btf_ext_new() -> Any:
    if not os.path.exists(LIBBPF_PATH):
        pytest.skip("libbpf.so.1 not installed")
    lib = ctypes.CDLL(LIBBPF_PATH)
    lib.btf_ext__new.restype = ctypes.c_void_p
    lib.btf_ext__new.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    lib.btf_ext__free.argtypes = [ctypes.c_void_p]

    def accepts(data: bytes) -> bool:
        h = lib.btf_ext__new(data, len(data))
        if h:
            lib.btf_ext__free(h)
        return bool(h)
    return accepts


# .BTF.ext builder: re-encode parsed records with a chosen record size.

def encode_ext(ext: BtfExt, btf: Btf, rec_sizes: Tuple[int, int, int] = (8, 16, 16),
               hdr_len: int = 32) -> bytes:
    fmt = "<" if btf.byteorder == "little" else ">"
    sec_off = {name: off for off, name in _section_name_offsets(btf, ext)}

    def section(groups: Dict[str, Tuple[Any, ...]], rec_size: int, pack: Any) -> bytes:
        if not groups:
            return b""
        out = struct.pack(fmt + "I", rec_size)
        for name, recs in groups.items():
            out += struct.pack(fmt + "II", sec_off[name], len(recs))
            for r in recs:
                body = pack(r)
                out += body + b"\0" * (rec_size - len(body))
        return out

    fi = section(ext.func_info, rec_sizes[0], lambda r: struct.pack(fmt + "II", r.insn_off, r.type_id))
    li = section(ext.line_info, rec_sizes[1], lambda r: struct.pack(
        fmt + "IIII", r.insn_off, r.file_name_off, r.line_off, r.line << 10 | r.column))
    cr = section(ext.core_relos, rec_sizes[2], lambda r: struct.pack(
        fmt + "IIII", r.insn_off, r.type_id, r.access_str_off, int(r.kind)))
    head = struct.pack(fmt + "HBBIIIIIII", 0xEB9F, 1, 0, hdr_len, 0, len(fi), len(fi), len(li),
                       len(fi) + len(li), len(cr))[:hdr_len]
    if hdr_len < 32:
        cr = b""
    return head + fi + li + cr


def _section_name_offsets(btf: Btf, ext: BtfExt) -> List[Tuple[int, str]]:
    """String offsets of the ELF section names used by ext, read back from the raw bytes."""
    fmt = "<" if btf.byteorder == "little" else ">"
    raw = ext._data
    out = []
    hdr = ext.header
    for off, length in ((hdr.func_info_off, hdr.func_info_len), (hdr.line_info_off, hdr.line_info_len),
                        (hdr.core_relo_off, hdr.core_relo_len)):
        if not length:
            continue
        pos = hdr.hdr_len + off
        end = pos + length
        (rec,) = struct.unpack_from(fmt + "I", raw, pos)
        pos += 4
        while pos < end:
            name_off, num = struct.unpack_from(fmt + "II", raw, pos)
            out.append((name_off, btf.string_at(name_off)))
            pos += 8 + num * rec
    return out


def test_larger_records_are_read_by_their_prefix(ext_objects: List[Path], btf_ext_new: Any) -> None:
    btf, ext = load(ext_objects[0])
    same = encode_ext(ext, btf)
    assert sections(ext_objects[0])[1] == same  # the encoder reproduces clang's bytes
    wide = encode_ext(ext, btf, rec_sizes=(12, 24, 20))
    assert btf_ext_new(wide)
    again = BtfExt.from_bytes(wide, btf)
    assert (again.func_info_rec_size, again.line_info_rec_size, again.core_relo_rec_size) == (12, 24, 20)
    assert again.func_info == ext.func_info
    assert again.line_info == ext.line_info
    assert again.core_relos == ext.core_relos
    # an old 24-byte header has no core_relo part
    short = BtfExt.from_bytes(encode_ext(ext, btf, hdr_len=24), btf)
    assert short.core_relos == {} and short.core_relo_rec_size == 0
    assert short.func_info == ext.func_info


def _expect_bad(data: bytes, btf: Btf, section: str, accepts: Any, libbpf_rejects: bool = True) -> None:
    with pytest.raises(BtfExtError) as exc:
        BtfExt.from_bytes(data, btf, name="bad.o")
    assert exc.value.file == "bad.o" and exc.value.section == section and exc.value.offset is not None
    if libbpf_rejects and btf.byteorder == "little":
        assert not accepts(data)


def test_bad_record_sizes_and_counts(ext_objects: List[Path], btf_ext_new: Any) -> None:
    btf, ext = load(ext_objects[0])
    good = encode_ext(ext, btf)
    assert btf_ext_new(good)
    for sizes, section in (((0, 16, 16), "func_info"), ((4, 16, 16), "func_info"),
                           ((10, 16, 16), "func_info"), ((8, 12, 16), "line_info"),
                           ((8, 18, 16), "line_info"), ((8, 16, 8), "core_relo")):
        data = bytearray(encode_ext(ext, btf))
        # patch only the record-size word of the chosen section
        hdr = ext.header
        off = {"func_info": hdr.func_info_off, "line_info": hdr.line_info_off,
               "core_relo": hdr.core_relo_off}[section]
        idx = {"func_info": 0, "line_info": 1, "core_relo": 2}[section]
        struct.pack_into("<I", data, 32 + off, sizes[idx])
        _expect_bad(bytes(data), btf, f".BTF.ext {section}", btf_ext_new)
    # num_info running past the end of func_info
    data = bytearray(good)
    struct.pack_into("<I", data, 32 + 4 + 4, 1000)
    _expect_bad(bytes(data), btf, ".BTF.ext func_info", btf_ext_new)
    # num_info == 0
    struct.pack_into("<I", data, 32 + 4 + 4, 0)
    _expect_bad(bytes(data), btf, ".BTF.ext func_info", btf_ext_new)
    # a section name past the string section (libbpf only checks this later)
    data = bytearray(good)
    struct.pack_into("<I", data, 32 + 4, 0x7FFFFFF0)
    _expect_bad(bytes(data), btf, ".BTF.ext func_info", btf_ext_new, libbpf_rejects=False)
    # a line_info file name past the string section
    data = bytearray(good)
    struct.pack_into("<I", data, 32 + ext.header.line_info_off + 4 + 8 + 4, 0x7FFFFFF0)
    _expect_bad(bytes(data), btf, ".BTF.ext line_info", btf_ext_new, libbpf_rejects=False)


def test_bad_headers(ext_objects: List[Path], btf_ext_new: Any) -> None:
    btf, ext = load(ext_objects[0])
    good = encode_ext(ext, btf)
    _expect_bad(good[:6], btf, ".BTF.ext header", btf_ext_new)
    _expect_bad(b"\x00\x00" + good[2:], btf, ".BTF.ext header", btf_ext_new)
    for off, value in ((2, 2), (3, 1)):  # version, flags
        data = bytearray(good)
        data[off] = value
        _expect_bad(bytes(data), btf, ".BTF.ext header", btf_ext_new)
    for value in (8, 4096):
        data = bytearray(good)
        struct.pack_into("<I", data, 4, value)
        _expect_bad(bytes(data), btf, ".BTF.ext header", btf_ext_new)
    data = bytearray(good)
    struct.pack_into("<I", data, 12, 1 << 20)  # func_info_len past the end
    _expect_bad(bytes(data), btf, ".BTF.ext func_info", btf_ext_new)
    data = bytearray(good)
    struct.pack_into("<I", data, 8, 2)  # misaligned func_info_off
    _expect_bad(bytes(data), btf, ".BTF.ext func_info", btf_ext_new)


def test_unknown_relo_kind_is_kept(ext_objects: List[Path]) -> None:
    btf, ext = load(ext_objects[0])
    data = bytearray(encode_ext(ext, btf))
    pos = 32 + ext.header.core_relo_off + 4 + 8 + 12  # kind of the first record
    struct.pack_into("<I", data, pos, 99)
    again = BtfExt.from_bytes(bytes(data), btf)
    first = next(iter(again.core_relos.values()))[0]
    assert first.kind == 99 and not isinstance(first.kind, CoreReloKind)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_ext_raises_only_btf_ext_errors(ext_objects: List[Path], data: Any) -> None:
    path = data.draw(st.sampled_from(ext_objects))
    btf, _ = load(path)
    blob = bytearray(sections(path)[1])
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "word", "truncate"]))
        if how == "flip" and blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "word" and len(blob) >= 4:
            i = data.draw(st.integers(0, len(blob) - 4))
            blob[i:i + 4] = data.draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "little")
        else:
            blob = blob[:data.draw(st.integers(0, len(blob)))]
    try:
        BtfExt.from_bytes(bytes(blob), btf)
    except BtfExtError:
        pass
