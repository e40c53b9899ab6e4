r"""Raw text dump of BTF, line for line what ``bpftool btf dump file F`` prints.

The "raw" format is bpftool's default view of BTF: one line per type,
``[ID] KIND 'name' key=value...``, followed by one tab-indented line per
member, enumerator, parameter or section variable::

    [1] INT 'unsigned int' size=4 bits_offset=0 nr_bits=32 encoding=(none)
    [2] STRUCT 'pair' size=8 vlen=2
    \t'a' type_id=1 bits_offset=0
    \t'b' type_id=1 bits_offset=32

The dump is a view of the wire format (``struct btf_type`` and the per-kind
trailers of include/uapi/linux/btf.h), so this module reads those records
directly from the BTF bytes instead of going through the decoded type model:

* bpftool prints ``(anon)`` only when ``name_off`` is 0, and prints the raw
  ``kind_flag``/encoding bits (``encoding=UNKN`` for combinations); those
  distinctions are not kept by :mod:`purebpf.btf.types`;
* vmlinux BTF has well over 100,000 types; building a Python object for each
  one only to print it would be several times slower.

:class:`WireTypes` is the small reader shared with :mod:`purebpf.btf.dump_json`.

Reference: ``dump_btf_type()`` in tools/bpf/bpftool/btf.c (bpftool 7.1).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from purebpf.errors import BtfError
from purebpf.btf.types import BtfKind

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    from purebpf.btf.btf import Btf

__all__ = ["dump_raw", "iter_raw_lines", "WireTypes", "KIND_NAMES"]

#: bpftool's ``btf_kind_str[]``: the name printed for each ``BTF_KIND_*``.
KIND_NAMES: Tuple[str, ...] = tuple(k.name if k else "UNKNOWN" for k in BtfKind)

#: Size of ``struct btf_type``: name_off, info, size/type (3 x u32).
TYPE_HEADER_SIZE = 12

#: Bytes of trailer that follow ``struct btf_type``: (fixed, per vlen entry).
#: INT has one u32; ARRAY a ``struct btf_array``; STRUCT/UNION ``btf_member[vlen]``;
#: ENUM ``btf_enum[vlen]``; ENUM64 ``btf_enum64[vlen]``; FUNC_PROTO
#: ``btf_param[vlen]``; VAR ``struct btf_var``; DATASEC ``btf_var_secinfo[vlen]``;
#: DECL_TAG ``struct btf_decl_tag``.
_TRAILER: Dict[int, Tuple[int, int]] = {
    BtfKind.INT: (4, 0),
    BtfKind.PTR: (0, 0),
    BtfKind.ARRAY: (12, 0),
    BtfKind.STRUCT: (0, 12),
    BtfKind.UNION: (0, 12),
    BtfKind.ENUM: (0, 8),
    BtfKind.FWD: (0, 0),
    BtfKind.TYPEDEF: (0, 0),
    BtfKind.VOLATILE: (0, 0),
    BtfKind.CONST: (0, 0),
    BtfKind.RESTRICT: (0, 0),
    BtfKind.FUNC: (0, 0),
    BtfKind.FUNC_PROTO: (0, 8),
    BtfKind.VAR: (4, 0),
    BtfKind.DATASEC: (0, 12),
    BtfKind.FLOAT: (0, 0),
    BtfKind.DECL_TAG: (4, 0),
    BtfKind.TYPE_TAG: (0, 0),
    BtfKind.ENUM64: (0, 12),
}

#: ``BTF_INT_ENCODING()`` values as bpftool's ``btf_int_enc_str()`` spells them.
_INT_ENCODING = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}

#: ``enum btf_func_linkage`` (FUNC vlen) and ``BTF_VAR_*`` (VAR linkage) share names.
_LINKAGE = {0: "static", 1: "global", 2: "extern"}


# Plain ints for the hot loops (comparing with IntEnum members is slower).
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD = 1, 2, 3, 4, 5, 6, 7
_FUNC, _FUNC_PROTO, _VAR, _DATASEC, _FLOAT, _DECL_TAG, _ENUM64 = 12, 13, 14, 15, 16, 17, 19
#: Kinds whose only payload is the referenced ``type``.
_REF_KINDS = frozenset({int(BtfKind.PTR), int(BtfKind.TYPEDEF), int(BtfKind.VOLATILE),
                        int(BtfKind.CONST), int(BtfKind.RESTRICT), int(BtfKind.TYPE_TAG)})
assert (_INT, _FUNC, _ENUM64) == (BtfKind.INT, BtfKind.FUNC, BtfKind.ENUM64)


def int_encoding_name(encoding: int) -> str:
    """bpftool's name for an INT encoding nibble (``UNKN`` for combinations)."""
    return _INT_ENCODING.get(encoding, "UNKN")


class _Names(Dict[int, str]):
    """``name_off`` -> printed name, filled on first use (``dict.__missing__``).

    Indexing a dict is the cheapest lookup CPython has; dumping vmlinux looks
    up some 300,000 names, so this matters.
    """

    def __init__(self, wire: "WireTypes") -> None:
        super().__init__({0: "(anon)"})
        self._wire = wire

    def __missing__(self, off: int) -> str:
        text = self._wire.string(off)
        self[off] = text
        return text


class WireTypes:
    """The type records of one :class:`~purebpf.btf.Btf`, read straight from its bytes.

    Construction makes one pass over the type section to record where each
    ``struct btf_type`` starts (``offsets``); names are decoded on demand and
    cached.  Only the types this BTF owns are indexed; for split BTF the base
    is indexed lazily, the first time a base type id or base string is needed.
    """

    def __init__(self, btf: "Btf") -> None:
        self.btf = btf
        self.file = btf.name
        #: struct format prefix for the BTF's byte order.
        self.endian = "<" if btf.byteorder == "little" else ">"
        hdr = btf.header
        raw = btf.raw
        types_start = hdr.hdr_len + hdr.type_off
        strs_start = hdr.hdr_len + hdr.str_off
        if types_start + hdr.type_len > len(raw) or strs_start + hdr.str_len > len(raw):
            raise BtfError("type or string section runs past the end of the data",
                           file=self.file, section="header", offset=0)
        #: The type section (offsets below are relative to its start).
        self.data = bytes(raw[types_start:types_start + hdr.type_len])
        #: This BTF's own string section.
        self.strings = bytes(raw[strs_start:strs_start + hdr.str_len])
        self.start_id = btf.start_id
        self._base: Optional[WireTypes] = None
        #: Split BTF: string offsets below this refer to the base's strings.
        self.str_start = 0
        if btf.base is not None:
            base = self.base
            assert base is not None
            self.str_start = base.str_start + len(base.strings)
        #: bpftool's ``btf_str()`` as a mapping: ``names[name_off]``.
        self.names: Dict[int, str] = _Names(self)
        self.offsets: List[int] = self._scan()

    @property
    def base(self) -> Optional["WireTypes"]:
        """The base BTF's records, for split BTF (built on first use)."""
        if self._base is None and self.btf.base is not None:
            self._base = WireTypes(self.btf.base)
        return self._base

    def _error(self, offset: int, reason: str, section: str = "types") -> BtfError:
        return BtfError(reason, file=self.file, section=section, offset=offset)

    def _scan(self) -> List[int]:
        """Find the start of every type record: one pass over the type section."""
        data = self.data
        end = len(data)
        header = struct.Struct(self.endian + "III")
        trailer = _TRAILER
        offsets: List[int] = []
        append = offsets.append
        off = 0
        while off < end:
            if off + TYPE_HEADER_SIZE > end:
                raise self._error(off, "truncated struct btf_type")
            info = header.unpack_from(data, off)[1]
            kind = (info >> 24) & 0x1F
            sizes = trailer.get(kind)
            if sizes is None:
                raise self._error(off, f"unknown BTF kind {kind}")
            append(off)
            off += TYPE_HEADER_SIZE + sizes[0] + sizes[1] * (info & 0xFFFF)
        if off != end:
            raise self._error(len(offsets) and offsets[-1], "last type's trailer runs past the type section")
        return offsets

    def __len__(self) -> int:
        """Number of types this BTF owns (not counting void or base types)."""
        return len(self.offsets)

    def type_count(self) -> int:
        """libbpf's ``btf__type_cnt()``: last valid id + 1, base types included."""
        return self.start_id + len(self.offsets)

    def string(self, off: int) -> str:
        """The NUL-terminated string at ``off`` (split-BTF aware).

        Bytes that are not UTF-8 are kept with ``surrogateescape``, so encoding
        the dump with that handler gives back exactly the bytes bpftool prints.
        Not cached: :attr:`names` is the cache.
        """
        if off < self.str_start:
            base = self.base
            assert base is not None
            text = base.string(off)
        else:
            local = off - self.str_start
            strings = self.strings
            nul = strings.find(b"\0", local)
            if local >= len(strings) or nul < 0:
                raise self._error(local, f"name offset {off} is past the end of the strings "
                                  "or unterminated", section="strings")
            text = strings[local:nul].decode("utf-8", "surrogateescape")
        return text

    def name(self, off: int) -> str:
        """bpftool's ``btf_str()``: ``(anon)`` for name offset 0, else the string."""
        return self.names[off]

    def kind_and_name_off(self, type_id: int) -> Tuple[int, int]:
        """``(kind, name_off)`` of any type id valid in this BTF (base included; 0 is void)."""
        if type_id == 0:
            return 0, 0
        if type_id < self.start_id:
            base = self.base
            assert base is not None
            return base.kind_and_name_off(type_id)
        off = self.offsets[type_id - self.start_id]
        name_off, info = struct.unpack_from(self.endian + "II", self.data, off)
        return (int(info) >> 24) & 0x1F, int(name_off)


def iter_raw_lines(btf: "Btf", wire: Optional[WireTypes] = None) -> Iterator[str]:
    """Yield the dump one type at a time (each item may span several lines, no final newline).

    Types are those this BTF owns, in id order, with their absolute ids: for
    split BTF the base's types are not repeated, as bpftool does.
    """
    w = wire if wire is not None else WireTypes(btf)
    data = w.data
    e = w.endian
    u32x3 = struct.Struct(e + "III")
    u32 = struct.Struct(e + "I")
    i32 = struct.Struct(e + "i")
    pair = struct.Struct(e + "Ii")     # struct btf_enum: name_off, val
    pair_u = struct.Struct(e + "II")   # struct btf_param / enum value read unsigned
    names = w.names
    type_cnt = w.type_count()
    kind_names = KIND_NAMES

    linkage_names = _LINKAGE
    type_id = w.start_id
    # Branches are ordered by how common each kind is in vmlinux (FUNC first).
    for off in w.offsets:
        name_off, info, size_or_type = u32x3.unpack_from(data, off)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        head = f"[{type_id}] {kind_names[kind]} '{names[name_off]}'"
        t = off + TYPE_HEADER_SIZE
        type_id += 1
        if kind == _FUNC:
            yield f"{head} type_id={size_or_type} linkage={linkage_names.get(vlen, '(unknown)')}"
        elif kind == _FUNC_PROTO:
            parts = [f"{head} ret_type_id={size_or_type} vlen={vlen}"]
            for p_name, p_type in pair_u.iter_unpack(data[t:t + 8 * vlen]):
                parts.append(f"\t'{names[p_name]}' type_id={p_type}")
            yield "\n".join(parts)
        elif kind in _REF_KINDS:
            yield f"{head} type_id={size_or_type}"
        elif kind == _STRUCT or kind == _UNION:
            parts = [f"{head} size={size_or_type} vlen={vlen}"]
            if info >> 31:  # kind_flag: bitfield size in the top 8 bits of offset
                for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                    line = f"\t'{names[m_name]}' type_id={m_type} bits_offset={m_off & 0xFFFFFF}"
                    if m_off >> 24:
                        line += f" bitfield_size={m_off >> 24}"
                    parts.append(line)
            else:
                for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                    parts.append(f"\t'{names[m_name]}' type_id={m_type} bits_offset={m_off}")
            yield "\n".join(parts)
        elif kind == _ARRAY:
            elem, index, nelems = u32x3.unpack_from(data, t)
            yield f"{head} type_id={elem} index_type_id={index} nr_elems={nelems}"
        elif kind == _ENUM:
            signed = info >> 31
            parts = [f"{head} encoding={'SIGNED' if signed else 'UNSIGNED'} "
                     f"size={size_or_type} vlen={vlen}"]
            # struct btf_enum { __u32 name_off; __s32 val; }: printed %d or %u.
            for v_name, val in (pair if signed else pair_u).iter_unpack(data[t:t + 8 * vlen]):
                parts.append(f"\t'{names[v_name]}' val={val}")
            yield "\n".join(parts)
        elif kind == _VAR:
            linkage = u32.unpack_from(data, t)[0]
            yield f"{head} type_id={size_or_type}, linkage={linkage_names.get(linkage, '(unknown)')}"
        elif kind == _INT:
            v = u32.unpack_from(data, t)[0]
            yield (f"{head} size={size_or_type} bits_offset={(v >> 16) & 0xFF} "
                   f"nr_bits={v & 0xFF} encoding={int_encoding_name((v >> 24) & 0x0F)}")
        elif kind == _DECL_TAG:
            idx = i32.unpack_from(data, t)[0]
            yield f"{head} type_id={size_or_type} component_idx={idx}"
        elif kind == _FWD:
            yield f"{head} fwd_kind={'union' if info >> 31 else 'struct'}"
        elif kind == _ENUM64:
            signed = info >> 31
            parts = [f"{head} encoding={'SIGNED' if signed else 'UNSIGNED'} "
                     f"size={size_or_type} vlen={vlen}"]
            # struct btf_enum64 { name_off; val_lo32; val_hi32; }: printed %lldLL or %lluULL.
            for v_name, lo, hi in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                val = (hi << 32) | lo
                if signed:
                    if val >= 1 << 63:
                        val -= 1 << 64
                    parts.append(f"\t'{names[v_name]}' val={val}LL")
                else:
                    parts.append(f"\t'{names[v_name]}' val={val}ULL")
            yield "\n".join(parts)
        elif kind == _DATASEC:
            parts = [f"{head} size={size_or_type} vlen={vlen}"]
            for v_type, v_off, v_size in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                line = f"\ttype_id={v_type} offset={v_off} size={v_size}"
                if v_type < type_cnt:  # bpftool names the variable when the id is valid
                    vkind, vname = w.kind_and_name_off(v_type)
                    line += f" ({kind_names[vkind]} '{names[vname]}')"
                parts.append(line)
            yield "\n".join(parts)
        elif kind == _FLOAT:
            yield f"{head} size={size_or_type}"
        else:  # pragma: no cover - WireTypes rejects unknown kinds while scanning
            yield head


def dump_raw(btf: "Btf") -> str:
    """The whole raw dump as one string, ending with a newline (empty for no types).

    ``dump_raw(btf).encode("utf-8", "surrogateescape")`` equals the output of
    ``bpftool btf dump file FILE`` byte for byte.
    """
    lines = list(iter_raw_lines(btf))
    if not lines:
        return ""
    lines.append("")
    return "\n".join(lines)
