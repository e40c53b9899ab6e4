"""Classify the ELF relocations of program sections.

Each ``Elf64_Rel`` entry of a ``.rel<section>`` section names an instruction
(``r_offset``, a byte offset in the program section) and a symbol.  Only two
instructions can be relocated: ``ld_imm64`` (a map, global data, a function
address, or an extern) and ``call`` (a subprogram, or a kfunc).  The rules
follow libbpf's ``bpf_program__record_reloc``:

- undefined global/weak symbol: an extern (kconfig, ksym variable, kfunc);
- ``call``: must be ``BPF_PSEUDO_CALL`` into ``.text``; the callee starts at
  byte ``st_value + (imm + 1) * 8`` of ``.text`` (static functions are
  referenced through the section symbol with ``imm`` = pc-relative slots,
  global ones through their own symbol with ``imm = -1``);
- ``ld_imm64`` of a ``.text`` symbol: a function pointer to byte
  ``st_value + imm`` of ``.text``;
- ``ld_imm64`` of a symbol in ``.maps`` (or legacy ``maps``): the map whose
  definition starts at ``st_value``;
- ``ld_imm64`` of a symbol in a data section: byte ``st_value + imm`` of that
  section (a section symbol with the offset in ``imm``, or a variable's symbol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, NoReturn, Optional, Tuple

from purebpf.elf.container import SHN_LORESERVE, SHN_UNDEF, ElfContainer
from purebpf.elf.programs import TEXT_SECTION, FunctionCode, FunctionIndex, is_program_section
from purebpf.errors import RelocationError
from purebpf.spec import DataSectionSpec, ExternSpec, Relocation, RelocationKind, SymbolInfo

__all__ = ["RelocationTargets", "collect_relocations"]

_INSN = 8
_EXTERN_KINDS = {
    "kconfig": RelocationKind.EXTERN_KCONFIG,
    "ksym_var": RelocationKind.EXTERN_KSYM_VAR,
    "kfunc": RelocationKind.EXTERN_KFUNC,
}


@dataclass(frozen=True)
class RelocationTargets:
    """What relocations may point at, indexed the way symbols address them."""

    #: (section index, offset of the definition) -> map name
    maps: Dict[Tuple[int, int], str]
    #: section index -> data section
    data: Dict[int, DataSectionSpec]
    externs: Dict[str, ExternSpec]


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _fail(func: FunctionCode, insn_index: int, sym: Optional[SymbolInfo], reason: str,
          elf: ElfContainer, rel_section: str, r_offset: int) -> NoReturn:
    symbol = sym.name if sym is not None else "?"
    raise RelocationError(
        f"{elf.name}: program {func.name!r} (section {func.section.name}), instruction "
        f"{insn_index}, symbol {symbol!r} ({rel_section} entry at {r_offset:#x}): {reason}")


def collect_relocations(elf: ElfContainer, functions: List[FunctionCode],
                        targets: RelocationTargets) -> Dict[Tuple[int, int], List[Relocation]]:
    """All program relocations, keyed by (section index, function offset)."""
    index = FunctionIndex(functions)
    text = elf.section_by_name(TEXT_SECTION)
    text_index = text.index if text is not None else -1
    result: Dict[Tuple[int, int], List[Relocation]] = {
        (f.section.index, f.offset): [] for f in functions}
    for rel_info, target_sec in elf.relocation_sections():
        if not is_program_section(target_sec):
            continue
        for rel in elf.relocations(rel_info):
            func = index.containing(target_sec.index, rel.offset)
            if func is None:
                elf.fail(f"relocation at {rel.offset:#x} is not inside any function",
                         section=rel_info.name, offset=rel.offset)
            if (rel.offset - func.offset) % _INSN:
                elf.fail(f"relocation at {rel.offset:#x} is not on an instruction boundary",
                         section=rel_info.name, offset=rel.offset)
            slot = (rel.offset - func.offset) // _INSN
            insn_index = func.slot_to_index.get(slot)
            if insn_index is None:
                elf.fail(f"relocation at {rel.offset:#x} points into the middle of an ld_imm64",
                         section=rel_info.name, offset=rel.offset)
            if not 0 <= rel.sym_index < len(elf.symbols) or rel.sym_index == 0:
                _fail(func, insn_index, None, f"symbol index {rel.sym_index} does not exist "
                      f"({len(elf.symbols)} symbols)", elf, rel_info.name, rel.offset)
            sym = elf.symbols[rel.sym_index]
            reloc = _classify(elf, func, insn_index, slot, sym, targets, text_index, index,
                              rel_info.name, rel.offset)
            result[(func.section.index, func.offset)].append(reloc)
    for relocs in result.values():
        relocs.sort(key=lambda r: r.slot)
    return result


def _classify(elf: ElfContainer, func: FunctionCode, insn_index: int, slot: int,
              sym: SymbolInfo, targets: RelocationTargets, text_index: int,
              index: FunctionIndex, rel_section: str, r_offset: int) -> Relocation:
    insn = func.instructions[insn_index]

    def fail(reason: str) -> NoReturn:
        _fail(func, insn_index, sym, reason, elf, rel_section, r_offset)

    if not insn.is_ld_imm64 and not insn.is_call:
        fail(f"relocated instruction has opcode {insn.opcode:#04x}; only ld_imm64 and call "
             f"can be relocated")

    def make(kind: RelocationKind, target: str, offset: int = 0,
             variable: Optional[str] = None) -> Relocation:
        # Section symbols have no name of their own: use the section's, as readelf does.
        symbol = sym.name or (sym.section_name if sym.type == "STT_SECTION" else "")
        return Relocation(insn_index=insn_index, slot=slot, kind=kind, symbol=symbol,
                          target=target, offset=offset, variable=variable)

    # Externs: undefined global or weak symbols.
    if sym.section_index == SHN_UNDEF and sym.bind in ("STB_GLOBAL", "STB_WEAK"):
        ext = targets.externs.get(sym.name)
        if ext is None:
            fail("undefined symbol that is not a known extern (__kconfig/__ksym with BTF)")
        kind = _EXTERN_KINDS[ext.kind]
        if insn.is_call and kind != RelocationKind.EXTERN_KFUNC:
            fail(f"call to extern {ext.kind} variable")
        # An ld_imm64 of a kfunc (its address) is also EXTERN_KFUNC.
        return make(kind, ext.name)

    if insn.is_call:
        if not insn.is_pseudo_call:
            fail(f"call with src_reg {insn.src} is relocated; expected BPF_PSEUDO_CALL (1)")
        if sym.section_index != text_index:
            fail(f"call relocation against a symbol in section {sym.section_name or '?'}; "
                 f"subprograms must be in .text")
        if sym.value % _INSN:
            fail(f"symbol value {sym.value:#x} is not instruction-aligned")
        target_off = sym.value + (insn.imm + 1) * _INSN
        callee = index.starting_at(text_index, target_off)
        if callee is None:
            fail(f"call target .text+{target_off:#x} is not the start of a function")
        return make(RelocationKind.SUBPROG_CALL, callee.name, target_off)

    if sym.section_index == SHN_UNDEF or sym.section_index >= SHN_LORESERVE:
        fail(f"ld_imm64 relocation against a symbol in special section {sym.section_index:#x}"
             f" (uninitialized global variable?)")
    lo32 = _s32(insn.imm)
    if sym.section_index == text_index and sym.type in ("STT_FUNC", "STT_SECTION"):
        if sym.value % _INSN or lo32 % _INSN:
            fail("function address is not instruction-aligned")
        target_off = sym.value + lo32
        callee = index.starting_at(text_index, target_off)
        if callee is None:
            fail(f"function pointer target .text+{target_off:#x} is not the start of a function")
        return make(RelocationKind.FUNC_POINTER, callee.name, target_off)

    map_name = targets.maps.get((sym.section_index, sym.value))
    if map_name is not None:
        return make(RelocationKind.MAP, map_name)
    section = targets.data.get(sym.section_index)
    if section is not None:
        offset = sym.value + lo32
        if not 0 <= offset <= section.size:
            fail(f"offset {offset:#x} is outside data section {section.name} "
                 f"({section.size:#x} bytes)")
        variable = None
        if sym.type == "STT_OBJECT" and sym.name:
            variable = sym.name
        else:
            var = section.variable_at(offset)
            variable = var.name if var is not None else None
        return make(RelocationKind.GLOBAL_DATA, section.name, offset, variable)
    if any(sec == sym.section_index for sec, _ in targets.maps):
        fail(f"symbol at {sym.section_name}+{sym.value:#x} is not the start of a map")
    fail(f"ld_imm64 relocation against section {sym.section_name or '?'}, which is neither "
         f".text, a maps section nor a global-data section")
