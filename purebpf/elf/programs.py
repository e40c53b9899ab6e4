"""Functions of a BPF object: one per ``STT_FUNC`` symbol in an executable section.

Every executable section (``SHF_EXECINSTR`` with a non-zero size) holds one
or more BPF functions, each described by an ``STT_FUNC`` symbol giving its
offset (``st_value``) and size.  Functions in ``.text`` are subprograms
(called with ``call`` + ``BPF_PSEUDO_CALL`` or used as callbacks); functions in
any other executable section are entry programs whose section name
(``SEC("kprobe/...")``) tells the program type.  This follows libbpf's
``bpf_object__add_programs``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from purebpf.elf.container import SHF_EXECINSTR, ElfContainer
from purebpf.errors import InstructionError
from purebpf.spec import SectionInfo, SymbolInfo

if TYPE_CHECKING:
    from purebpf.insn import Instruction

__all__ = ["FunctionCode", "read_functions", "is_program_section", "FunctionIndex"]

TEXT_SECTION = ".text"
_BPF_INSN_SIZE = 8


@dataclass(frozen=True)
class FunctionCode:
    """One function's code before relocations are attached."""

    symbol: SymbolInfo
    section: SectionInfo
    offset: int  # byte offset of the function within its section
    size: int
    instructions: "Tuple[Instruction, ...]"
    #: slot index within the function -> index into ``instructions``.
    slot_to_index: Dict[int, int] = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def is_subprogram(self) -> bool:
        return self.section.name == TEXT_SECTION


def is_program_section(info: SectionInfo) -> bool:
    """Executable (``SHF_EXECINSTR``) PROGBITS sections with code in them."""
    return info.type == "SHT_PROGBITS" and bool(info.flags & SHF_EXECINSTR) and info.size > 0


def read_functions(elf: ElfContainer) -> List[FunctionCode]:
    """Decode every function, in section-index then offset order."""
    from purebpf.insn import decode

    by_section: Dict[int, List[SymbolInfo]] = {}
    for sym in elf.symbols:
        if sym.type == "STT_FUNC" and sym.size > 0 and 0 < sym.section_index < len(elf.sections):
            by_section.setdefault(sym.section_index, []).append(sym)

    functions: List[FunctionCode] = []
    for info in elf.sections:
        if not is_program_section(info):
            continue
        if info.size % _BPF_INSN_SIZE:
            elf.fail(f"program section size {info.size} is not a multiple of "
                     f"{_BPF_INSN_SIZE} (struct bpf_insn)", section=info.name, offset=info.size)
        code = elf.section_data(info)
        syms = sorted(by_section.get(info.index, []), key=lambda s: (s.value, s.index))
        end_of_previous = 0
        for sym in syms:
            start, size = sym.value, sym.size
            if start % _BPF_INSN_SIZE or size % _BPF_INSN_SIZE:
                elf.fail(f"function {sym.name!r} at {start:#x} size {size} is not aligned to "
                         f"{_BPF_INSN_SIZE}-byte instructions", section=info.name, offset=start)
            if start + size > info.size:
                elf.fail(f"function {sym.name!r} [{start:#x}, {start + size:#x}) extends past the "
                         f"section end {info.size:#x}", section=info.name, offset=start)
            if start < end_of_previous:
                elf.fail(f"function {sym.name!r} at {start:#x} overlaps the previous function",
                         section=info.name, offset=start)
            end_of_previous = start + size
            if info.name != TEXT_SECTION and sym.bind == "STB_LOCAL":
                # libbpf: "program '%s' is static and not supported"
                elf.fail(f"program {sym.name!r} is static; entry programs must be global",
                         section=info.name, offset=start)
            try:
                insns = decode(code[start:start + size], elf.byteorder, file=elf.name,
                               section=info.name)
            except InstructionError as exc:
                if exc.offset is not None:
                    exc.offset += start
                    exc.args = (str(exc),)
                raise
            slot_to_index: Dict[int, int] = {}
            slot = 0
            for index, insn in enumerate(insns):
                slot_to_index[slot] = index
                slot += insn.slots
            functions.append(FunctionCode(symbol=sym, section=info, offset=start, size=size,
                                          instructions=tuple(insns), slot_to_index=slot_to_index))
    return functions


class FunctionIndex:
    """Find the function containing a byte offset of an executable section."""

    def __init__(self, functions: List[FunctionCode]) -> None:
        self._starts: Dict[int, List[int]] = {}
        self._funcs: Dict[int, List[FunctionCode]] = {}
        for func in functions:
            self._starts.setdefault(func.section.index, []).append(func.offset)
            self._funcs.setdefault(func.section.index, []).append(func)

    def containing(self, section_index: int, offset: int) -> "Optional[FunctionCode]":
        starts = self._starts.get(section_index)
        if not starts:
            return None
        pos = bisect.bisect_right(starts, offset) - 1
        if pos < 0:
            return None
        func = self._funcs[section_index][pos]
        return func if offset < func.offset + func.size else None

    def starting_at(self, section_index: int, offset: int) -> "Optional[FunctionCode]":
        func = self.containing(section_index, offset)
        return func if func is not None and func.offset == offset else None
