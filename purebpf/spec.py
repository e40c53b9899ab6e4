"""Object specs: everything a compiled BPF object (``*.bpf.o``) describes.

An :class:`ObjectSpec` is pure data read from the ELF file: programs with
their instructions and relocations, map definitions, global data sections and
their variables, extern symbols, BTF.  It holds no file descriptors and makes
no system calls, so the same bytes give an equal spec on any machine.
Loading (into the kernel) works on copies and never mutates a spec.

Build one with :meth:`ObjectSpec.from_file` or :meth:`ObjectSpec.from_bytes`;
the reading pipeline lives in :mod:`purebpf.elf.reader`.
"""

from __future__ import annotations

import functools

import enum
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

from purebpf.errors import NotFoundError

if TYPE_CHECKING:  # imported lazily at run time: keeps `import purebpf.spec` cheap
    from purebpf.btf import Btf, BtfExt, CoreRelo, FuncInfo, LineInfo
    from purebpf.elf.section_defs import ProgramKind
    from purebpf.insn import Instruction
    from purebpf.uapi import AttachType, MapType, PinType, ProgType

__all__ = [
    "ObjectSpec",
    "ProgramSpec",
    "MapSpec",
    "DataSectionSpec",
    "VariableSpec",
    "ExternSpec",
    "Relocation",
    "RelocationKind",
    "SectionInfo",
    "SymbolInfo",
]


class RelocationKind(enum.Enum):
    """What an ELF relocation in a program section refers to.

    These are the cases libbpf distinguishes in ``bpf_program__record_reloc``
    (``RELO_LD64``, ``RELO_DATA``, ``RELO_CALL``, ``RELO_SUBPROG_ADDR``,
    ``RELO_EXTERN_LD64``, ``RELO_EXTERN_CALL``), with externs split by kind.
    """

    #: ``ld_imm64`` of a map defined in ``.maps`` (or the legacy ``maps`` section).
    MAP = "map"
    #: ``ld_imm64`` of an address inside ``.data``/``.rodata``/``.bss``/custom data.
    GLOBAL_DATA = "global_data"
    #: ``call`` (src_reg = BPF_PSEUDO_CALL) of a function in ``.text``.
    SUBPROG_CALL = "subprog_call"
    #: ``ld_imm64`` of a function in ``.text`` (a callback, e.g. for bpf_loop).
    FUNC_POINTER = "func_pointer"
    #: ``ld_imm64`` of an ``extern ... __kconfig`` variable.
    EXTERN_KCONFIG = "extern_kconfig"
    #: ``ld_imm64`` of an ``extern ... __ksym`` kernel variable.
    EXTERN_KSYM_VAR = "extern_ksym_var"
    #: ``call`` (or address) of an ``extern ... __ksym`` kernel function (kfunc).
    EXTERN_KFUNC = "extern_kfunc"


@dataclass(frozen=True)
class SectionInfo:
    """One ELF section header (``Elf64_Shdr``), names as pyelftools spells them."""

    index: int
    name: str
    type: str  # "SHT_PROGBITS", "SHT_REL", ...
    flags: int  # SHF_* bits
    size: int
    offset: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True)
class SymbolInfo:
    """One ``Elf64_Sym`` of ``.symtab``.

    ``section_index`` is ``st_shndx`` as a number (0 = SHN_UNDEF, 0xfff1 =
    SHN_ABS, 0xfff2 = SHN_COMMON); ``section_name`` is the name of that section,
    or ``""`` for undefined and special indices.
    """

    index: int
    name: str
    value: int
    size: int
    type: str  # "STT_FUNC", "STT_OBJECT", "STT_SECTION", "STT_NOTYPE", ...
    bind: str  # "STB_LOCAL", "STB_GLOBAL", "STB_WEAK"
    visibility: str  # "STV_DEFAULT", "STV_HIDDEN", ...
    section_index: int
    section_name: str


@dataclass(frozen=True)
class Relocation:
    """A relocation of one program instruction, already classified.

    ``insn_index`` indexes :attr:`ProgramSpec.instructions`; ``slot`` is the
    8-byte slot within the function (they differ after an ``ld_imm64``).
    ``offset`` is the byte offset within the target data section for
    GLOBAL_DATA, the byte offset of the target function within ``.text`` for
    SUBPROG_CALL and FUNC_POINTER, and 0 otherwise.
    """

    insn_index: int
    slot: int
    kind: RelocationKind
    symbol: str
    target: str
    offset: int = 0
    variable: Optional[str] = None


@dataclass(frozen=True)
class VariableSpec:
    """A global variable inside a data section.

    ``type_id`` is the BTF id of the variable's C type (the ``type`` of its
    BTF VAR), or 0 when the object has no BTF.  ``linkage`` is ``"static"``,
    ``"global"`` or ``"extern"``.
    """

    name: str
    offset: int
    size: int
    type_id: int
    linkage: str


@dataclass(frozen=True)
class DataSectionSpec:
    """A global-data section, which the loader turns into an array map of one entry.

    ``kind`` is ``"data"``, ``"rodata"``, ``"bss"``, ``"kconfig"`` or
    ``"ksyms"`` -- or ``"arena"`` for ``.addr_space.1``, whose contents belong
    in the object's ARENA map rather than a map of their own; ``data`` is the
    initial contents (zeros for bss and kconfig).

    Offsets and size are the fixed-up ones: clang leaves a DATASEC's size 0 and
    may leave variable offsets unset, which libbpf repairs at open time from
    the ELF section size and the variables' ELF symbols (``btf_fixup_datasec``).
    The same repair is applied here, so these numbers describe the real layout.
    ``.kconfig`` is laid out like libbpf does (sorted by alignment, size, name).
    ``.ksyms`` has size 0 and no data: no map is made for it; it is listed so
    that its variables (typed ksyms and kfuncs) can be inspected.
    """

    name: str
    kind: str
    size: int
    data: bytes
    readonly: bool
    btf_datasec_id: Optional[int]
    variables: Tuple[VariableSpec, ...] = ()

    def variable(self, name: str) -> VariableSpec:
        for var in self.variables:
            if var.name == name:
                return var
        raise NotFoundError("variable", name, candidates=[v.name for v in self.variables])

    def variable_at(self, offset: int) -> Optional[VariableSpec]:
        """The variable covering byte ``offset``, if any."""
        for var in self.variables:
            if var.offset <= offset < var.offset + max(var.size, 1):
                return var
        return None


@dataclass(frozen=True)
class ExternSpec:
    """An ``extern`` the object expects the loader to provide.

    ``kind`` is ``"kconfig"`` (``extern ... __kconfig``), ``"ksym_var"`` (kernel
    variable, ``__ksym``) or ``"kfunc"`` (kernel function, ``__ksym``).
    ``type_id`` is the BTF VAR (or FUNC, for kfuncs) id. ``typeless`` marks a
    ksym declared ``extern const void name __ksym;``.  ``offset`` is the
    position within the ``.kconfig`` area (0 for ksyms).
    """

    name: str
    kind: str
    type_id: int
    weak: bool
    section: str
    size: int
    offset: int
    typeless: bool = False


@dataclass(frozen=True)
class MapSpec:
    """A map definition (libbpf's ``struct btf_map_def`` / legacy ``bpf_map_def``).

    ``initial_values`` lists ``(slot index, name)`` for the ``.values`` of a
    map-in-map (names of maps) or a prog array (names of programs).
    ``key_type_id``/``value_type_id`` are object BTF ids, 0 when absent.
    """

    name: str
    type: "Union[MapType, int]"
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    numa_node: int = 0
    pinning: "Union[PinType, int]" = 0
    map_extra: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    btf_var_id: Optional[int] = None
    inner_map: Optional["MapSpec"] = None
    initial_values: Tuple[Tuple[int, str], ...] = ()
    section: str = ".maps"
    #: Byte offset of the definition inside its ELF section.
    section_offset: int = 0


@dataclass(frozen=True)
class ProgramSpec:
    """One BPF function: an entry program or a ``.text`` subprogram.

    ``func_info``/``line_info``/``core_relos`` are the ``.BTF.ext`` records of
    this function with ``insn_off`` rebased to the function start (bytes), so
    each record's ``insn_index`` is an 8-byte slot within the function.
    """

    name: str
    section: str
    section_offset: int
    instructions: "Tuple[Instruction, ...]"
    kind: "Optional[ProgramKind]"
    prog_type: "Union[ProgType, int]"
    expected_attach_type: "Optional[AttachType]"
    attach_target: Optional[str]
    sleepable: bool
    license: str
    kernel_version: Optional[int]
    is_subprogram: bool
    linkage: str
    btf_func_id: Optional[int]
    relocations: Tuple[Relocation, ...] = ()
    func_info: "Tuple[FuncInfo, ...]" = ()
    line_info: "Tuple[LineInfo, ...]" = ()
    core_relos: "Tuple[CoreRelo, ...]" = ()
    calls: Tuple[str, ...] = ()
    #: False for ``SEC("?xdp")``: libbpf's "do not load unless enabled" prefix.
    #: ``kind`` is classified from the name without the ``?``.
    autoload: bool = True

    @property
    def size(self) -> int:
        """Size of the function in bytes."""
        return sum(insn.size for insn in self.instructions)

    @functools.cached_property
    def _slot_starts(self) -> Tuple[int, ...]:
        """Slot where each instruction starts (computed once; an ld_imm64 takes two)."""
        starts = []
        pos = 0
        for insn in self.instructions:
            starts.append(pos)
            pos += insn.slots
        return tuple(starts)

    @functools.cached_property
    def _index_of_slot(self) -> Dict[int, int]:
        return {slot: index for index, slot in enumerate(self._slot_starts)}

    def slot_of(self, insn_index: int) -> int:
        """The 8-byte slot where ``instructions[insn_index]`` starts."""
        if not 0 <= insn_index < len(self.instructions):
            raise NotFoundError("instruction", insn_index, detail=f"program {self.name}")
        return self._slot_starts[insn_index]

    def insn_at_slot(self, slot: int) -> int:
        """The index of the instruction starting at 8-byte ``slot``."""
        index = self._index_of_slot.get(slot)
        if index is None:
            raise NotFoundError("instruction at slot", slot, detail=f"program {self.name}")
        return index


@dataclass(frozen=True)
class ObjectSpec:
    """Everything read from one BPF ELF object."""

    name: str
    byteorder: str
    license: str
    kernel_version: Optional[int]
    programs: Tuple[ProgramSpec, ...]
    subprograms: Tuple[ProgramSpec, ...]
    maps: Tuple[MapSpec, ...]
    data_sections: Tuple[DataSectionSpec, ...]
    externs: Tuple[ExternSpec, ...]
    btf: "Optional[Btf]" = field(compare=False)
    btf_ext: "Optional[BtfExt]" = field(compare=False)
    sections: Tuple[SectionInfo, ...] = ()
    symbols: Tuple[SymbolInfo, ...] = ()
    #: The exact input bytes' BTF blob, so equality still covers BTF content.
    btf_raw: bytes = b""

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "<bytes>") -> "ObjectSpec":
        """Read a BPF ELF object from memory.  Raises purebpf ParseError subclasses."""
        from purebpf.elf.reader import read_object

        return read_object(bytes(data), name=name)

    @classmethod
    def from_file(cls, path: "Union[str, os.PathLike[str]]") -> "ObjectSpec":
        """Read a BPF ELF object file (``*.bpf.o``)."""
        from purebpf.elf.reader import read_object
        from purebpf.errors import ElfError

        name = os.fspath(path)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ElfError(f"cannot read file: {exc.strerror or exc}", file=name) from exc
        return read_object(data, name=name)

    # -- lookups ---------------------------------------------------------

    def program(self, name: str) -> ProgramSpec:
        """An entry program or subprogram by function name."""
        for prog in self.programs + self.subprograms:
            if prog.name == name:
                return prog
        raise NotFoundError("program", name,
                            candidates=[p.name for p in self.programs + self.subprograms])

    def map(self, name: str) -> MapSpec:
        for m in self.maps:
            if m.name == name:
                return m
        raise NotFoundError("map", name, candidates=[m.name for m in self.maps])

    def data_section(self, name: str) -> DataSectionSpec:
        for sec in self.data_sections:
            if sec.name == name:
                return sec
        raise NotFoundError("data section", name, candidates=[s.name for s in self.data_sections])

    def variable(self, name: str) -> Tuple[DataSectionSpec, VariableSpec]:
        """A global variable by name, with the data section holding it."""
        for sec in self.data_sections:
            for var in sec.variables:
                if var.name == name:
                    return sec, var
        raise NotFoundError("variable", name,
                            candidates=[v.name for s in self.data_sections for v in s.variables])

    def extern(self, name: str) -> ExternSpec:
        for ext in self.externs:
            if ext.name == name:
                return ext
        raise NotFoundError("extern", name, candidates=[e.name for e in self.externs])

    def summary(self) -> Dict[str, Any]:
        """A small JSON-friendly overview (names and counts)."""
        return {
            "name": self.name,
            "byteorder": self.byteorder,
            "license": self.license,
            "kernel_version": self.kernel_version,
            "programs": [(p.name, p.section, len(p.instructions)) for p in self.programs],
            "subprograms": [p.name for p in self.subprograms],
            "maps": [(m.name, int(m.type)) for m in self.maps],
            "data_sections": [(d.name, d.size) for d in self.data_sections],
            "externs": [(e.name, e.kind) for e in self.externs],
        }

