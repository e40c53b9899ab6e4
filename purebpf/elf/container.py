"""The ELF container of a BPF object: header checks, sections, symbols, relocations.

A BPF object is a relocatable ELF64 file (``ET_REL``) for machine ``EM_BPF``
(247), in either byte order (``clang -target bpfel`` / ``bpfeb``).  This module
reads it with pyelftools and hands out plain tuples; it is the one place where
pyelftools' exceptions are translated into :class:`purebpf.errors.ElfError`.

Section contents are sliced from the input bytes directly (with bounds
checks) instead of going through pyelftools, so a lying ``sh_size`` can never
make us read or allocate more than the file holds.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Dict, Iterator, List, Literal, NoReturn, Optional, Tuple, Type

from purebpf.errors import ElfError
from purebpf.spec import SectionInfo, SymbolInfo

__all__ = ["ElfContainer", "RelocEntry", "EM_BPF", "SHF_EXECINSTR", "SHF_WRITE", "SHF_ALLOC",
           "SHN_UNDEF", "SHN_ABS", "SHN_COMMON", "SHN_LORESERVE", "foreign_errors"]

EM_BPF = 247
ET_REL = 1
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

_SPECIAL_SHNDX = {"SHN_UNDEF": SHN_UNDEF, "SHN_ABS": SHN_ABS, "SHN_COMMON": SHN_COMMON,
                  "SHN_XINDEX": SHN_XINDEX}

#: LLVM-specific section types pyelftools does not name (llvm/BinaryFormat/ELF.h).
_LLVM_SECTION_TYPES = {
    0x6FFF4C00: "SHT_LLVM_ODRTAB",
    0x6FFF4C01: "SHT_LLVM_LINKER_OPTIONS",
    0x6FFF4C02: "SHT_LLVM_CALL_GRAPH_PROFILE",
    0x6FFF4C03: "SHT_LLVM_ADDRSIG",
    0x6FFF4C04: "SHT_LLVM_DEPENDENT_LIBRARIES",
    0x6FFF4C05: "SHT_LLVM_SYMPART",
    0x6FFF4C06: "SHT_LLVM_PART_EHDR",
    0x6FFF4C07: "SHT_LLVM_PART_PHDR",
    0x6FFF4C08: "SHT_LLVM_BB_ADDR_MAP_V0",
    0x6FFF4C09: "SHT_LLVM_CALL_GRAPH_PROFILE",
    0x6FFF4C0A: "SHT_LLVM_BB_ADDR_MAP",
    0x6FFF4C0B: "SHT_LLVM_OFFLOADING",
    0x6FFF4C0C: "SHT_LLVM_LTO",
}

#: Upper bound for zero-filled (NOBITS) sections we materialise: 1 GiB.
MAX_NOBITS_SIZE = 1 << 30


def _foreign_errors() -> Tuple[Type[BaseException], ...]:
    """Exceptions that malformed input can make pyelftools (or slicing) raise."""
    from elftools.common.exceptions import ELFError, ELFParseError
    from elftools.construct.core import ConstructError

    return (ELFError, ELFParseError, ConstructError, struct.error, IndexError, KeyError,
            ValueError, UnicodeDecodeError, OverflowError, AssertionError, RecursionError,
            EOFError, AttributeError, TypeError)


def foreign_errors() -> Tuple[Type[BaseException], ...]:
    """Foreign exception types translated into ParseErrors at the reader's edge."""
    return _foreign_errors()


@dataclass(frozen=True)
class RelocEntry:
    """One ``Elf64_Rel``: ``r_offset`` in the target section, symbol index and type."""

    offset: int
    sym_index: int
    type: int


class ElfContainer:
    """Validated view over the ELF bytes of one BPF object."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.byteorder = self._check_header()
        from elftools.elf.elffile import ELFFile

        try:
            self._elf = ELFFile(io.BytesIO(data))
            self.sections = self._read_sections()
        except _foreign_errors() as exc:
            self.fail(f"malformed section headers: {exc}", section="section headers", cause=exc)
        self._by_name: Dict[str, int] = {}
        for info in self.sections:
            self._by_name.setdefault(info.name, info.index)
        self.symbols = self._read_symbols()

    # -- errors ----------------------------------------------------------

    def fail(self, reason: str, *, section: Optional[str] = None, offset: Optional[int] = None,
             cause: Optional[BaseException] = None) -> NoReturn:
        err = ElfError(reason, file=self.name, section=section, offset=offset)
        if cause is not None:
            raise err from cause
        raise err

    # -- header ----------------------------------------------------------

    def _check_header(self) -> Literal['little', 'big']:
        """Check ``e_ident``, ``e_type`` and ``e_machine`` from the raw bytes."""
        data = self.data
        if len(data) < 64:
            self.fail(f"file too short for an ELF64 header ({len(data)} bytes)", section="ELF header",
                      offset=0)
        if data[:4] != b"\x7fELF":
            self.fail("not an ELF file (bad magic)", section="ELF header", offset=0)
        if data[4] != 2:
            self.fail(f"not ELFCLASS64 (EI_CLASS={data[4]}); BPF objects are 64-bit",
                      section="ELF header", offset=4)
        byteorder: Literal['little', 'big']
        if data[5] == 1:
            byteorder = "little"
        elif data[5] == 2:
            byteorder = "big"
        else:
            self.fail(f"unknown EI_DATA byte order {data[5]}", section="ELF header", offset=5)
        e_type = int.from_bytes(data[16:18], byteorder)
        e_machine = int.from_bytes(data[18:20], byteorder)
        if e_machine != EM_BPF:
            self.fail(f"e_machine is {e_machine}, not EM_BPF ({EM_BPF}): not a BPF object",
                      section="ELF header", offset=18)
        if e_type != ET_REL:
            self.fail(f"e_type is {e_type}, not ET_REL (1): BPF objects are relocatable files",
                      section="ELF header", offset=16)
        # Elf64_Ehdr: e_shoff (u64) at 0x28, e_shentsize/e_shnum/e_shstrndx (u16) at 0x3a.
        e_shoff = int.from_bytes(data[0x28:0x30], byteorder)
        e_shentsize = int.from_bytes(data[0x3A:0x3C], byteorder)
        e_shnum = int.from_bytes(data[0x3C:0x3E], byteorder)
        if e_shentsize != 64:
            self.fail(f"e_shentsize is {e_shentsize}, not 64 (sizeof(Elf64_Shdr))",
                      section="ELF header", offset=0x3A)
        if e_shnum == 0 and e_shoff == 0:
            self.fail("no section headers", section="ELF header", offset=0x3C)
        # (e_shnum 0 with e_shoff set means the count is in section 0's sh_size.)
        if e_shoff + 64 * max(e_shnum, 1) > len(data):
            self.fail(f"section header table [{e_shoff:#x}, +{64 * max(e_shnum, 1):#x}) lies "
                      f"outside the file ({len(data):#x} bytes)", section="section headers",
                      offset=e_shoff)
        return byteorder

    # -- sections --------------------------------------------------------

    def _read_sections(self) -> Tuple[SectionInfo, ...]:
        infos: List[SectionInfo] = []
        count = self._elf.num_sections()
        if count > 0xFFFF * 16:
            self.fail(f"implausible section count {count}", section="section headers")
        for index in range(count):
            sec = self._elf.get_section(index)
            hdr = sec.header
            sh_type = hdr["sh_type"]
            infos.append(SectionInfo(
                index=index,
                name=str(sec.name),
                type=sh_type if isinstance(sh_type, str)
                else _LLVM_SECTION_TYPES.get(int(sh_type), f"SHT_{int(sh_type):#x}"),
                flags=int(hdr["sh_flags"]),
                size=int(hdr["sh_size"]),
                offset=int(hdr["sh_offset"]),
                link=int(hdr["sh_link"]),
                info=int(hdr["sh_info"]),
                entsize=int(hdr["sh_entsize"]),
            ))
        return tuple(infos)

    def section(self, index: int) -> SectionInfo:
        if not 0 <= index < len(self.sections):
            self.fail(f"section index {index} out of range (0..{len(self.sections) - 1})")
        return self.sections[index]

    def section_by_name(self, name: str) -> Optional[SectionInfo]:
        index = self._by_name.get(name)
        return None if index is None else self.sections[index]

    def section_data(self, info: SectionInfo) -> bytes:
        """The bytes of a section (zeros for SHT_NOBITS), bounds-checked against the file."""
        if info.type == "SHT_NOBITS":
            if info.size > MAX_NOBITS_SIZE:
                self.fail(f"NOBITS section size {info.size} is implausibly large", section=info.name)
            return bytes(info.size)
        end = info.offset + info.size
        if info.offset < 0 or end > len(self.data):
            self.fail(f"section data [{info.offset:#x}, {end:#x}) lies outside the file "
                      f"({len(self.data):#x} bytes)", section=info.name)
        return self.data[info.offset:end]

    # -- symbols ---------------------------------------------------------

    def _read_symbols(self) -> Tuple[SymbolInfo, ...]:
        from elftools.elf.sections import SymbolTableSection

        symtabs = [s for s in self.sections if s.type == "SHT_SYMTAB"]
        if not symtabs:
            self.fail("no symbol table (.symtab): BPF objects need one", section=".symtab")
        if len(symtabs) > 1:
            self.fail("more than one SHT_SYMTAB section", section=symtabs[1].name)
        info = symtabs[0]
        if info.entsize != 24:
            self.fail(f"symbol entry size {info.entsize}, expected 24", section=info.name)
        self.section_data(info)  # bounds check
        if not 0 < info.link < len(self.sections) or self.sections[info.link].type != "SHT_STRTAB":
            self.fail(f"sh_link {info.link} is not a string table", section=info.name)
        strtab = self.section_data(self.sections[info.link])
        symbols: List[SymbolInfo] = []
        try:
            sec = self._elf.get_section(info.index)
            if not isinstance(sec, SymbolTableSection):
                self.fail("symbol table not parsable", section=info.name)
            for index in range(sec.num_symbols()):
                entry = sec.get_symbol(index).entry
                shndx_raw = entry["st_shndx"]
                shndx = _SPECIAL_SHNDX.get(shndx_raw, 0) if isinstance(shndx_raw, str) else int(shndx_raw)
                if isinstance(shndx_raw, str) and shndx_raw not in _SPECIAL_SHNDX:
                    shndx = SHN_LORESERVE  # another reserved index
                sec_name = ""
                if 0 < shndx < SHN_LORESERVE:
                    if shndx >= len(self.sections):
                        self.fail(f"symbol {index} refers to section {shndx}, which does not exist",
                                  section=info.name, offset=index * 24)
                    sec_name = self.sections[shndx].name
                symbols.append(SymbolInfo(
                    index=index,
                    name=_cstring(strtab, int(entry["st_name"]), self, info.name, index),
                    value=int(entry["st_value"]),
                    size=int(entry["st_size"]),
                    type=str(entry["st_info"]["type"]),
                    bind=str(entry["st_info"]["bind"]),
                    visibility=str(entry["st_other"]["visibility"]),
                    section_index=shndx,
                    section_name=sec_name,
                ))
        except _foreign_errors() as exc:
            self.fail(f"malformed symbol table: {exc}", section=info.name, cause=exc)
        return tuple(symbols)

    def symbol(self, index: int, *, section: str = ".symtab") -> SymbolInfo:
        if not 0 <= index < len(self.symbols):
            self.fail(f"symbol index {index} out of range ({len(self.symbols)} symbols)",
                      section=section)
        return self.symbols[index]

    # -- relocations -----------------------------------------------------

    def relocation_sections(self) -> Iterator[Tuple[SectionInfo, SectionInfo]]:
        """``(rel section, target section)`` for every SHT_REL section."""
        for info in self.sections:
            if info.type == "SHT_RELA":
                self.fail("SHT_RELA relocations are not used in BPF objects", section=info.name)
            if info.type != "SHT_REL":
                continue
            if not 0 < info.info < len(self.sections):
                self.fail(f"relocation target section {info.info} does not exist", section=info.name)
            yield info, self.sections[info.info]

    def relocations(self, info: SectionInfo) -> List[RelocEntry]:
        """Decode the ``Elf64_Rel`` entries of one SHT_REL section."""
        if info.entsize not in (0, 16):
            self.fail(f"relocation entry size {info.entsize}, expected 16", section=info.name)
        raw = self.section_data(info)
        if len(raw) % 16:
            self.fail(f"size {len(raw)} is not a multiple of 16 (Elf64_Rel)", section=info.name)
        fmt = "<QQ" if self.byteorder == "little" else ">QQ"
        entries = []
        for pos in range(0, len(raw), 16):
            r_offset, r_info = struct.unpack_from(fmt, raw, pos)
            entries.append(RelocEntry(offset=r_offset, sym_index=r_info >> 32,
                                      type=r_info & 0xFFFFFFFF))
        return entries


def _cstring(table: bytes, offset: int, elf: ElfContainer, section: str, index: int) -> str:
    if offset == 0:
        return ""
    if offset >= len(table):
        elf.fail(f"symbol {index} name offset {offset:#x} is past the string table",
                 section=section, offset=index * 24)
    end = table.find(b"\0", offset)
    if end < 0:
        elf.fail(f"symbol {index} name is not NUL-terminated", section=section, offset=index * 24)
    return table[offset:end].decode("utf-8", errors="replace")
