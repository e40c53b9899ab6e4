"""Malformed objects raise purebpf errors that say where, never foreign exceptions.

Hand-made corruptions check the specific error (class, file, section,
offset); a hypothesis test mutates every fixture (bit flips, truncation,
random 4-byte overwrites) and checks that only
:class:`purebpf.errors.PurebpfError` subclasses escape.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fixture_objects
from purebpf.errors import ElfError, ParseError, PurebpfError, RelocationError
from purebpf.spec import ObjectSpec

FIXTURES = fixture_objects()
LITTLE = [p for p in FIXTURES if p.name.endswith(".bpf.o")]


def _sections(data: bytes) -> List[Tuple[int, str, int, int, int, int]]:
    """(header offset, name, type, offset, size, info) of each section, from the ELF spec.

    Elf64_Ehdr: e_shoff at 0x28 (u64), e_shentsize 0x3a, e_shnum 0x3c,
    e_shstrndx 0x3e (u16).  Elf64_Shdr: name u32, type u32, flags u64,
    addr u64, offset u64 (0x18), size u64 (0x20), link u32, info u32 (0x2c).
    """
    e = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(e + "Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from(e + "HH", data, 0x3C)
    headers = []
    for i in range(shnum):
        base = shoff + 64 * i
        name, typ = struct.unpack_from(e + "II", data, base)
        off, size = struct.unpack_from(e + "QQ", data, base + 0x18)
        info, = struct.unpack_from(e + "I", data, base + 0x2C)
        headers.append((base, name, typ, off, size, info))
    str_off, str_size = headers[shstrndx][3], headers[shstrndx][4]
    strtab = data[str_off:str_off + str_size]
    out = []
    for base, name, typ, off, size, info in headers:
        end = strtab.index(b"\0", name)
        out.append((base, strtab[name:end].decode(), typ, off, size, info))
    return out


def _endian(data: bytes) -> str:
    return "<" if data[5] == 1 else ">"


def _find(data: bytes, pred: Callable[[str, int], bool]) -> Tuple[int, str, int, int, int, int]:
    for sec in _sections(data):
        if pred(sec[1], sec[2]):
            return sec
    pytest.fail("the fixture lacks the section this case corrupts")


def _program_object() -> Path:
    for p in LITTLE:
        data = p.read_bytes()
        if any(name.startswith(".rel") and name not in (".rel.BTF", ".rel.BTF.ext")
               and not name.startswith(".rel.debug") and name != ".rel.maps"
               for _, name, *_ in _sections(data)):
            return p
    raise AssertionError("no fixture with program relocations")


@pytest.fixture(scope="module")
def prog_obj() -> Path:
    return _program_object()


# ------------------------------------------------------------ container ---

@pytest.mark.parametrize("cut", [0, 3, 16, 63, 64, 1000])
def test_truncated_header(prog_obj: Path, cut: int) -> None:
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(prog_obj.read_bytes()[:cut], name="cut.o")
    assert exc.value.file == "cut.o"
    if cut < 64:
        assert (exc.value.section, exc.value.offset) == ("ELF header", 0)
    else:  # the header is whole, the section header table (at the end) is gone
        assert exc.value.section == "section headers"
        assert exc.value.offset == _sections(prog_obj.read_bytes())[0][0]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_truncated_anywhere(path: Path) -> None:
    data = path.read_bytes()
    for cut in sorted({len(data) // 4, len(data) // 2, len(data) - 64, len(data) - 1}):
        with pytest.raises(ParseError) as exc:
            ObjectSpec.from_bytes(data[:cut], name="t.o")
        assert exc.value.file == "t.o"
        assert exc.value.section is not None


def test_not_bpf_machine(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("oracle tool gcc not installed")
    src = tmp_path / "x.c"
    src.write_text("int f(int x) { return x + 1; }\n")
    subprocess.run([gcc, "-c", str(src), "-o", str(tmp_path / "x.o")], check=True)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_file(tmp_path / "x.o")
    assert "EM_BPF" in exc.value.reason
    assert (exc.value.file, exc.value.section, exc.value.offset) == \
        (str(tmp_path / "x.o"), "ELF header", 18)


def test_elf32(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    data[4] = 1  # EI_CLASS = ELFCLASS32
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="32.o")
    assert exc.value.offset == 4 and "ELFCLASS64" in exc.value.reason


def test_not_relocatable(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    struct.pack_into(_endian(data) + "H", data, 16, 2)  # ET_EXEC
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data))
    assert exc.value.offset == 16


def test_missing_symbol_table(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    base, *_ = _find(data, lambda name, typ: typ == 2)  # SHT_SYMTAB
    struct.pack_into(_endian(data) + "I", data, base + 4, 0)  # -> SHT_NULL
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="nosym.o")
    assert exc.value.section == ".symtab" and exc.value.file == "nosym.o"


def test_program_section_not_multiple_of_8(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    base, name, _, _, size, _ = _find(
        data, lambda n, t: t == 1 and n not in (".text",) and not n.startswith(".")
        and n not in ("license", "version"))
    struct.pack_into(_endian(data) + "Q", data, base + 0x20, size - 4)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="odd.o")
    assert exc.value.section == name
    assert exc.value.offset == size - 4
    assert "multiple of 8" in exc.value.reason


def test_section_data_outside_file(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    base, name, *_ = _find(data, lambda n, t: n == ".BTF")
    struct.pack_into(_endian(data) + "Q", data, base + 0x18, len(data) + 100)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="far.o")
    assert exc.value.section == ".BTF" and "outside the file" in exc.value.reason


# ---------------------------------------------------------- relocations ---

def _first_prog_rel(data: bytes) -> Tuple[int, str, int, int, int, int]:
    return _find(data, lambda n, t: t == 9 and n.startswith(".rel") and n != ".rel.maps"
                 and not n.startswith(".rel.debug") and not n.startswith(".rel.BTF")
                 and not n.startswith(".rel.struct_ops"))


def test_relocation_to_missing_symbol(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    _, name, _, off, _, _ = _first_prog_rel(data)
    e = _endian(data)
    r_offset, r_info = struct.unpack_from(e + "QQ", data, off)
    struct.pack_into(e + "Q", data, off + 8, (0xFFFF << 32) | (r_info & 0xFFFFFFFF))
    with pytest.raises(RelocationError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="rel.o")
    msg = str(exc.value)
    assert "rel.o" in msg and "program" in msg and "instruction" in msg
    assert "65535" in msg and name in msg


def test_relocation_not_on_instruction(prog_obj: Path) -> None:
    data = bytearray(prog_obj.read_bytes())
    _, name, _, off, _, _ = _first_prog_rel(data)
    e = _endian(data)
    r_offset, = struct.unpack_from(e + "Q", data, off)
    struct.pack_into(e + "Q", data, off, r_offset + 3)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="mis.o")
    assert exc.value.section == name and exc.value.offset == r_offset + 3


def test_relocation_of_plain_instruction(tmp_path: Path) -> None:
    """A relocation against an instruction that is neither ld_imm64 nor call."""
    src = tmp_path / "r.c"
    src.write_text(r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
int counter;
SEC("socket") int prog(void *ctx) { return counter; }
""")
    obj = tmp_path / "r.o"
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/bpf", "-c",
                    str(src), "-o", str(obj)], check=True)
    data = bytearray(obj.read_bytes())
    _, name, _, off, _, _ = _find(data, lambda n, t: n == ".relsocket")
    e = _endian(data)
    r_offset, = struct.unpack_from(e + "Q", data, off)
    struct.pack_into(e + "Q", data, off, r_offset + 16)  # the instruction after the ld_imm64
    with pytest.raises(RelocationError) as exc:
        ObjectSpec.from_bytes(bytes(data), name="r.o")
    assert "'prog'" in str(exc.value) and "'counter'" in str(exc.value)
    assert "only ld_imm64 and call" in str(exc.value)


def test_unknown_map_member(tmp_path: Path) -> None:
    src = tmp_path / "m.c"
    src.write_text(r"""
#include <linux/bpf.h>
#include <bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 2); int *mystery; } m SEC(".maps");
""")
    obj = tmp_path / "m.o"
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/bpf", "-c",
                    str(src), "-o", str(obj)], check=True)
    with pytest.raises(ElfError) as exc:
        ObjectSpec.from_file(obj)
    assert exc.value.section == ".maps" and "mystery" in exc.value.reason
    assert exc.value.file == str(obj)


# ------------------------------------------------------------- mutation ---

def _check(data: bytes) -> Optional[PurebpfError]:
    try:
        ObjectSpec.from_bytes(data, name="mutant.o")
    except PurebpfError as exc:
        if isinstance(exc, ParseError):
            assert exc.file == "mutant.o"
        return exc
    return None


_mutations = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(0, 7)),
        st.tuples(st.just("word"), st.integers(0, 1 << 30), st.integers(0, 0xFFFFFFFF)),
        st.tuples(st.just("cut"), st.integers(0, 1 << 30), st.just(0)),
    ),
    min_size=1, max_size=6)


def _apply(data: bytes, mutations: List[Tuple[str, int, int]], focus: int) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in mutations:
        if not buf:
            break
        # Half of the positions land in the headers and tables at the end of
        # the file (section headers, symbols, relocations), where damage matters.
        pos = pos % len(buf) if pos & 1 else focus + pos % max(1, len(buf) - focus)
        pos = min(pos, len(buf) - 1)
        if kind == "flip":
            buf[pos] ^= 1 << value
        elif kind == "word":
            buf[pos:pos + 4] = value.to_bytes(4, "little")[:len(buf) - pos]
        else:
            del buf[pos:]
    return bytes(buf)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=_mutations)
def test_mutated_fixtures_raise_only_purebpf_errors(path: Path, mutations: Any) -> None:
    data = path.read_bytes()
    # Section headers and the tables clang writes last (.symtab, .rel*) sit at the end.
    focus = min(s[3] for s in _sections(data) if s[2] in (2, 9)) if data else 0
    _check(_apply(data, mutations, focus))
