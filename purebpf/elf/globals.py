"""Global data sections, their variables, and extern symbols.

Global variables live in ``.data`` / ``.rodata`` / ``.bss`` and their
``.data.NAME`` / ``.rodata.NAME`` / ``.bss.NAME`` variants; the loader turns
each section into a one-entry array map (libbpf's "internal maps").  The BTF
of the object describes each such section with a DATASEC listing its VARs.

Clang writes those DATASECs before the final layout is known: the DATASEC
size is 0 and global variables' offsets may be unset.  libbpf repairs them at
open time (``btf_fixup_datasec``): size from the ELF section, offsets of
non-static variables from their ELF symbols.  :func:`read_data_sections`
applies the same repair to the specs it returns (the BTF itself is left as
read).

Externs are undefined global/weak symbols declared in C with ``__kconfig``
(``extern int LINUX_KERNEL_VERSION __kconfig;``: values the loader supplies)
or ``__ksym`` (kernel variables and kernel functions, resolved against the
kernel BTF).  Clang puts their BTF VARs/FUNCs into DATASECs named ``.kconfig``
and ``.ksyms``, which exist only in BTF, never as ELF sections.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from purebpf.elf.container import SHN_UNDEF, ElfContainer
from purebpf.spec import DataSectionSpec, ExternSpec, SectionInfo, SymbolInfo, VariableSpec

if TYPE_CHECKING:
    from purebpf.btf import Btf

__all__ = ["data_section_kind", "read_data_sections", "read_externs", "KCONFIG_SECTION",
           "KSYMS_SECTION", "ARENA_SECTION"]

KCONFIG_SECTION = ".kconfig"
KSYMS_SECTION = ".ksyms"
ARENA_SECTION = ".addr_space.1"


def data_section_kind(info: SectionInfo) -> Optional[str]:
    """``"data"``/``"rodata"``/``"bss"`` for global-data sections (libbpf's rules), else None.

    ``"arena"`` marks ``.addr_space.1``: globals declared ``__arena`` live in
    the object's BPF_MAP_TYPE_ARENA map rather than in an array map of their
    own (libbpf >= 1.4 copies the section into the arena and points the
    relocations at the arena map).
    """
    name = info.name
    if info.type in ("SHT_PROGBITS", "SHT_NOBITS") and name == ARENA_SECTION:
        return "arena"
    if info.type == "SHT_PROGBITS" and info.size > 0 and not info.flags & 0x4:
        if name == ".data" or name.startswith(".data."):
            return "data"
        if name == ".rodata" or name.startswith(".rodata."):
            return "rodata"
    if info.type == "SHT_NOBITS" and (name == ".bss" or name.startswith(".bss.")):
        return "bss"
    return None


def _linkage_name(linkage: int) -> str:
    return {0: "static", 1: "global", 2: "extern"}.get(int(linkage), f"linkage {int(linkage)}")


def read_data_sections(elf: ElfContainer, btf: "Optional[Btf]",
                       symbols_by_name: Dict[Tuple[int, str], SymbolInfo]
                       ) -> List[DataSectionSpec]:
    """Every global-data section, in ELF section order, with its variables."""
    from purebpf.btf import BtfKind

    result: List[DataSectionSpec] = []
    for info in elf.sections:
        kind = data_section_kind(info)
        if kind is None:
            continue
        data = elf.section_data(info)
        datasec_id: Optional[int] = None
        variables: List[VariableSpec] = []
        ids = btf.find_by_name(info.name, BtfKind.DATASEC) if btf is not None else []
        if btf is not None and ids:
            datasec_id = ids[0]
            for secinfo in getattr(btf[datasec_id], "vars"):
                var = btf[secinfo.type]
                if var.kind != BtfKind.VAR:
                    elf.fail(f"DATASEC {info.name} entry {secinfo.type} is {var.kind.name}, "
                             f"not VAR", section=info.name)
                linkage = getattr(var, "linkage")
                offset = secinfo.offset
                if linkage != 0:  # non-static: the ELF symbol holds the real offset
                    sym = symbols_by_name.get((info.index, var.name))
                    if sym is not None:
                        offset = sym.value
                if offset + secinfo.size > info.size:
                    elf.fail(f"variable {var.name!r} [{offset:#x}, {offset + secinfo.size:#x}) "
                             f"lies outside the section ({info.size:#x} bytes)",
                             section=info.name, offset=offset)
                variables.append(VariableSpec(name=var.name, offset=offset, size=secinfo.size,
                                              type_id=int(getattr(var, "type")),
                                              linkage=_linkage_name(linkage)))
        else:
            for sym in elf.symbols:
                if sym.section_index == info.index and sym.type == "STT_OBJECT" and sym.name:
                    linkage = "static" if sym.bind == "STB_LOCAL" else "global"
                    variables.append(VariableSpec(name=sym.name, offset=sym.value, size=sym.size,
                                                  type_id=0, linkage=linkage))
        variables.sort(key=lambda v: (v.offset, v.name))
        result.append(DataSectionSpec(name=info.name, kind=kind, size=info.size, data=data,
                                      readonly=kind == "rodata", btf_datasec_id=datasec_id,
                                      variables=tuple(variables)))
    return result


def _is_extern_symbol(sym: SymbolInfo) -> bool:
    """libbpf ``sym_is_extern``: undefined, global or weak, no type."""
    return (sym.section_index == SHN_UNDEF and sym.bind in ("STB_GLOBAL", "STB_WEAK")
            and sym.type == "STT_NOTYPE" and bool(sym.name))


def read_externs(elf: ElfContainer, btf: "Optional[Btf]"
                 ) -> Tuple[List[ExternSpec], Optional[DataSectionSpec], Optional[DataSectionSpec]]:
    """Extern symbols, plus the ``.kconfig`` and ``.ksyms`` pseudo data sections.

    Order and ``.kconfig`` layout follow libbpf ``bpf_object__collect_externs``:
    kconfig externs first (descending alignment, ascending size, then name),
    each placed at the next offset aligned for it; then ksyms by name.
    """
    from purebpf.btf import BtfKind
    from purebpf.btf.types import FuncLinkage, VarLinkage

    syms = [s for s in elf.symbols if _is_extern_symbol(s)]
    if not syms:
        return [], None, None
    if btf is None:
        elf.fail(f"extern {syms[0].name!r} needs BTF (.BTF section missing)", section=".symtab")

    # Which DATASEC holds which type id.
    sec_of: Dict[int, Tuple[str, int]] = {}
    datasec_ids: Dict[str, int] = {}
    for sec_name in (KCONFIG_SECTION, KSYMS_SECTION):
        ids = btf.find_by_name(sec_name, BtfKind.DATASEC)
        if ids:
            datasec_ids[sec_name] = ids[0]
            for secinfo in getattr(btf[ids[0]], "vars"):
                sec_of[secinfo.type] = (sec_name, secinfo.size)

    kconfig: List[Tuple[int, int, str, ExternSpec]] = []
    ksyms: List[ExternSpec] = []
    for sym in syms:
        type_id = None
        for cand in btf.find_by_name(sym.name):
            t = btf[cand]
            if t.kind == BtfKind.VAR and getattr(t, "linkage") == VarLinkage.GLOBAL_EXTERN:
                type_id = cand
                break
            if t.kind == BtfKind.FUNC and getattr(t, "linkage") == FuncLinkage.EXTERN:
                type_id = cand
                break
        if type_id is None:
            elf.fail(f"extern {sym.name!r} has no BTF VAR or FUNC with extern linkage",
                     section=".symtab", offset=sym.index * 24)
        placed = sec_of.get(type_id)
        if placed is None:
            elf.fail(f"extern {sym.name!r} is not in a .kconfig or .ksyms DATASEC "
                     f"(declare it with __kconfig or __ksym)", section=".symtab",
                     offset=sym.index * 24)
        sec_name, _ = placed
        weak = sym.bind == "STB_WEAK"
        t = btf[type_id]
        if sec_name == KCONFIG_SECTION:
            if t.kind != BtfKind.VAR:
                elf.fail(f"kconfig extern {sym.name!r} must be a variable", section=".symtab")
            value_type = int(getattr(t, "type"))
            size = btf.size_of(value_type)
            align = btf.align_of(value_type)
            if size <= 0 or align <= 0:
                elf.fail(f"kconfig extern {sym.name!r} has an unsized type", section=".symtab")
            kconfig.append((align, size, sym.name,
                            ExternSpec(name=sym.name, kind="kconfig", type_id=type_id, weak=weak,
                                       section=KCONFIG_SECTION, size=size, offset=0)))
        elif t.kind == BtfKind.FUNC:
            ksyms.append(ExternSpec(name=sym.name, kind="kfunc", type_id=type_id, weak=weak,
                                    section=KSYMS_SECTION, size=0, offset=0))
        else:
            value_type = btf.skip_modifiers(int(getattr(t, "type")))
            typeless = value_type == 0
            size = 0 if typeless else btf.size_of(value_type)
            ksyms.append(ExternSpec(name=sym.name, kind="ksym_var", type_id=type_id, weak=weak,
                                    section=KSYMS_SECTION, size=size, offset=0,
                                    typeless=typeless))

    kconfig.sort(key=lambda e: (-e[0], e[1], e[2]))
    ksyms.sort(key=lambda e: e.name)
    externs: List[ExternSpec] = []
    offset = 0
    kconfig_vars: List[VariableSpec] = []
    for align, size, _, ext in kconfig:
        offset = (offset + align - 1) // align * align
        ext = replace(ext, offset=offset)
        externs.append(ext)
        kconfig_vars.append(VariableSpec(name=ext.name, offset=offset, size=size,
                                         type_id=int(getattr(btf[ext.type_id], "type")),
                                         linkage="extern"))
        offset += size
    externs.extend(ksyms)

    kconfig_sec = None
    if kconfig:
        kconfig_sec = DataSectionSpec(name=KCONFIG_SECTION, kind="kconfig", size=offset,
                                      data=bytes(offset), readonly=True,
                                      btf_datasec_id=datasec_ids.get(KCONFIG_SECTION),
                                      variables=tuple(kconfig_vars))
    ksyms_sec = None
    if ksyms:
        ksyms_sec = DataSectionSpec(
            name=KSYMS_SECTION, kind="ksyms", size=0, data=b"", readonly=True,
            btf_datasec_id=datasec_ids.get(KSYMS_SECTION),
            variables=tuple(VariableSpec(name=e.name, offset=0, size=e.size,
                                         type_id=_value_type(btf, e.type_id), linkage="extern")
                            for e in ksyms))
    return externs, kconfig_sec, ksyms_sec


def _value_type(btf: "Btf", type_id: int) -> int:
    """The C type of a VAR; a FUNC stands for itself."""
    from purebpf.btf import BtfKind

    t = btf[type_id]
    return int(getattr(t, "type")) if t.kind == BtfKind.VAR else type_id
