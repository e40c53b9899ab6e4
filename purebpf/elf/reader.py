"""Read a BPF ELF object into an :class:`~purebpf.spec.ObjectSpec`.

A straight pipeline; each stage names itself in the errors it raises:

1. ``elf``        -- header checks (EM_BPF, ELFCLASS64, ET_REL, byte order),
                     section headers, symbol table  (:mod:`.container`)
2. ``metadata``   -- ``license`` and ``version`` sections
3. ``btf``        -- ``.BTF`` and ``.BTF.ext``  (:mod:`purebpf.btf`)
4. ``programs``   -- one function per STT_FUNC symbol, decoded  (:mod:`.programs`)
5. ``maps``       -- ``.maps`` (BTF-defined) and legacy ``maps``  (:mod:`.maps`)
6. ``globals``    -- data sections and their variables; externs  (:mod:`.globals`)
7. ``relocations``-- program relocations classified  (:mod:`.relocations`)
8. assembly       -- ``.BTF.ext`` records rebased onto each function

Malformed input raises :class:`purebpf.errors.ParseError` subclasses (or
:class:`~purebpf.errors.RelocationError`); foreign exceptions from the parsers
underneath are translated here, at the edge, and chained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

from purebpf.elf.container import ElfContainer, foreign_errors
from purebpf.errors import (
    BtfError,
    ElfError,
    NotFoundError,
    ParseError,
    PurebpfError,
    RelocationError,
)
from purebpf.spec import (
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocationKind,
    SymbolInfo,
)

if TYPE_CHECKING:
    from purebpf.btf import Btf, BtfExt
    from purebpf.elf.programs import FunctionCode, FunctionIndex

__all__ = ["read_object"]

log = logging.getLogger(__name__)

LICENSE_SECTION = "license"
VERSION_SECTION = "version"


@contextlib.contextmanager
def _stage(name: str, file: str) -> Iterator[None]:
    """Translate foreign exceptions escaping a pipeline stage; fill in the file name."""
    try:
        yield
    except ParseError as exc:
        exc.with_location(file=file)
        raise
    except NotFoundError as exc:
        # Only BTF lookups can miss while parsing: a dangling type id in the object.
        raise BtfError(f"while reading {name}: {exc}", file=file, section=".BTF") from exc
    except PurebpfError:
        raise
    except foreign_errors() as exc:
        raise ElfError(f"{name}: malformed input ({type(exc).__name__}: {exc})",
                       file=file, section=name) from exc


def read_object(data: bytes, *, name: str = "<bytes>") -> ObjectSpec:
    """Parse the bytes of a BPF ELF object (the body of ``ObjectSpec.from_bytes``)."""
    with _stage("elf", name):
        elf = ElfContainer(data, name)
    with _stage("metadata", name):
        license_, kernel_version = _read_metadata(elf)
    with _stage(".BTF", name):
        btf, btf_ext, btf_raw = _read_btf(elf)
    symbols_by_name: Dict[Tuple[int, str], SymbolInfo] = {}
    for sym in elf.symbols:
        if sym.name and sym.type != "STT_SECTION":
            symbols_by_name.setdefault((sym.section_index, sym.name), sym)

    with _stage("programs", name):
        from purebpf.elf.programs import read_functions

        functions = read_functions(elf)
    with _stage("maps", name):
        from purebpf.elf.maps import (
            attach_initial_values,
            read_btf_maps,
            read_legacy_maps,
            read_struct_ops_maps,
        )

        func_names = {(f.section.index, f.offset): f.name for f in functions}
        located = read_btf_maps(elf, btf, symbols_by_name) + read_legacy_maps(elf)
        maps = attach_initial_values(elf, located, func_names)
        struct_ops = read_struct_ops_maps(elf, btf, symbols_by_name, func_names)
        located += struct_ops
        maps += [spec for spec, _ in struct_ops]
        map_targets = {(loc.section_index, loc.offset): spec.name for spec, loc in located}
        _check_unique([m.name for m in maps], "map", elf)
    with _stage("globals", name):
        from purebpf.elf.globals import read_data_sections, read_externs

        data_sections = read_data_sections(elf, btf, symbols_by_name)
        data_by_index = {}
        for sec in data_sections:
            info = elf.section_by_name(sec.name)
            if info is not None:
                data_by_index[info.index] = sec
        externs, kconfig_sec, ksyms_sec = read_externs(elf, btf)
        extra = [s for s in (kconfig_sec, ksyms_sec) if s is not None]
    with _stage("relocations", name):
        from purebpf.elf.relocations import RelocationTargets, collect_relocations

        relocs = collect_relocations(elf, functions, RelocationTargets(
            maps=map_targets, data=data_by_index, externs={e.name: e for e in externs}))
    with _stage(".BTF.ext", name):
        programs, subprograms = _assemble(elf, functions, relocs, btf, btf_ext, license_,
                                          kernel_version)
    return ObjectSpec(
        name=name,
        byteorder=elf.byteorder,
        license=license_,
        kernel_version=kernel_version,
        programs=tuple(programs),
        subprograms=tuple(subprograms),
        maps=tuple(maps),
        data_sections=tuple(data_sections) + tuple(extra),
        externs=tuple(externs),
        btf=btf,
        btf_ext=btf_ext,
        sections=elf.sections,
        symbols=elf.symbols,
        btf_raw=btf_raw,
    )


def _check_unique(names: List[str], what: str, elf: ElfContainer) -> None:
    seen = set()
    for n in names:
        if n in seen:
            elf.fail(f"duplicate {what} name {n!r}")
        seen.add(n)


def _read_metadata(elf: ElfContainer) -> Tuple[str, Optional[int]]:
    """``SEC("license")`` string and optional ``SEC("version")`` u32."""
    license_ = ""
    info = elf.section_by_name(LICENSE_SECTION)
    if info is not None:
        raw = elf.section_data(info)
        license_ = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    kernel_version = None
    info = elf.section_by_name(VERSION_SECTION)
    if info is not None:
        raw = elf.section_data(info)
        if len(raw) != 4:
            elf.fail(f"version section must be 4 bytes (a u32), not {len(raw)}",
                     section=VERSION_SECTION)
        kernel_version = int.from_bytes(raw, elf.byteorder)
    return license_, kernel_version


def _read_btf(elf: ElfContainer) -> "Tuple[Optional[Btf], Optional[BtfExt], bytes]":
    info = elf.section_by_name(".BTF")
    if info is None:
        return None, None, b""
    from purebpf.btf import Btf, BtfExt

    raw = elf.section_data(info)
    btf = Btf.from_bytes(raw, name=elf.name)
    if btf.byteorder != elf.byteorder:
        elf.fail(f"BTF is {btf.byteorder}-endian but the ELF file is {elf.byteorder}-endian",
                 section=".BTF")
    btf_ext = None
    ext_info = elf.section_by_name(".BTF.ext")
    if ext_info is not None:
        btf_ext = BtfExt.from_bytes(elf.section_data(ext_info), btf, name=elf.name)
    return btf, btf_ext, raw


def _rebase(records: Any, start: int, end: int) -> Tuple[Any, ...]:
    """Records of ``[start, end)`` with ``insn_off`` made relative to ``start``."""
    out = []
    for item in records:
        rec: Any = item
        if start <= rec.insn_off < end:
            if hasattr(rec, "_replace"):  # a NamedTuple
                out.append(rec._replace(insn_off=rec.insn_off - start))
            else:  # a frozen dataclass
                out.append(dataclasses.replace(rec, insn_off=rec.insn_off - start))
    return tuple(out)


def _local_calls(func: "FunctionCode", relocs: Tuple[Relocation, ...],
                 index: "FunctionIndex") -> List[str]:
    """Callees of ``call`` instructions that carry no relocation.

    A call to a static function of the same ELF section is resolved by the
    assembler: clang emits no relocation and ``imm`` already holds the
    pc-relative slot distance (libbpf: "no relocation ... insn->imm is
    correct").  The callee starts at byte ``offset + (slot + imm + 1) * 8``.
    """
    relocated = {r.insn_index for r in relocs}
    out: List[str] = []
    slot = 0
    for i, insn in enumerate(func.instructions):
        if insn.is_pseudo_call and i not in relocated:
            target = func.offset + (slot + insn.imm + 1) * 8
            callee = index.starting_at(func.section.index, target)
            if callee is None:
                raise RelocationError(
                    f"program {func.name!r} (section {func.section.name}), instruction {i}: "
                    f"call to {func.section.name}+{target:#x}, which is not the start of a "
                    f"function")
            out.append(callee.name)
        slot += insn.slots
    return out


def _assemble(elf: ElfContainer, functions: "List[FunctionCode]",
              relocs: Dict[Tuple[int, int], List[Relocation]], btf: "Optional[Btf]",
              btf_ext: "Optional[BtfExt]", license_: str, kernel_version: Optional[int]
              ) -> Tuple[List[ProgramSpec], List[ProgramSpec]]:
    from purebpf.elf.programs import FunctionIndex
    from purebpf.elf.section_defs import classify_section
    from purebpf.uapi import ProgType

    programs: List[ProgramSpec] = []
    subprograms: List[ProgramSpec] = []
    index = FunctionIndex(functions)
    for func in functions:
        sec = func.section.name
        start, end = func.offset, func.offset + func.size
        func_info: Tuple[Any, ...] = ()
        line_info: Tuple[Any, ...] = ()
        core_relos: Tuple[Any, ...] = ()
        if btf_ext is not None:
            func_info = _rebase(btf_ext.func_info.get(sec, ()), start, end)
            line_info = _rebase(btf_ext.line_info.get(sec, ()), start, end)
            core_relos = _rebase(btf_ext.core_relos.get(sec, ()), start, end)
        btf_func_id = None
        for fi in func_info:
            if fi.insn_off == 0:
                btf_func_id = fi.type_id
                break
        if btf_func_id is None and btf is not None:
            from purebpf.btf import BtfKind

            ids = btf.find_by_name(func.name, BtfKind.FUNC)
            btf_func_id = ids[0] if ids else None
        prog_relocs = tuple(relocs.get((func.section.index, func.offset), ()))
        calls: List[str] = []
        for r in prog_relocs:
            if r.kind in (RelocationKind.SUBPROG_CALL, RelocationKind.FUNC_POINTER) \
                    and r.target not in calls:
                calls.append(r.target)
        for callee in _local_calls(func, prog_relocs, index):
            if callee not in calls:
                calls.append(callee)
        autoload = not sec.startswith("?")
        kind = None if func.is_subprogram else classify_section(sec if autoload else sec[1:])
        linkage = {"STB_GLOBAL": "global", "STB_LOCAL": "static",
                   "STB_WEAK": "weak"}.get(func.symbol.bind, func.symbol.bind)
        spec = ProgramSpec(
            name=func.name,
            section=sec,
            section_offset=func.offset,
            instructions=func.instructions,
            kind=kind,
            prog_type=kind.prog_type if kind is not None else ProgType.UNSPEC,
            expected_attach_type=kind.expected_attach_type if kind is not None else None,
            attach_target=kind.attach_target if kind is not None else None,
            sleepable=kind.sleepable if kind is not None else False,
            license=license_,
            kernel_version=kernel_version,
            is_subprogram=func.is_subprogram,
            linkage=linkage,
            btf_func_id=btf_func_id,
            relocations=prog_relocs,
            func_info=func_info,
            line_info=line_info,
            core_relos=core_relos,
            calls=tuple(calls),
            autoload=autoload,
        )
        (subprograms if func.is_subprogram else programs).append(spec)
    names = [p.name for p in programs + subprograms]
    _check_unique(names, "function", elf)
    return programs, subprograms

