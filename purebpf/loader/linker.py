"""Link one program: the final instruction stream handed to BPF_PROG_LOAD.

A BPF object keeps each entry program in its own ELF section and shared
functions ("subprograms") in ``.text``.  The kernel wants one flat array of
``struct bpf_insn`` per program, so -- as libbpf's ``bpf_object__relocate``
does -- the linker:

1. copies the entry program's (CO-RE-patched) instructions;
2. walks them slot by slot; at the first ``call`` (``src_reg =
   BPF_PSEUDO_CALL``) or function-pointer ``ld_imm64`` (``BPF_PSEUDO_FUNC``)
   that reaches a subprogram not yet present, appends that subprogram at the
   end and walks *it* before going on (a depth-first, first-use order);
3. rewrites each call/function pointer's ``imm`` to ``target slot - (slot +
   1)``, the relative form the verifier expects;
4. resolves the remaining ld_imm64 and kfunc relocations of every copied
   function (``bpf_object__relocate_data``):

   ============================ ==============================================
   relocation                   result
   ============================ ==============================================
   map (``.maps``)              ``src = BPF_PSEUDO_MAP_FD``, ``imm`` = map fd
   global data                  ``src = BPF_PSEUDO_MAP_VALUE``, ``imm`` = fd of
                                the section's array map, second ``imm`` =
                                byte offset in the value
   ``__kconfig`` extern         as global data, into the ``.kconfig`` map at
                                the extern's offset
   typed ``__ksym`` variable    ``src = BPF_PSEUDO_BTF_ID``, ``imm`` = BTF id,
                                second ``imm`` = BTF object fd (0: vmlinux)
   typeless ``__ksym``          the 64-bit kernel address (0 if a weak extern
                                is unresolved)
   kfunc call                   ``src = BPF_PSEUDO_KFUNC_CALL``, ``imm`` = BTF
                                id, ``off`` = fd_array index of the module BTF
                                (0: vmlinux); 0/0 for an unresolved weak one
   ============================ ==============================================

5. concatenates ``.BTF.ext`` func_info and line_info of every copied function,
   with ``insn_off`` converted from bytes to slots and shifted to where the
   function landed (``adjust_prog_btf_ext_info``).

Everything works by 8-byte *slot*, never by instruction index, because CO-RE
may have replaced an ld_imm64 with two one-slot instructions.

The linker is pure: file descriptors and kernel ids come from a
:class:`Resolver` supplied by the caller.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

from purebpf.errors import NotFoundError, RelocationError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf.ext import LineInfo
    from purebpf.insn import Instruction
    from purebpf.spec import ExternSpec, ObjectSpec, ProgramSpec, Relocation

__all__ = [
    "KsymTarget",
    "KfuncTarget",
    "Resolver",
    "DictResolver",
    "LinkedProgram",
    "SourceLine",
    "link_program",
    "FUNC_INFO_REC_SIZE",
    "LINE_INFO_REC_SIZE",
]

#: ``sizeof(struct bpf_func_info)``: ``{ __u32 insn_off; __u32 type_id; }``.
FUNC_INFO_REC_SIZE = 8
#: ``sizeof(struct bpf_line_info)``: insn_off, file_name_off, line_off, line_col.
LINE_INFO_REC_SIZE = 16

_LD_IMM64 = 0x18          # BPF_LD | BPF_IMM | BPF_DW
_CALL = 0x85              # BPF_JMP | BPF_CALL
_PSEUDO_MAP_FD = 1
_PSEUDO_MAP_VALUE = 2
_PSEUDO_BTF_ID = 3
_PSEUDO_FUNC = 4
_PSEUDO_CALL = 1
_PSEUDO_KFUNC_CALL = 2

_SLOT = struct.Struct("<BBhi")  # code, dst:4|src:4, off, imm (little-endian struct bpf_insn)
_FUNC_INFO = struct.Struct("<II")    # struct bpf_func_info
_LINE_INFO = struct.Struct("<IIII")  # struct bpf_line_info


# --------------------------------------------------------------------------- resolver


@dataclass(frozen=True)
class KsymTarget:
    """Where a ``__ksym`` variable lives in the kernel.

    ``btf_id`` is the id of its BTF VAR in vmlinux (or a module BTF, then
    ``btf_obj_fd`` is that BTF's fd); 0 when the ksym is typeless.
    ``address`` is its /proc/kallsyms address (used for typeless ksyms).
    """

    btf_id: int = 0
    btf_obj_fd: int = 0
    address: int = 0


@dataclass(frozen=True)
class KfuncTarget:
    """A kernel function callable from BPF: its BTF FUNC id and the fd_array
    index of the BTF object that holds it (0 for vmlinux)."""

    btf_id: int
    fd_index: int = 0
    btf_obj_fd: int = 0


class Resolver(Protocol):
    """What the linker asks the outside world: fds and kernel ids by name.

    An unknown name must raise :class:`~purebpf.errors.NotFoundError`.  The
    ksym methods return ``None`` for an unresolved *weak* extern (a missing
    non-weak one must raise NotFoundError).
    """

    def map_fd(self, name: str) -> int:
        """fd of the map called ``name`` in the object (a ``.maps`` definition)."""
        ...

    def data_map_fd(self, section: str) -> int:
        """fd of the array map backing data section ``section`` (``.rodata``,
        ``.data``, ``.bss``, ``.kconfig``, custom ``.data.*``...)."""
        ...

    def ksym_var(self, ext: "ExternSpec") -> Optional[KsymTarget]:
        """Resolve an ``extern ... __ksym`` variable."""
        ...

    def kfunc(self, ext: "ExternSpec") -> Optional[KfuncTarget]:
        """Resolve an ``extern ... __ksym`` function (kfunc)."""
        ...


class MapFdLookup:
    """``map_fd``/``data_map_fd`` of a :class:`Resolver` over two name -> fd
    mappings, ``maps`` and ``data_maps``, provided by the subclass."""

    maps: Mapping[str, int]
    data_maps: Mapping[str, int]

    def map_fd(self, name: str) -> int:
        try:
            return self.maps[name]
        except KeyError:
            raise NotFoundError("map", name, candidates=sorted(self.maps)) from None

    def data_map_fd(self, section: str) -> int:
        try:
            return self.data_maps[section]
        except KeyError:
            raise NotFoundError("data section map", section,
                                candidates=sorted(self.data_maps)) from None


@dataclass
class DictResolver(MapFdLookup):
    """A :class:`Resolver` over plain dictionaries (tests, or a caller that
    resolved everything up front).  Missing ksyms are ``None`` when the
    extern is weak, otherwise NotFoundError."""

    maps: Mapping[str, int] = field(default_factory=dict)
    data_maps: Mapping[str, int] = field(default_factory=dict)
    ksyms: Mapping[str, KsymTarget] = field(default_factory=dict)
    kfuncs: Mapping[str, KfuncTarget] = field(default_factory=dict)

    def ksym_var(self, ext: "ExternSpec") -> Optional[KsymTarget]:
        found = self.ksyms.get(ext.name)
        if found is None and not ext.weak:
            raise NotFoundError("ksym", ext.name)
        return found

    def kfunc(self, ext: "ExternSpec") -> Optional[KfuncTarget]:
        found = self.kfuncs.get(ext.name)
        if found is None and not ext.weak:
            raise NotFoundError("ksym", ext.name, detail="kfunc")
        return found


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SourceLine:
    """The C source position of an instruction (from a ``bpf_line_info``)."""

    slot: int
    file_name: str
    line: int
    column: int
    text: str


@dataclass(frozen=True)
class LinkedProgram:
    """One program ready for BPF_PROG_LOAD.

    ``insns`` is the raw ``struct bpf_insn`` array (``insn_cnt`` = len/8).
    ``func_info``/``line_info`` are the arrays for ``bpf_attr.func_info`` /
    ``line_info`` with ``*_rec_size`` per record (empty when the object has
    no ``.BTF.ext`` or the entry function has none, as libbpf does).
    ``subprograms`` lists ``(name, first slot)`` of the appended functions in
    the order they were appended.  ``fd_array`` is ``bpf_attr.fd_array``: the
    BTF object fds the kfunc calls' ``off`` fields index, entry 0 unused (it
    stands for vmlinux); empty when all kfuncs are vmlinux's.
    """

    name: str
    insns: bytes
    func_info: bytes = b""
    line_info: bytes = b""
    func_info_rec_size: int = FUNC_INFO_REC_SIZE
    line_info_rec_size: int = LINE_INFO_REC_SIZE
    subprograms: Tuple[Tuple[str, int], ...] = ()
    fd_array: Tuple[int, ...] = ()
    #: ``(slot, LineInfo)`` for each line_info record, in order
    lines: "Tuple[Tuple[int, LineInfo], ...]" = ()

    @property
    def insn_cnt(self) -> int:
        """Number of 8-byte slots (``bpf_attr.insn_cnt``)."""
        return len(self.insns) // 8

    @property
    def func_info_cnt(self) -> int:
        return len(self.func_info) // self.func_info_rec_size if self.func_info else 0

    @property
    def line_info_cnt(self) -> int:
        return len(self.line_info) // self.line_info_rec_size if self.line_info else 0

    def instructions(self) -> "List[Instruction]":
        """The linked program decoded into :class:`~purebpf.insn.Instruction` objects."""
        from purebpf.insn import decode

        return list(decode(self.insns))

    def source_line(self, slot: int) -> Optional[SourceLine]:
        """The C line that instruction ``slot`` comes from: the last line_info
        record at or before it within the same function, if any."""
        starts = sorted([0] + [start for _, start in self.subprograms])
        func_start = max(s for s in starts if s <= slot) if slot >= 0 else 0
        best: "Optional[Tuple[int, LineInfo]]" = None
        for rec in self.lines:
            if func_start <= rec[0] <= slot and (best is None or rec[0] >= best[0]):
                best = rec
        if best is None:
            return None
        at, li = best
        return SourceLine(at, li.file_name, li.line, li.column, li.line_text)


# --------------------------------------------------------------------------- linking


class _Builder:
    """Mutable state of one link: the growing slot array and bookkeeping."""

    def __init__(self, spec: "ObjectSpec", relocated: Mapping[str, Sequence["Instruction"]],
                 byteorder: str) -> None:
        self.spec = spec
        self.relocated = relocated
        self.byteorder = byteorder
        self.code = bytearray()
        self.placed: Dict[str, int] = {}
        self.order: List[Tuple[str, int]] = []
        self.func_info: List[bytes] = []
        self.line_info: List[bytes] = []
        self.lines: "List[Tuple[int, LineInfo]]" = []
        self._nslots: Dict[str, int] = {}
        self.with_func_info = True
        self.with_line_info = True
        self.data_relocs: List[Tuple[int, "Relocation", str]] = []
        self.functions: Dict[str, "ProgramSpec"] = {}
        self.by_offset: Dict[Tuple[str, int], "ProgramSpec"] = {}
        for p in tuple(spec.programs) + tuple(spec.subprograms):
            self.functions.setdefault(p.name, p)
            self.by_offset.setdefault((p.section, p.section_offset), p)

    # -- slot access -------------------------------------------------------
    def get(self, slot: int) -> Tuple[int, int, int, int]:
        code, regs, off, imm = _SLOT.unpack_from(self.code, slot * 8)
        return code, regs, off, imm

    def put(self, slot: int, code: int, regs: int, off: int, imm: int) -> None:
        imm &= 0xFFFFFFFF
        if imm >= 0x80000000:
            imm -= 1 << 32
        _SLOT.pack_into(self.code, slot * 8, code, regs, off, imm)

    def set_imm(self, slot: int, imm: int) -> None:
        code, regs, off, _ = self.get(slot)
        self.put(slot, code, regs, off, imm)

    def set_src(self, slot: int, src: int) -> None:
        code, regs, off, imm = self.get(slot)
        self.put(slot, code, (regs & 0x0F) | (src << 4), off, imm)

    # -- appending functions ------------------------------------------------
    def function_code(self, func: "ProgramSpec") -> bytes:
        from purebpf.insn import encode

        insns = self.relocated.get(func.name)
        if insns is None:
            insns = func.instructions
        if self.byteorder != "little":
            # Slots are patched as little-endian struct bpf_insn.
            raise RelocationError(f"program {func.name!r}: big-endian objects cannot be linked "
                                  f"for a little-endian kernel")
        return encode(list(insns), self.byteorder)

    def append(self, func: "ProgramSpec", is_main: bool) -> int:
        start = len(self.code) // 8
        self.placed[func.name] = start
        if not is_main:
            self.order.append((func.name, start))
        self.code += self.function_code(func)
        self.add_ext_info(func, start, is_main)
        nslots = self.function_slots(func)
        for rel in func.relocations:
            if not 0 <= rel.slot < nslots:
                raise RelocationError(f"program {func.name!r}: relocation of {rel.symbol!r} at "
                                      f"slot {rel.slot} is outside the function ({nslots} slots)")
            self.data_relocs.append((start + rel.slot, rel, func.name))
        return start

    def add_ext_info(self, func: "ProgramSpec", start: int, is_main: bool) -> None:
        """Append func/line info of ``func`` placed at slot ``start``
        (libbpf ``reloc_prog_func_and_line_info``)."""
        if self.spec.btf_ext is None:
            self.with_func_info = self.with_line_info = False
            return
        if self.with_func_info:
            if func.func_info:
                pack2 = _FUNC_INFO.pack
                self.func_info += [pack2(fi.insn_off // 8 + start, fi.type_id)
                                   for fi in func.func_info]
            elif is_main:
                self.with_func_info = False  # libbpf skips func_info altogether
            else:
                raise RelocationError(f"subprogram {func.name!r} has no .BTF.ext func_info "
                                      f"while the program calling it has")
        if self.with_line_info:
            if func.line_info:
                pack4 = _LINE_INFO.pack
                for li in func.line_info:
                    slot = li.insn_off // 8 + start
                    line_col = ((li.line & 0x3FFFFF) << 10) | (li.column & 0x3FF)
                    self.line_info.append(pack4(slot, li.file_name_off, li.line_off, line_col))
                    self.lines.append((slot, li))
            elif is_main:
                self.with_line_info = False
            else:
                raise RelocationError(f"subprogram {func.name!r} has no .BTF.ext line_info "
                                      f"while the program calling it has")

    # -- calls ----------------------------------------------------------------
    def callee(self, func: "ProgramSpec", slot: int, imm: int,
               rel: "Optional[Relocation]") -> "ProgramSpec":
        if rel is not None:
            target = self.functions.get(rel.target)
            if target is None:
                raise RelocationError(f"program {func.name!r} slot {slot}: call to "
                                      f"{rel.target!r}, which is not a function of the object")
            return target
        # A static call within one section carries no ELF relocation: imm is
        # relative to the call's position in the section.
        target_off = func.section_offset + (slot + 1 + imm) * 8
        found = self.by_offset.get((func.section, target_off))
        if found is None or not found.is_subprogram:
            raise RelocationError(f"program {func.name!r} slot {slot}: call to "
                                  f"{func.section}+{target_off:#x}, where no subprogram starts")
        return found

    def call_sites(self, func: "ProgramSpec", start: int) -> List[int]:
        """Slots of ``func`` (placed at ``start``) that may reach a subprogram:
        ``call`` with ``src_reg = BPF_PSEUDO_CALL``, and function-pointer
        ld_imm64 relocations.  Found by scanning the opcode bytes, not by
        decoding every slot."""
        nslots = self.function_slots(func)
        lo, hi = start * 8, (start + nslots) * 8
        ops = bytes(self.code[lo:hi:8])
        regs = bytes(self.code[lo + 1:hi:8])
        sites = set()
        i = ops.find(_CALL)
        while i >= 0:
            if regs[i] >> 4 == _PSEUDO_CALL:
                sites.add(i)
            i = ops.find(_CALL, i + 1)
        for rel in func.relocations:
            if rel.kind.name == "FUNC_POINTER":
                sites.add(rel.slot)
        return sorted(sites)

    def link_calls(self, main: "ProgramSpec") -> None:
        """Depth-first: append each callee at its first use, then walk it."""
        stack: List[Tuple["ProgramSpec", int, List[int], int]] = []
        stack.append((main, self.placed[main.name], self.call_sites(main, 0), 0))
        while stack:
            func, start, sites, pos = stack.pop()
            rels = {r.slot: r for r in func.relocations}
            nslots = self.function_slots(func)
            while pos < len(sites):
                slot = sites[pos]
                if slot >= nslots:
                    raise RelocationError(f"program {func.name!r}: relocation at slot {slot} is "
                                          f"outside the function ({nslots} slots)")
                code, regs, off, imm = self.get(start + slot)
                rel = rels.get(slot)
                if rel is not None and rel.kind.name == "EXTERN_KFUNC":
                    pos += 1
                    continue  # kfunc calls are resolved with the data relocations
                is_func_ptr = rel is not None and rel.kind.name == "FUNC_POINTER"
                if is_func_ptr and code != _LD_IMM64:
                    raise RelocationError(f"program {func.name!r} slot {slot}: function pointer "
                                          f"relocation on opcode {code:#04x}, not ld_imm64")
                if rel is not None and rel.kind.name not in ("SUBPROG_CALL", "FUNC_POINTER"):
                    raise RelocationError(f"program {func.name!r} slot {slot}: unexpected "
                                          f"{rel.kind.value} relocation on a call")
                target = self.callee(func, slot, imm, rel)
                if target.name not in self.placed:
                    target_start = self.append(target, is_main=False)
                    # resume this function at the same call once the callee is walked
                    stack.append((func, start, sites, pos))
                    stack.append((target, target_start, self.call_sites(target, target_start), 0))
                    break
                rel_imm = self.placed[target.name] - (start + slot) - 1
                if is_func_ptr:
                    self.put(start + slot, code, (regs & 0x0F) | (_PSEUDO_FUNC << 4), off, rel_imm)
                else:
                    self.put(start + slot, code, regs, off, rel_imm)
                pos += 1

    def function_slots(self, func: "ProgramSpec") -> int:
        n = self._nslots.get(func.name)
        if n is None:
            insns = self.relocated.get(func.name)
            if insns is None:
                insns = func.instructions
            n = self._nslots[func.name] = sum(2 if i.opcode == _LD_IMM64 else 1 for i in insns)
        return n

    # -- data ---------------------------------------------------------------
    def resolve_data(self, resolver: Resolver) -> Tuple[int, ...]:
        fd_array: List[int] = []
        externs = {e.name: e for e in self.spec.externs}
        for slot, rel, owner in self.data_relocs:
            kind = rel.kind.name
            if kind in ("SUBPROG_CALL", "FUNC_POINTER"):
                continue
            code, regs, off, imm = self.get(slot)
            where = f"program {owner!r} slot {slot - self.placed[owner]}"
            if kind == "EXTERN_KFUNC" and code == _CALL:
                ext = self._extern(externs, rel, where)
                kf = resolver.kfunc(ext)
                if kf is None:
                    self.put(slot, code, (regs & 0x0F) | (_PSEUDO_KFUNC_CALL << 4), 0, 0)
                else:
                    index = kf.fd_index
                    if kf.btf_obj_fd and not index:
                        if not fd_array:
                            fd_array.append(0)  # index 0 means vmlinux: never used
                        if kf.btf_obj_fd not in fd_array:
                            fd_array.append(kf.btf_obj_fd)
                        index = fd_array.index(kf.btf_obj_fd)
                    self.put(slot, code, (regs & 0x0F) | (_PSEUDO_KFUNC_CALL << 4), index,
                             kf.btf_id)
                continue
            if code != _LD_IMM64:
                raise RelocationError(f"{where}: {rel.kind.value} relocation of {rel.symbol!r} on "
                                      f"an instruction that is not ld_imm64 (opcode {code:#04x})")
            if kind == "MAP":
                self.put(slot, code, (regs & 0x0F) | (_PSEUDO_MAP_FD << 4), off,
                         resolver.map_fd(rel.target))
            elif kind == "GLOBAL_DATA":
                self.put(slot, code, (regs & 0x0F) | (_PSEUDO_MAP_VALUE << 4), off,
                         resolver.data_map_fd(rel.target))
                self.set_imm(slot + 1, rel.offset)
            elif kind == "EXTERN_KCONFIG":
                ext = self._extern(externs, rel, where)
                self.put(slot, code, (regs & 0x0F) | (_PSEUDO_MAP_VALUE << 4), off,
                         resolver.data_map_fd(ext.section or ".kconfig"))
                self.set_imm(slot + 1, ext.offset)
            elif kind in ("EXTERN_KSYM_VAR", "EXTERN_KFUNC"):
                ext = self._extern(externs, rel, where)
                btf_id = 0
                obj_fd = 0
                address = 0
                if kind == "EXTERN_KFUNC":
                    kf = resolver.kfunc(ext)
                    if kf is not None:
                        btf_id, obj_fd = kf.btf_id, kf.btf_obj_fd
                else:
                    ks = resolver.ksym_var(ext)
                    if ks is not None:
                        btf_id, obj_fd, address = ks.btf_id, ks.btf_obj_fd, ks.address
                if btf_id and not ext.typeless:
                    self.put(slot, code, (regs & 0x0F) | (_PSEUDO_BTF_ID << 4), off, btf_id)
                    self.set_imm(slot + 1, obj_fd)
                else:  # typeless, or an unresolved weak typed ksym: the address
                    self.put(slot, code, regs, off, address & 0xFFFFFFFF)
                    self.set_imm(slot + 1, (address >> 32) & 0xFFFFFFFF)
            else:  # pragma: no cover - every RelocationKind is handled above
                raise RelocationError(f"{where}: unknown relocation kind {rel.kind!r}")
        return tuple(fd_array)

    @staticmethod
    def _extern(externs: Mapping[str, "ExternSpec"], rel: "Relocation", where: str) -> "ExternSpec":
        ext = externs.get(rel.target)
        if ext is None:
            raise RelocationError(f"{where}: relocation against unknown extern {rel.target!r}")
        return ext


def link_program(spec: "ObjectSpec", prog: "ProgramSpec",
                 relocated: Mapping[str, Sequence["Instruction"]],
                 resolve: Resolver, *, btf_ext_info: bool = True) -> LinkedProgram:
    """Build the final instructions, func_info and line_info of ``prog``.

    ``relocated`` maps function names to their CO-RE-patched instructions
    (``ObjectRelocation.programs[name].instructions``); a function missing
    from it is used as read.  ``resolve`` supplies map fds and kernel ids.
    ``btf_ext_info=False`` leaves func_info/line_info out (for kernels
    without BTF func support).  Raises :class:`RelocationError` for a call to
    a function that does not exist, NotFoundError for an unknown map or an
    unresolvable non-weak ksym.  Neither ``spec`` nor ``relocated`` is changed.
    """
    builder = _Builder(spec, relocated, spec.byteorder)
    if not btf_ext_info:
        builder.with_func_info = builder.with_line_info = False
    builder.append(prog, is_main=True)
    builder.link_calls(prog)
    fd_array = builder.resolve_data(resolve)
    return LinkedProgram(
        name=prog.name,
        insns=bytes(builder.code),
        func_info=b"".join(builder.func_info) if builder.with_func_info else b"",
        line_info=b"".join(builder.line_info) if builder.with_line_info else b"",
        subprograms=tuple(builder.order),
        fd_array=fd_array,
        lines=tuple(builder.lines) if builder.with_line_info else (),
    )
