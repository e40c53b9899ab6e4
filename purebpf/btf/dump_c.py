"""BTF to C: the ``vmlinux.h`` generator, byte for byte what ``bpftool btf dump file F format c`` prints.

BTF describes C types, so it can be turned back into a header that clang
accepts.  The rules below are those of libbpf's ``btf_dump`` (src/btf_dump.c,
the copy inside bpftool 7.1 / libbpf 1.1), reimplemented here:

1. **Ordering** (``_order``): a depth-first walk decides which *named*
   definitions (struct, union, enum, typedef, forward declaration) must come
   out before which.  A type a definition *embeds* (a member that is not
   behind a pointer) is a *strong* dependency: it must be fully defined first.
   A type only reached through a pointer is *weak*: ``struct foo;`` is
   enough.  Anonymous structs, unions and enums are never emitted on their
   own; they are written inline where they are used, so their dependencies
   become those of the user.
2. **Emission** (``_emit``): each queued definition is written, preceded by
   whatever forward declarations it still needs (pointer cycles such as
   ``struct list_head { struct list_head *next; }`` are what makes those
   necessary).
3. **Declarations** (``_emit_decl``): a chain of BTF types (typedef ->
   array -> pointer -> const -> int) is turned into C declarator syntax,
   which reads inside out: ``const int *(*name)[4]``.

Struct layout is reproduced exactly, since BPF programs compiled against the
header must see the kernel's offsets: gaps between members become explicit
anonymous bitfields (``long: 64;``, ``int: 32;``, or ``long: 0;`` to force an
alignment), and a struct whose members are not naturally aligned gets
``__attribute__((packed))``.  Names that occur more than once (two different
``struct foo`` in one BTF, or an enumerator and a typedef of the same name) get
a ``___2``, ``___3``... suffix in order of first use.

Malformed BTF (reference loops such as ``typedef A -> const -> typedef A``,
type ids that point nowhere, unsatisfiable embedding cycles) raises
:class:`purebpf.errors.BtfError`; the walk never recurses without bound.

The target is the libbpf copy built into Debian's bpftool 7.1 (kernel 6.1.x
tools): it writes ``(void)`` for prototypes without parameters, pads with
``long: 0;``-style alignment markers (libbpf's late-2022 padding rules), emits
``__attribute__((btf_type_tag("...")))`` and does *not* add
``__attribute__((mode(byte|word)))`` to odd-sized enums (the stand-alone
libbpf.so 1.1.2 differs on the first and last point).

The type records are read straight from the BTF bytes (``_decode_part``)
rather than through the decoded type model: a full ``vmlinux.h`` touches
every one of the ~127,000 types, and the compact column tables built here are
several times cheaper than one Python object per type.  :func:`_tables_from_model` builds the same tables from ``btf[i]`` for
any :class:`~purebpf.btf.Btf`-like object without raw bytes; tests check the
two agree.
"""

from __future__ import annotations

import gc
import logging
import sys
from array import array
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from purebpf.btf.types import BtfKind
from purebpf.errors import BtfError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    from purebpf.btf.btf import Btf

__all__ = ["dump_c", "HEADER", "FOOTER"]

log = logging.getLogger(__name__)

#: What bpftool prints before the first type.
HEADER = (
    "#ifndef __VMLINUX_H__\n"
    "#define __VMLINUX_H__\n"
    "\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
    "#endif\n"
    "\n"
)

#: What bpftool prints after the last type.
FOOTER = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute pop\n"
    "#endif\n"
    "\n"
    "#endif /* __VMLINUX_H__ */\n"
)

# Kind numbers as plain ints: the hot loops compare them millions of times.
_UNKN = int(BtfKind.UNKN)
_INT = int(BtfKind.INT)
_PTR = int(BtfKind.PTR)
_ARRAY = int(BtfKind.ARRAY)
_STRUCT = int(BtfKind.STRUCT)
_UNION = int(BtfKind.UNION)
_ENUM = int(BtfKind.ENUM)
_FWD = int(BtfKind.FWD)
_TYPEDEF = int(BtfKind.TYPEDEF)
_VOLATILE = int(BtfKind.VOLATILE)
_CONST = int(BtfKind.CONST)
_RESTRICT = int(BtfKind.RESTRICT)
_FUNC = int(BtfKind.FUNC)
_FUNC_PROTO = int(BtfKind.FUNC_PROTO)
_VAR = int(BtfKind.VAR)
_DATASEC = int(BtfKind.DATASEC)
_FLOAT = int(BtfKind.FLOAT)
_DECL_TAG = int(BtfKind.DECL_TAG)
_TYPE_TAG = int(BtfKind.TYPE_TAG)
_ENUM64 = int(BtfKind.ENUM64)

#: Kinds that only refer to another type through ``struct btf_type.type``.
_REF_KINDS = frozenset({_PTR, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _FUNC, _VAR,
                        _DECL_TAG, _TYPE_TAG})
#: libbpf's ``btf_is_mod()``: qualifiers that may be dropped from a declaration.
_MOD_KINDS = frozenset({_VOLATILE, _CONST, _RESTRICT, _TYPE_TAG})
#: Kinds with nothing to declare in C (functions, variables, sections, tags).
_NO_DECL_KINDS = frozenset({_FUNC, _VAR, _DATASEC, _DECL_TAG})
#: Kinds that lead to exactly one other type when ordering.
_SINGLE_REF_KINDS = frozenset({_PTR, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG, _ARRAY})
#: Every kind this dumper knows.
_KNOWN_KINDS = frozenset(range(_INT, _ENUM64 + 1))
#: Kinds that end a declaration chain (the "base" of a C declaration).
_TERMINAL_KINDS = frozenset({_INT, _ENUM, _ENUM64, _FWD, _STRUCT, _UNION, _TYPEDEF, _FLOAT})
#: Kinds that a declaration chain passes through to ``.type``.
_CHAIN_KINDS = frozenset({_PTR, _VOLATILE, _CONST, _RESTRICT, _FUNC_PROTO, _TYPE_TAG, _ARRAY})

# Order / emit states of libbpf's ``struct btf_dump_type_aux_state``.
_NOT_ORDERED, _ORDERING, _ORDERED = 0, 1, 2
_NOT_EMITTED, _EMITTING, _EMITTED = 0, 1, 2

#: Nesting limits.  Real BTF stays far below them (vmlinux nests structs a few
#: dozen levels deep); hitting one means a reference loop in malformed BTF.
_MAX_WALK_DEPTH = 250
_MAX_DECL_NESTING = 120
_MAX_CHAIN_LEN = 4096
#: The largest hole between members written as padding (1 MiB, some 130,000
#: ``long: 64;`` lines); a larger one only comes from a corrupt size or offset.
_MAX_PADDING_BITS = 8 << 20
#: libbpf's ``MAX_RESOLVE_DEPTH`` for ``btf__resolve_size()``.
_MAX_RESOLVE_DEPTH = 32
_U32_MAX = 0xFFFFFFFF

#: libbpf's ``missing_base_types``: GCC's Arm SIMD ``__PolyN_t`` INTs get a typedef.
_MISSING_BASE_TYPES = {
    "__Poly8_t": "unsigned char",
    "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long",
    "__Poly128_t": "unsigned __int128",
}

#: ``pfx(lvl)``: indentation is one tab per level, capped at 13 tabs.
_PFX = tuple("\t" * min(lvl, 13) for lvl in range(_MAX_DECL_NESTING + 4))

#: libbpf's ``determine_ptr_size()``: INT names that spell ``long``.
_LONG_ALIASES = frozenset({
    "long", "long int", "int long", "unsigned long", "long unsigned",
    "unsigned long int", "unsigned int long", "long unsigned int",
    "long int unsigned", "int unsigned long", "int long unsigned",
})

Member = Tuple[str, int, int, int]      # name, type id, bit offset, bitfield size (0: none)
EnumVal = Tuple[str, int, bool]         # name, value as printed, upper 32 bits non-zero
Param = Tuple[str, int]                 # name, type id


class _SameKey(Dict[Any, str]):
    """A mapping that returns every key as its own value (names that are already strings)."""

    def __missing__(self, key: Any) -> str:
        return str(key)


class _Tables:
    """Every type of a BTF (base types included) as parallel lists indexed by type id.

    * ``kind[id]``: ``BTF_KIND_*`` (id 0, void, has kind 0);
    * ``name[id]``: the name ("" when ``name_off`` is 0);
    * ``ref[id]``: the referenced type (``.type`` of ptr/typedef/modifiers/func/var/
      decl_tag/type_tag, element of an array, return type of a func_proto);
    * ``size[id]``: byte size of int/struct/union/enum/float/datasec; ``nelems`` of an array;
    * ``kflag[id]``: the ``kind_flag`` bit (union for FWD, signed for enums);
    * ``extra[id]``: for a struct/union the member columns ``(names, types,
      bit_offsets, bitfield_sizes)``; for a func_proto ``(name keys, types)`` of
      its parameters (``strings[key]`` is the name); for an enum a list of ``(name, value, upper 32 bits set)``;
      the index type of an array; the variable type ids of a datasec; else None.
    """

    __slots__ = ("kind", "name", "ref", "size", "kflag", "extra", "ptr_size", "file", "strings")

    def __init__(self, file: str) -> None:
        self.file = file
        self.kind: List[int] = [_UNKN]
        self.name: List[str] = [""]
        self.ref: List[int] = [0]
        self.size: List[int] = [0]
        self.kflag: List[bool] = [False]
        self.extra: List[Any] = [None]
        self.ptr_size = 0
        #: Resolves the parameter-name keys kept in func_proto ``extra`` (name
        #: offsets on the wire path, the names themselves on the model path).
        self.strings: Dict[Any, str] = _SameKey()

    def __len__(self) -> int:
        return len(self.kind)

    def finish(self) -> None:
        """Guess the pointer size like libbpf does for raw BTF: from a ``long`` INT, else 8."""
        kind, name, size = self.kind, self.name, self.size
        for i in range(1, len(kind)):
            if kind[i] == _INT and size[i] in (4, 8) and name[i] in _LONG_ALIASES:
                self.ptr_size = size[i]
                return
        self.ptr_size = 8


def _tables_from_wire(btf: "Btf") -> _Tables:
    """Build :class:`_Tables` from the BTF bytes (fast path; split BTF included)."""
    parts = []
    part: Any = btf
    while part is not None:
        parts.append(part)
        part = part.base
    parts.reverse()  # base first: ids and string offsets continue from it
    tab = _Tables(btf.name)
    strings: Optional[_StringTable] = None
    str_start = 0
    for part in parts:
        strings = _StringTable(part, str_start, strings)
        str_start += part.header.str_len
        _decode_part(part, tab, strings)
    assert strings is not None
    tab.strings = strings
    tab.finish()
    return tab


class _StringTable(Dict[int, str]):
    """Name offset -> name for one BTF (and, through ``base``, its base BTF).

    Every string of the section is decoded in one pass; an offset pointing
    into the middle of a string (legal, if unusual) is decoded on first use.
    Bytes that are not UTF-8 are kept with ``surrogateescape``, so encoding
    the dump with that handler gives back exactly the bytes bpftool prints.
    """

    def __init__(self, btf: Any, start: int, base: Optional["_StringTable"]) -> None:
        super().__init__()
        hdr = btf.header
        begin = hdr.hdr_len + hdr.str_off
        self.file = btf.name
        self.start = start
        self.base = base
        self.data = data = bytes(btf.raw[begin:begin + hdr.str_len])
        # Offsets of the pieces between NULs (from their byte lengths) zipped
        # with the decoded pieces; NUL is never part of a multi-byte sequence,
        # so decoding first and splitting after cuts at the same places.
        lengths_plus_one = map((1).__add__, map(len, data.split(b"\0")))
        self.update(zip(accumulate(lengths_plus_one, initial=start),
                        data.decode("utf-8", "surrogateescape").split("\0")))
        self[0] = ""

    def __missing__(self, off: int) -> str:
        if off < self.start and self.base is not None:
            return self.base[off]
        local = off - self.start
        end = self.data.find(b"\0", max(local, 0))
        if local < 0 or end < 0:
            raise BtfError(f"name offset {off} is past the end of the strings or unterminated",
                           file=self.file, section="strings", offset=max(local, 0))
        text = self.data[local:end].decode("utf-8", "surrogateescape")
        self[off] = text
        return text


#: Kinds whose ``size_or_type`` word is a type id (FUNC_PROTO: the return type).
_TYPE_WORD_KINDS = _REF_KINDS | {_FUNC_PROTO}
#: Kinds whose ``size_or_type`` word is a byte size.
_SIZE_WORD_KINDS = frozenset({_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _FLOAT, _DATASEC})
#: Kinds with a trailer the dumper needs.
_TRAILER_KINDS = frozenset({_STRUCT, _UNION, _ENUM, _ENUM64, _ARRAY, _FUNC_PROTO, _DATASEC})


def _decode_part(btf: Any, tab: _Tables, strings: _StringTable) -> None:
    """Append the types one BTF owns (not its base's) to ``tab``."""
    from purebpf.btf._offsets import type_offsets

    hdr = btf.header
    start = hdr.hdr_len + hdr.type_off
    words = array("I")
    if words.itemsize != 4:  # pragma: no cover - every CPython platform has a 4-byte "I"
        raise BtfError("array('I') is not 32-bit on this platform", file=tab.file)
    try:
        words.frombytes(bytes(btf.raw[start:start + hdr.type_len]))
    except ValueError as exc:
        raise BtfError("type section length is not a multiple of 4", file=tab.file,
                       section="types", offset=0) from exc
    if btf.byteorder != sys.byteorder:
        words.byteswap()
    wl = words.tolist()
    # The reader already knows where each type starts; recompute only if it does not say.
    offs: Sequence[int] = getattr(btf, "_offsets", None) or ()
    if len(offs) != len(btf) - btf.start_id:
        offs = type_offsets(wl, file=tab.file, base_offset=start, first_id=btf.start_id)
    offs = list(offs)
    string = strings.__getitem__
    infos = [wl[o + 1] for o in offs]
    kinds = [(x >> 24) & 0x1F for x in infos]
    sts = [wl[o + 2] for o in offs]
    first = len(tab.kind)
    tab.kind.extend(kinds)
    tab.name.extend([string(wl[o]) for o in offs])
    tab.kflag.extend([x >> 31 == 1 for x in infos])
    ref_kinds, size_kinds = _TYPE_WORD_KINDS, _SIZE_WORD_KINDS
    tab.ref.extend([st if k in ref_kinds else 0 for k, st in zip(kinds, sts)])
    tab.size.extend([st if k in size_kinds else 0 for k, st in zip(kinds, sts)])
    extras: List[Any] = [None] * len(offs)
    refs, sizes = tab.ref, tab.size
    trailer_kinds = _TRAILER_KINDS
    for j in [j for j, k in enumerate(kinds) if k in trailer_kinds]:
        kind = kinds[j]
        info = infos[j]
        vlen = info & 0xFFFF
        kflag = info >> 31
        t = offs[j] + 3
        if kind == _STRUCT or kind == _UNION:
            e = t + 3 * vlen
            m_names = list(map(string, wl[t:e:3]))
            if kflag:
                packed_offs = wl[t + 2:e:3]
                extras[j] = (m_names, wl[t + 1:e:3], [o & 0xFFFFFF for o in packed_offs],
                             [o >> 24 for o in packed_offs])
            else:
                extras[j] = (m_names, wl[t + 1:e:3], wl[t + 2:e:3], [0] * vlen)
        elif kind == _FUNC_PROTO:
            e = t + 2 * vlen
            extras[j] = (wl[t:e:2], wl[t + 1:e:2])  # (name offsets, types)
        elif kind == _ARRAY:
            refs[first + j] = wl[t]
            extras[j] = wl[t + 1]
            sizes[first + j] = wl[t + 2]
        elif kind == _ENUM:
            e = t + 2 * vlen
            vals = []
            for n, v in zip(wl[t:e:2], wl[t + 1:e:2]):
                if kflag and v >= 0x80000000:
                    v -= 0x100000000
                vals.append((string(n), v, False))
            extras[j] = vals
        elif kind == _ENUM64:
            e = t + 3 * vlen
            vals = []
            for n, lo, hi in zip(wl[t:e:3], wl[t + 1:e:3], wl[t + 2:e:3]):
                v = lo | (hi << 32)
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                vals.append((string(n), v, hi != 0))
            extras[j] = vals
        else:  # DATASEC: the variables' type ids
            extras[j] = wl[t:t + 3 * vlen:3]
    tab.extra.extend(extras)


def _tables_from_model(btf: Any) -> _Tables:
    """Build :class:`_Tables` from the decoded type model (``btf[i]`` for every id).

    Works for any object with ``len()`` and ``[id]`` returning
    :mod:`purebpf.btf.types` objects; slower than the wire path.
    """
    tab = _Tables(str(getattr(btf, "name", "<btf>")))
    for type_id in range(1, len(btf)):
        t = btf[type_id]
        kind = int(t.kind)
        ref = 0
        size = 0
        kflag = False
        extra: Any = None
        if kind in _REF_KINDS:
            ref = t.type
        elif kind == _STRUCT or kind == _UNION:
            size = t.size
            kflag = t.kind_flag
            extra = ([m.name for m in t.members], [m.type for m in t.members],
                     [m.bit_offset for m in t.members], [m.bitfield_size for m in t.members])
        elif kind == _INT or kind == _FLOAT:
            size = t.size
        elif kind == _ARRAY:
            ref, extra, size = t.type, t.index_type, t.nelems
        elif kind == _FUNC_PROTO:
            ref = t.return_type
            extra = ([p.name for p in t.params], [p.type for p in t.params])  # names as keys
        elif kind == _ENUM:
            size, kflag = t.size, t.signed
            vals = []
            for v in t.values:
                val = v.value & _U32_MAX
                if kflag and val >= 0x80000000:
                    val -= 0x100000000
                vals.append((v.name, val, False))
            extra = vals
        elif kind == _ENUM64:
            size, kflag = t.size, t.signed
            vals = []
            for v in t.values:
                val = v.value & 0xFFFFFFFFFFFFFFFF
                hi = val >> 32 != 0
                if kflag and val >= 1 << 63:
                    val -= 1 << 64
                vals.append((v.name, val, hi))
            extra = vals
        elif kind == _FWD:
            kflag = t.is_union
        elif kind == _DATASEC:
            size = t.size
            extra = [v.type for v in t.vars]
        tab.kind.append(kind)
        tab.name.append(t.name)
        tab.ref.append(ref)
        tab.size.append(size)
        tab.kflag.append(kflag)
        tab.extra.append(extra)
    tab.finish()
    return tab


def _build_tables(btf: Any) -> _Tables:
    if hasattr(btf, "raw") and hasattr(btf, "header"):
        return _tables_from_wire(btf)
    return _tables_from_model(btf)


class _CDumper:
    """One ``struct btf_dump``: state shared by every type dumped into one header."""

    def __init__(self, tab: _Tables) -> None:
        self.tab = tab
        self.kind = tab.kind
        self.name = tab.name
        self.ref = tab.ref
        self.size = tab.size
        self.extra = tab.extra
        self.ptr_size = tab.ptr_size
        n = len(tab)
        self.order_state = bytearray(n)
        self.emit_state = bytearray(n)
        self.fwd_emitted = bytearray(n)
        self.referenced: "set[int]" = set()
        self.order_state[0] = _ORDERED
        self.emit_state[0] = _EMITTED
        #: Per type id: the unique (possibly ``___N``-suffixed) name, once resolved.
        self.resolved: List[Optional[str]] = [None] * n
        #: struct/union/enum names -> occurrences; typedef and enumerator names -> occurrences.
        self.type_names: Dict[str, int] = {}
        self.ident_names: Dict[str, int] = {}
        self.out: List[str] = []
        self.queue: List[int] = []
        self.decl_nesting = 0
        self._align_cache: Dict[int, int] = {}
        self._aligns: Dict[int, int] = {}
        self._sizes: Dict[int, int] = {}
        self._pads = (("long", self.ptr_size * 8), ("int", 32), ("short", 16), ("char", 8))
        self._mark_referenced()
        for type_id in [i for i, k in enumerate(self.kind) if k == _INT or k == _FLOAT]:
            words = self.name[type_id].split(" ")
            if not all(w.isidentifier() and w.isascii() for w in words):
                raise self._error(f"base type [{type_id}] is named {self.name[type_id]!r}, "
                                  "not a C type name")

    # -- errors ---------------------------------------------------------------------------

    def _error(self, reason: str) -> BtfError:
        return BtfError(reason, file=self.tab.file, section="types")

    # -- btf_dump_mark_referenced ---------------------------------------------------------

    def _mark_referenced(self) -> None:
        """Collect every type some other type refers to, checking that every id exists.

        An anonymous enum nobody refers to is a top-level declaration (global
        constants); a referenced one is written inline where it is used.
        """
        kinds, refs, extras = self.kind, self.ref, self.extra
        targets: List[int] = list(refs)  # 0 for kinds without a .type word
        unknown = set(kinds[1:]) - _KNOWN_KINDS
        if unknown:
            bad = min(i for i in range(1, len(kinds)) if kinds[i] in unknown)
            raise self._error(f"type [{bad}] has unknown kind {kinds[bad]}")
        for type_id in [i for i, k in enumerate(kinds) if k in _TRAILER_KINDS]:
            kind = kinds[type_id]
            if kind == _STRUCT or kind == _UNION or kind == _FUNC_PROTO:
                targets.extend(extras[type_id][1])
            elif kind == _ARRAY:
                targets.append(extras[type_id])
            elif kind == _DATASEC:
                targets.extend(extras[type_id])
        self.referenced = set(targets)
        n = len(kinds)
        if targets and max(targets) >= n:
            self._find_dangling()

    def _find_dangling(self) -> None:
        """Name the first type that refers past the last type id (always raises)."""
        kinds, refs, extras = self.kind, self.ref, self.extra
        n = len(kinds)
        for type_id in range(1, n):
            kind = kinds[type_id]
            found: List[int] = [refs[type_id]]
            if kind == _STRUCT or kind == _UNION or kind == _FUNC_PROTO:
                found.extend(extras[type_id][1])
            elif kind == _ARRAY:
                found.append(extras[type_id])
            elif kind == _DATASEC:
                found.extend(extras[type_id])
            for target in found:
                if target >= n:
                    raise self._error(f"type [{type_id}] refers to type id {target}, "
                                      f"past the last type [{n - 1}]")
        raise self._error("dangling type id")  # pragma: no cover - found above

    # -- names ----------------------------------------------------------------------------

    def _resolve_name(self, type_id: int, names: Dict[str, int]) -> str:
        """libbpf's ``btf_dump_resolve_name``: the first user of a name keeps it, later
        ones get ``___2``, ``___3``...  Forward declarations and empty enums never count."""
        name = self.name[type_id]
        if not name:
            return ""
        resolved = self.resolved[type_id]
        if resolved is not None:
            return resolved
        kind = self.kind[type_id]
        if kind == _FWD or (kind == _ENUM and not self.extra[type_id]):
            if not (name.isidentifier() and name.isascii()):
                raise self._error(f"type [{type_id}] is named {name!r}, not a C identifier")
            self.resolved[type_id] = name
            return name
        if kind != _INT and not (name.isidentifier() and name.isascii()):
            raise self._error(f"type [{type_id}] is named {name!r}, not a C identifier")
        count = names.get(name, 0) + 1
        names[name] = count
        resolved = f"{name}___{count}" if count > 1 else name
        self.resolved[type_id] = resolved
        return resolved

    def _check_idents(self, names: Sequence[str], type_id: int) -> None:
        """Member, enumerator and parameter names must be C identifiers (or empty)."""
        if "".join(names).isascii() and all(map(str.isidentifier, filter(None, names))):
            return
        for name in names:
            if name and not (name.isidentifier() and name.isascii()):
                raise self._error(f"type [{type_id}] has a member or value named {name!r}, "
                                  "not a C identifier")

    def _type_name(self, type_id: int) -> str:
        return self._resolve_name(type_id, self.type_names)

    def _ident_name(self, type_id: int) -> str:
        return self._resolve_name(type_id, self.ident_names)

    # -- sizes and alignment (libbpf's btf__resolve_size / btf__align_of) -----------------

    def _resolve_size(self, type_id: int) -> int:
        """Byte size of a type, or -1 when it has none (void, fwd, func...)."""
        size = self._sizes.get(type_id)
        if size is None:
            size = self._sizes[type_id] = self._compute_size(type_id)
        return size

    def _compute_size(self, type_id: int) -> int:
        kinds, refs, sizes = self.kind, self.ref, self.size
        nelems = 1
        size = -1
        for _ in range(_MAX_RESOLVE_DEPTH):
            if type_id == 0:
                break
            kind = kinds[type_id]
            if kind in (_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _DATASEC, _FLOAT):
                size = sizes[type_id]
                break
            if kind == _PTR:
                size = self.ptr_size
                break
            if kind in (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _VAR, _DECL_TAG, _TYPE_TAG):
                type_id = refs[type_id]
            elif kind == _ARRAY:
                count = sizes[type_id]
                if nelems and count > _U32_MAX // nelems:
                    return -1
                nelems *= count
                type_id = refs[type_id]
            else:  # FWD, FUNC, FUNC_PROTO: no size
                return -1
        if size < 0:
            return -1
        if nelems and size > _U32_MAX // nelems:
            return -1
        return nelems * size

    def _align_of(self, type_id: int) -> int:
        """Alignment in bytes (0 when unknown); a struct laid out unaligned counts as packed (1)."""
        cached = self._aligns.get(type_id)
        if cached is not None:
            return cached
        align = self._compute_align(type_id)
        self._aligns[type_id] = align
        return align

    def _compute_align(self, type_id: int) -> int:
        kinds, refs = self.kind, self.ref
        for _ in range(_MAX_CHAIN_LEN):
            kind = kinds[type_id]
            if kind in (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG, _ARRAY):
                type_id = refs[type_id]
                continue
            if kind in (_INT, _ENUM, _ENUM64, _FLOAT):
                return min(self.ptr_size, self.size[type_id])
            if kind == _PTR:
                return self.ptr_size
            if kind == _STRUCT or kind == _UNION:
                return self._struct_align(type_id)
            log.debug("btf_dump: no alignment for kind %d, id [%d]", kind, type_id)
            return 0
        raise self._error(f"reference loop through type [{type_id}]")

    def _struct_align(self, type_id: int) -> int:
        cache = self._align_cache
        cached = cache.get(type_id)
        if cached is not None:
            if cached < 0:
                raise self._error(f"struct/union [{type_id}] contains itself")
            return cached
        cache[type_id] = -1
        max_align = 1
        result = 0
        _names, m_types, m_offs, m_bits_list = self.extra[type_id]
        aligns = self._aligns
        for m_type, m_off, m_bits in zip(m_types, m_offs, m_bits_list):
            align = aligns.get(m_type)
            if align is None:
                align = self._align_of(m_type)
            if align <= 0:
                result = 0
                break
            if align > max_align:
                max_align = align
            if m_bits == 0 and m_off % (8 * align) != 0:
                result = 1
                break
        else:
            result = 1 if self.size[type_id] % max_align else max_align
        cache[type_id] = result
        return result

    def _is_struct_packed(self, type_id: int) -> bool:
        """libbpf's ``btf_is_struct_packed``: a member off its natural alignment, or a size
        that is not a multiple of the largest member alignment."""
        max_align = 1
        _names, m_types, m_offs, m_bits_list = self.extra[type_id]
        aligns = self._aligns
        for m_type, m_off, m_bits in zip(m_types, m_offs, m_bits_list):
            align = aligns.get(m_type)
            if align is None:
                align = self._align_of(m_type)
            if align and m_bits == 0 and m_off % (8 * align) != 0:
                return True
            if align > max_align:
                max_align = align
        return self.size[type_id] % max_align != 0

    # -- ordering (btf_dump_order_type) ---------------------------------------------------

    def _order(self, type_id: int, through_ptr: bool, depth: int) -> int:
        """Queue the named definitions ``type_id`` depends on, dependencies first.

        Returns 1 when the link to ``type_id`` is strong (it must be fully
        defined first), 0 when a forward declaration is enough.
        """
        state = self.order_state[type_id]
        if state == _ORDERED:
            return 1
        kind = self.kind[type_id]
        if state == _ORDERING:
            if (kind == _STRUCT or kind == _UNION) and through_ptr and self.name[type_id]:
                return 0
            raise self._error(f"unsatisfiable type cycle, id:[{type_id}]")
        if depth > _MAX_WALK_DEPTH:
            raise self._error(f"type references nest deeper than {_MAX_WALK_DEPTH} levels "
                              f"at type [{type_id}] (reference loop?)")
        depth += 1
        if kind == _INT or kind == _FLOAT:
            self.order_state[type_id] = _ORDERED
            return 0
        if kind == _PTR:
            strong = self._order(self.ref[type_id], True, depth)
            self.order_state[type_id] = _ORDERED
            return strong
        if kind == _ARRAY:
            return self._order(self.ref[type_id], False, depth)
        if kind == _STRUCT or kind == _UNION:
            named = bool(self.name[type_id])
            # Behind a pointer, a named struct needs only a forward declaration.
            if through_ptr and named:
                return 0
            order_state = self.order_state
            order_state[type_id] = _ORDERING
            kinds, refs = self.kind, self.ref
            for m_type in self.extra[type_id][1]:
                if order_state[m_type] == _ORDERED:
                    continue
                # An array, qualifier or pointer of an ordered type: nothing to do
                # (a pointer is then ordered itself), as _order() would find.
                m_kind = kinds[m_type]
                if m_kind in _SINGLE_REF_KINDS and order_state[refs[m_type]] == _ORDERED:
                    if m_kind == _PTR:
                        order_state[m_type] = _ORDERED
                    continue
                self._order(m_type, False, depth)
            if named:
                self.queue.append(type_id)
            self.order_state[type_id] = _ORDERED
            return 1
        if kind == _ENUM or kind == _ENUM64 or kind == _FWD:
            # Named enums, and anonymous ones nobody refers to, are top-level declarations.
            if self.name[type_id] or type_id not in self.referenced:
                self.queue.append(type_id)
            self.order_state[type_id] = _ORDERED
            return 1
        if kind == _TYPEDEF:
            strong = self._order(self.ref[type_id], through_ptr, depth)
            if through_ptr and not strong:
                return 0
            self.queue.append(type_id)
            self.order_state[type_id] = _ORDERED
            return 1
        if kind in (_VOLATILE, _CONST, _RESTRICT, _TYPE_TAG):
            return self._order(self.ref[type_id], through_ptr, depth)
        if kind == _FUNC_PROTO:
            order_state = self.order_state
            ret = self.ref[type_id]
            strong = order_state[ret] == _ORDERED or self._order(ret, through_ptr, depth) > 0
            for p_type in self.extra[type_id][1]:
                if order_state[p_type] == _ORDERED or self._order(p_type, through_ptr, depth) > 0:
                    strong = True
            return 1 if strong else 0
        # FUNC, VAR, DATASEC, DECL_TAG: nothing to declare.
        self.order_state[type_id] = _ORDERED
        return 0

    # -- emission (btf_dump_emit_type) ----------------------------------------------------

    def _emit(self, type_id: int, cont_id: int, depth: int) -> None:
        """Write ``type_id``'s definition (``cont_id == 0``) or what a user of it needs.

        ``cont_id`` is the struct being defined when we got here: referring to
        it from inside needs no forward declaration.
        """
        state = self.emit_state[type_id]
        if state == _EMITTED:
            return
        kind = self.kind[type_id]
        out = self.out
        if state == _EMITTING:
            # Reached again while its own definition is being prepared: a cycle.
            if self.fwd_emitted[type_id]:
                return
            if kind == _STRUCT or kind == _UNION:
                if type_id == cont_id:
                    return
                if not self.name[type_id]:
                    log.warning("anonymous struct/union loop, id:[%d]", type_id)
                    return
                out.append(self._struct_fwd(type_id))
                out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            elif kind == _TYPEDEF:
                # Only usable through a pointer at this point, which is all a cycle needs.
                if self.name[type_id] != "__builtin_va_list":
                    self._emit_typedef_def(type_id, 0)
                    out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            return
        if depth > _MAX_WALK_DEPTH:
            raise self._error(f"type references nest deeper than {_MAX_WALK_DEPTH} levels "
                              f"at type [{type_id}] (reference loop?)")
        depth += 1
        top_level = cont_id == 0
        if kind == _INT:
            name = self._type_name(type_id)
            alias = _MISSING_BASE_TYPES.get(name)
            if alias is not None:
                out.append(f"typedef {alias} {name};\n\n")
            self.emit_state[type_id] = _EMITTED
        elif kind == _ENUM or kind == _ENUM64:
            if top_level:
                self._emit_enum_def(type_id, 0)
                out.append(";\n\n")
            self.emit_state[type_id] = _EMITTED
        elif kind in (_PTR, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG, _ARRAY):
            self._emit(self.ref[type_id], cont_id, depth)
        elif kind == _FWD:
            out.append(self._fwd_def(type_id))
            out.append(";\n\n")
            self.emit_state[type_id] = _EMITTED
        elif kind == _TYPEDEF:
            self.emit_state[type_id] = _EMITTING
            self._emit(self.ref[type_id], type_id, depth)
            if not self.fwd_emitted[type_id] and self.name[type_id] != "__builtin_va_list":
                self._emit_typedef_def(type_id, 0)
                out.append(";\n\n")
            self.emit_state[type_id] = _EMITTED
        elif kind == _STRUCT or kind == _UNION:
            self.emit_state[type_id] = _EMITTING
            named = bool(self.name[type_id])
            if top_level or not named:
                # The definition will spell out every member: declare what they need.
                new_cont = type_id if named else cont_id
                emit_state, kinds, refs = self.emit_state, self.kind, self.ref
                for m_type in self.extra[type_id][1]:
                    if emit_state[m_type] == _EMITTED:
                        continue
                    if kinds[m_type] in _SINGLE_REF_KINDS and emit_state[refs[m_type]] == _EMITTED:
                        continue  # what _emit() would conclude, one call later
                    self._emit(m_type, new_cont, depth)
            elif not self.fwd_emitted[type_id] and type_id != cont_id:
                out.append(self._struct_fwd(type_id))
                out.append(";\n\n")
                self.fwd_emitted[type_id] = 1
            if top_level:
                self._emit_struct_def(type_id, 0)
                out.append(";\n\n")
                self.emit_state[type_id] = _EMITTED
            else:
                self.emit_state[type_id] = _NOT_EMITTED
        elif kind == _FUNC_PROTO:
            self._emit(self.ref[type_id], cont_id, depth)
            emit_state = self.emit_state
            for p_type in self.extra[type_id][1]:
                if emit_state[p_type] != _EMITTED:
                    self._emit(p_type, cont_id, depth)

    # -- definitions ----------------------------------------------------------------------

    def _struct_fwd(self, type_id: int) -> str:
        keyword = "struct" if self.kind[type_id] == _STRUCT else "union"
        name = self._type_name(type_id)
        return f"{keyword} {name}" if self.name[type_id] else keyword

    def _fwd_def(self, type_id: int) -> str:
        name = self._type_name(type_id)
        return f"union {name}" if self.tab.kflag[type_id] else f"struct {name}"

    def _emit_bit_padding(self, cur: int, nxt: int, next_align: int, in_bitfield: bool,
                          lvl: int) -> None:
        """Fill the gap from bit ``cur`` to bit ``nxt`` with anonymous bitfields.

        First the widest of long/int/short/char whose alignment boundary lies
        inside the gap is picked; ``<type>: 0;`` forces that boundary when the
        compiler would not align there by itself (inside a run of bitfields the
        exact bit count is written instead); then whole ``<type>: <bits>;``
        units fill the rest, the last one with the smallest type that fits.
        """
        if cur >= nxt:
            return
        if nxt - cur > _MAX_PADDING_BITS:
            raise self._error(f"a gap of {(nxt - cur) // 8} bytes inside a struct/union "
                              "(corrupt size or offset?)")
        out = self.out
        pfx = _PFX[lvl]
        pads = self._pads
        pad_type, pad_bits = pads[-1]
        new_off = cur
        for pad_type, pad_bits in pads:
            new_off = -(-cur // pad_bits) * pad_bits
            if new_off <= nxt:
                break
        if cur < new_off <= nxt:
            if in_bitfield:
                out.append(f"\n{pfx}{pad_type}: {new_off - cur};")
            elif new_off == nxt:
                if next_align <= 0 or -(-cur // (next_align * 8)) * (next_align * 8) != new_off:
                    out.append(f"\n{pfx}{pad_type}: 0;")
            elif nxt - new_off <= new_off - cur:
                out.append(f"\n{pfx}{pad_type}: 0;")
            cur = new_off
        while cur != nxt:
            bits = min(nxt - cur, pad_bits)
            if bits == pad_bits:
                out.append(f"\n{pfx}{pad_type}: {pad_bits};")
                cur += bits
                continue
            # The remainder: the smallest type that holds it (libbpf keeps using it after).
            for pad_type, pad_bits in reversed(pads):
                if pad_bits >= bits:
                    out.append(f"\n{pfx}{pad_type}: {bits};")
                    cur += bits
                    break

    def _emit_struct_def(self, type_id: int, lvl: int) -> None:
        out = self.out
        is_struct = self.kind[type_id] == _STRUCT
        members = self.extra[type_id]
        size = self.size[type_id]
        align = self._align_of(type_id)
        packed = is_struct and self._is_struct_packed(type_id)
        name = self._type_name(type_id)
        self._check_idents(members[0], type_id)
        keyword = "struct" if is_struct else "union"
        out.append(f"{keyword} {name} {{" if self.name[type_id] else f"{keyword} {{")
        self.decl_nesting += 1
        if self.decl_nesting > _MAX_DECL_NESTING:
            raise self._error(f"anonymous types nest deeper than {_MAX_DECL_NESTING} levels "
                              f"at type [{type_id}]")
        inner = _PFX[lvl + 1]
        off = 0
        prev_bitfield = False
        kinds, names, resolved, known_sizes = self.kind, self.name, self.resolved, self._sizes
        refs = self.ref
        for m_name, m_type, m_off, m_bits in zip(*members):
            if off < m_off:
                m_align = 1 if packed else self._align_of(m_type)
                self._emit_bit_padding(off, m_off, m_align, prev_bitfield and m_bits != 0,
                                       lvl + 1)
            # The two commonest member types, a typedef and a base type, inline;
            # everything else through the general declaration writer.
            m_kind = kinds[m_type]
            if m_kind == _TYPEDEF and m_name:
                out.append(f"\n{inner}{resolved[m_type] or self._ident_name(m_type)} {m_name}")
            elif m_kind == _INT and m_name:
                out.append(f"\n{inner}{names[m_type]} {m_name}")
            elif m_kind == _PTR and m_name and kinds[refs[m_type]] == _STRUCT and names[refs[m_type]]:
                target = refs[m_type]
                out.append(f"\n{inner}struct {resolved[target] or self._type_name(target)} *{m_name}")
            else:
                out.append("\n" + inner)
                self._emit_decl(m_type, m_name, lvl + 1)
            if m_bits:
                out.append(f": {m_bits};")
                off = m_off + m_bits
                prev_bitfield = True
            else:
                out.append(";")
                m_size = known_sizes.get(m_type)
                if m_size is None:
                    m_size = self._resolve_size(m_type)
                off = m_off + m_size * 8 if m_size > 0 else m_off
                prev_bitfield = False
        if is_struct:
            self._emit_bit_padding(off, size * 8, align, False, lvl + 1)
        self.decl_nesting -= 1
        if members[0] or size:
            out.append(f"\n{_PFX[lvl]}}}")
        else:
            out.append("}")
        if packed:
            out.append(" __attribute__((packed))")

    def _emit_enum_def(self, type_id: int, lvl: int) -> None:
        out = self.out
        name = self._type_name(type_id)
        out.append(f"enum {name}" if self.name[type_id] else "enum")
        values = self.extra[type_id]
        if not values:
            return
        out.append(" {")
        pfx = _PFX[lvl + 1]
        self._check_idents([v[0] for v in values], type_id)
        is64 = self.kind[type_id] == _ENUM64
        suffix = ("LL," if self.tab.kflag[type_id] else "ULL,") if is64 else ","
        ident_names = self.ident_names
        for v_name, value, _hi in values:
            count = ident_names.get(v_name, 0) + 1
            ident_names[v_name] = count
            if count > 1:
                out.append(f"\n{pfx}{v_name}___{count} = {value}{suffix}")
            else:
                out.append(f"\n{pfx}{v_name} = {value}{suffix}")
        out.append(f"\n{_PFX[lvl]}}}")

    def _emit_typedef_def(self, type_id: int, lvl: int) -> None:
        name = self._ident_name(type_id)
        # Old GCC emitted __gnuc_va_list as a typedef of void.
        if self.ref[type_id] == 0 and name == "__gnuc_va_list":
            self.out.append("typedef __builtin_va_list __gnuc_va_list")
            return
        self.out.append("typedef ")
        self._emit_decl(self.ref[type_id], name, lvl)

    # -- declarations (btf_dump_emit_type_decl / btf_dump_emit_type_chain) ----------------

    def _emit_decl(self, type_id: int, fname: str, lvl: int) -> None:
        """Write a declaration of ``fname`` with type ``type_id`` (``fname`` may be "")."""
        kinds, refs = self.kind, self.ref
        kind = kinds[type_id]
        # Fast path for the common one-element chains: a typedef, a base type or a
        # named struct/union/enum, written as "<type> <fname>".
        if kind == _TYPEDEF:
            base = self._ident_name(type_id)
            self.out.append(f"{base} {fname}" if fname else base)
            return
        if kind == _INT or kind == _FLOAT:
            base = self.name[type_id]
            self.out.append(f"{base} {fname}" if fname else base)
            return
        if (kind == _STRUCT or kind == _UNION) and self.name[type_id]:
            base = self._struct_fwd(type_id)
            self.out.append(f"{base} {fname}" if fname else base)
            return
        if kind == _PTR:
            # "<type> *<fname>" for a pointer to void, a typedef, a base type or a
            # named struct/union.
            target = refs[type_id]
            t_kind = kinds[target]
            if target == 0:
                self.out.append("void *" + fname)
                return
            if t_kind == _TYPEDEF:
                self.out.append(f"{self._ident_name(target)} *{fname}")
                return
            if t_kind == _INT or t_kind == _FLOAT:
                self.out.append(f"{self.name[target]} *{fname}")
                return
            if (t_kind == _STRUCT or t_kind == _UNION) and self.name[target]:
                self.out.append(f"{self._struct_fwd(target)} *{fname}")
                return
        stack = [type_id]
        while type_id != 0:
            kind = kinds[type_id]
            if kind in _TERMINAL_KINDS:
                break
            if kind in _CHAIN_KINDS:
                type_id = refs[type_id]
                stack.append(type_id)
                if len(stack) > _MAX_CHAIN_LEN:
                    raise self._error(f"reference loop in the declaration of type [{stack[0]}]")
                continue
            log.warning("unexpected type in decl chain, kind:%d, id:[%d]", kind, type_id)
            break
        self.decl_nesting += 1
        if self.decl_nesting > _MAX_DECL_NESTING:
            raise self._error(f"declarations nest deeper than {_MAX_DECL_NESTING} levels "
                              f"at type [{stack[0]}]")
        self._emit_chain(stack, fname, lvl)
        self.decl_nesting -= 1

    def _emit_mods(self, decls: List[int]) -> None:
        """Qualifiers written before a base type: ``const volatile int``."""
        kinds = self.kind
        out = self.out
        while decls:
            kind = kinds[decls[-1]]
            if kind == _VOLATILE:
                out.append("volatile ")
            elif kind == _CONST:
                out.append("const ")
            elif kind == _RESTRICT:
                out.append("restrict ")
            else:
                return
            decls.pop()

    def _drop_mods(self, decls: List[int]) -> None:
        kinds = self.kind
        while decls and kinds[decls[-1]] in _MOD_KINDS:
            decls.pop()

    def _emit_name(self, fname: str, last_was_ptr: bool) -> None:
        if fname and not last_was_ptr:
            self.out.append(" " + fname)
        else:
            self.out.append(fname)

    def _emit_chain(self, decls: List[int], fname: str, lvl: int) -> None:
        """Write the declaration chain ``decls`` (innermost type last) around ``fname``."""
        kinds = self.kind
        out = self.out
        last_was_ptr = True
        while decls:
            type_id = decls.pop()
            if type_id == 0:
                self._emit_mods(decls)
                out.append("void")
                last_was_ptr = False
                continue
            kind = kinds[type_id]
            if kind == _INT or kind == _FLOAT:
                self._emit_mods(decls)
                out.append(self.name[type_id])
            elif kind == _STRUCT or kind == _UNION:
                self._emit_mods(decls)
                if self.name[type_id]:
                    out.append(self._struct_fwd(type_id))
                else:
                    self._emit_struct_def(type_id, lvl)
            elif kind == _ENUM or kind == _ENUM64:
                self._emit_mods(decls)
                if self.name[type_id]:
                    out.append("enum " + self._type_name(type_id))
                else:
                    self._emit_enum_def(type_id, lvl)
            elif kind == _FWD:
                self._emit_mods(decls)
                out.append(self._fwd_def(type_id))
            elif kind == _TYPEDEF:
                self._emit_mods(decls)
                out.append(self._ident_name(type_id))
            elif kind == _PTR:
                out.append("*" if last_was_ptr else " *")
            elif kind == _VOLATILE:
                out.append(" volatile")
            elif kind == _CONST:
                out.append(" const")
            elif kind == _RESTRICT:
                out.append(" restrict")
            elif kind == _TYPE_TAG:
                self._emit_mods(decls)
                tag = self.name[type_id]
                if not tag.isprintable() or '"' in tag or "\\" in tag:
                    raise self._error(f"type tag [{type_id}] {tag!r} cannot be written in a "
                                      "C string")
                out.append(f' __attribute__((btf_type_tag("{tag}")))')
            elif kind == _ARRAY:
                # Qualifiers on an array (a GCC quirk) mean nothing in C: drop them.
                self._drop_mods(decls)
                nelems = self.size[type_id]
                if not decls:
                    self._emit_name(fname, last_was_ptr)
                    out.append(f"[{nelems}]")
                    return
                multidim = kinds[decls[-1]] == _ARRAY
                if fname and not last_was_ptr:
                    out.append(" ")
                if not multidim:
                    out.append("(")
                self._emit_chain(decls, fname, lvl)
                if not multidim:
                    out.append(")")
                out.append(f"[{nelems}]")
                return
            elif kind == _FUNC_PROTO:
                self._drop_mods(decls)
                if decls:
                    out.append(" (")
                    self._emit_chain(decls, fname, lvl)
                    out.append(")")
                else:
                    self._emit_name(fname, last_was_ptr)
                out.append("(")
                p_names, p_types = self.extra[type_id]
                # No parameters, or clang's single void parameter: "(void)".
                if not p_types or (len(p_types) == 1 and p_types[0] == 0):
                    out.append("void)")
                    return
                last = len(p_types) - 1
                p_names = [self.tab.strings[key] for key in p_names]
                self._check_idents(p_names, type_id)
                for i, (p_name, p_type) in enumerate(zip(p_names, p_types)):
                    if i > 0:
                        out.append(", ")
                    if i == last and p_type == 0:
                        out.append("...")
                        break
                    self._emit_decl(p_type, p_name, lvl)
                out.append(")")
                return
            else:
                log.warning("unexpected type in decl chain, kind:%d, id:[%d]", kind, type_id)
                return
            last_was_ptr = kind == _PTR
        self._emit_name(fname, last_was_ptr)

    # -- btf_dump__dump_type --------------------------------------------------------------

    def dump_type(self, type_id: int) -> None:
        """Emit ``type_id`` and every definition it needs that is not out yet."""
        if self.order_state[type_id] == _ORDERED:
            return  # already handled as a dependency of an earlier type
        self.queue = []
        self._order(type_id, False, 0)
        for queued in self.queue:
            self._emit(queued, 0, 0)


def dump_c(btf: "Btf", *, root_types: Optional[Sequence[int]] = None) -> str:
    """Render ``btf`` as a compilable C header, exactly as ``bpftool btf dump file F format c``.

    With ``root_types``, only those type ids and the definitions they need
    (embedded types fully, types behind pointers as forward declarations) are
    written, in the given order; the result still compiles and keeps every
    layout.  Without, every type is visited in id order (base types included
    for split BTF), which is what bpftool does.

    Names that are not valid UTF-8 come back with ``surrogateescape``:
    ``dump_c(btf).encode("utf-8", "surrogateescape")`` gives bpftool's bytes.

    Raises :class:`~purebpf.errors.BtfError` for BTF that cannot be written as
    C (reference loops, dangling type ids, unknown kinds) and
    :class:`~purebpf.errors.NotFoundError` for a root id that does not exist.
    """
    # The dump allocates a few million small objects and frees none until the
    # end; the cyclic garbage collector would only rescan them over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _dump(btf, root_types)
    finally:
        if gc_was_enabled:
            gc.enable()


def _dump(btf: "Btf", root_types: Optional[Sequence[int]]) -> str:
    tab = _build_tables(btf)
    dumper = _CDumper(tab)
    count = len(tab)
    if root_types is None:
        ids: Sequence[int] = range(1, count)
    else:
        ids = list(root_types)
        for type_id in ids:
            if not 0 <= type_id < count:
                raise NotFoundError("type", type_id)
    order_state = dumper.order_state
    kinds, refs, extras = tab.kind, tab.ref, tab.extra
    for type_id in ids:
        if order_state[type_id] == _ORDERED:
            continue  # already out as a dependency of an earlier type
        kind = kinds[type_id]
        if kind in _NO_DECL_KINDS:
            order_state[type_id] = _ORDERED  # what ordering would conclude, minus the call
            continue
        # Shortcuts with the same outcome as ordering: a pointer, qualifier or
        # array of an already ordered type, or a prototype whose types all are,
        # queues nothing.
        if kind in _SINGLE_REF_KINDS and order_state[refs[type_id]] == _ORDERED:
            if kind == _PTR:
                order_state[type_id] = _ORDERED
            continue
        if kind == _FUNC_PROTO and order_state[refs[type_id]] == _ORDERED and all(
                order_state[p] == _ORDERED for p in extras[type_id][1]):
            continue
        dumper.dump_type(type_id)
    return HEADER + "".join(dumper.out) + FOOTER


def _main(argv: Optional[List[str]] = None) -> int:  # pragma: no cover - manual use
    """``python -m purebpf.btf.dump_c FILE [ROOT_ID...]``: print the header."""
    from purebpf.btf import Btf as _Btf

    args = sys.argv[1:] if argv is None else argv
    btf = _Btf.from_file(args[0])
    roots = [int(a) for a in args[1:]] or None
    sys.stdout.write(dump_c(btf, root_types=roots))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
