"""Reading BTF: the :class:`Btf` type table.

BTF (include/uapi/linux/btf.h, Documentation/bpf/btf.rst) is a small header
followed by a *type section* (``struct btf_type`` records with per-kind
trailers; the first record is type id 1, id 0 is ``void``) and a *string
section* (NUL-terminated names, offset 0 is the empty string)::

    struct btf_header {
        __u16   magic;      /* 0xeB9F */
        __u8    version;    /* 1 */
        __u8    flags;
        __u32   hdr_len;
        __u32   type_off;   /* offset of type section, after the header */
        __u32   type_len;
        __u32   str_off;    /* offset of string section, after the header */
        __u32   str_len;
    };

This reader is lazy: opening a BTF blob only checks the header and computes
where every type starts (see :mod:`purebpf.btf._offsets`).  A type is decoded
into a :mod:`purebpf.btf.types` object the first time ``btf[type_id]`` asks
for it.  Names are found by scanning the string section and the column of
type ``name_off`` words, then, after many lookups, through a hash index
(:mod:`purebpf.btf._names`); kernel BTF loads the offsets and the index from
the on-disk cache of :mod:`purebpf.btf.cache` when it can.

*Split BTF* (kernel modules) continues a base BTF: its first type id is the
base's ``len()``, and string offsets at or above the base's total string size
refer to the split BTF's own string section.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Set, Union

from purebpf.btf import _offsets
from purebpf.btf.types import (
    VOID,
    Array,
    BtfKind,
    BtfType,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncLinkage,
    FuncParam,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Member,
    Ptr,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Var,
    VarLinkage,
    VarSecinfo,
    Volatile,
)
from purebpf.btf.types import Union as UnionType
from purebpf.errors import BtfError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf._names import NameIndex

__all__ = ["Btf", "BtfHeader", "BTF_MAGIC", "VMLINUX_PATH", "KERNEL_BTF_DIR"]

#: ``BTF_MAGIC`` from include/uapi/linux/btf.h.
BTF_MAGIC = 0xEB9F
#: ``BTF_VERSION``.
BTF_VERSION = 1
#: Where the running kernel exposes its BTF.
KERNEL_BTF_DIR = "/sys/kernel/btf"
VMLINUX_PATH = KERNEL_BTF_DIR + "/vmlinux"

_HEADER_SIZE = 24
# Bound on typedef/const/... chains and nested declarators.  Real chains are a
# handful of links; anything longer is a loop in malformed input.
_MAX_CHAIN = 256
# libbpf's MAX_RESOLVE_DEPTH for btf__resolve_size.
_MAX_RESOLVE_DEPTH = 32
_POINTER_SIZE = 8
# Types visited to spell one type name (a struct member's type is a handful).
_MAX_NAME_NODES = 4096
# Name lookups answered by scanning before the hash index is worth building.
_SCANS_BEFORE_INDEX = 64
_U32_MAX = 0xFFFFFFFF

# Kinds whose kind_flag bit has a meaning (struct/union bitfield encoding,
# signed enums, union forward declarations, attribute-style tags).
_KIND_FLAG_OK = frozenset({BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64,
                           BtfKind.FWD, BtfKind.DECL_TAG, BtfKind.TYPE_TAG})
# Kinds whose vlen must be zero (FUNC keeps its linkage there).
_NO_VLEN = frozenset({BtfKind.INT, BtfKind.PTR, BtfKind.ARRAY, BtfKind.FWD, BtfKind.TYPEDEF,
                      BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.VAR,
                      BtfKind.FLOAT, BtfKind.DECL_TAG, BtfKind.TYPE_TAG})
_QUALIFIERS = frozenset({BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
_MODIFIERS = _QUALIFIERS | {BtfKind.TYPEDEF}

_vmlinux_cache: Dict[str, "Btf"] = {}


@dataclass(frozen=True)
class BtfHeader:
    """``struct btf_header``; offsets are relative to the end of the header."""

    magic: int
    version: int
    flags: int
    hdr_len: int
    type_off: int
    type_len: int
    str_off: int
    str_len: int


def _s32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


class Btf:
    """A BTF type table (a raw ``.BTF`` blob, optionally split on a base).

    Build it with :meth:`from_bytes`, :meth:`from_file`, :meth:`load_vmlinux`
    or :meth:`load_kernel_module`.  Types are addressed by id: ``btf[id]``.
    """

    name: str
    byteorder: str
    header: BtfHeader
    base: Optional["Btf"]
    start_id: int
    raw: bytes
    _str_total: int

    def __init__(self, data: bytes, *, base: Optional["Btf"] = None, name: str = "<bytes>",
                 use_cache: bool = False) -> None:
        """Open ``data`` (prefer the named constructors).

        With ``use_cache`` the offset table and name index are read from (or
        written to) the on-disk cache of :mod:`purebpf.btf.cache`.
        """
        self.name = name
        self.raw = data
        self.base = base
        self.start_id = len(base) if base is not None else 1
        self.byteorder, self.header = self._parse_header(data)
        hdr = self.header
        self._type_start = hdr.hdr_len + hdr.type_off
        self._str_start = hdr.hdr_len + hdr.str_off
        self._str_end = self._str_start + hdr.str_len
        self._base_str_total = base._str_total if base is not None else 0
        self._str_total = self._base_str_total + hdr.str_len
        self._words = self._word_view(data, self._type_start, hdr.type_len, self.byteorder)
        self._types: Dict[int, BtfType] = {}
        self._strings: Dict[int, str] = {}
        self._name_offs: Optional["array[int]"] = None
        self._name_index: Optional["NameIndex"] = None
        self._name_bytes: Optional[bytes] = None
        self._name_set: Set[int] = set()
        self._scans = 0
        self._align_memo: Dict[int, int] = {}
        self._align_active: Set[int] = set()
        self._key: Optional[bytes] = None
        offsets: Optional["array[int]"] = None
        cache_key: Optional[bytes] = None
        if use_cache:
            from purebpf.btf import cache

            # The name index of a split BTF also depends on its base's strings.
            cache_key = cache.key_for(data, base=base._content_key() if base is not None else b"")
            self._key = cache_key
            loaded = cache.load(cache_key, type_len=hdr.type_len)
            if loaded is not None:
                offsets, self._name_offs, self._name_index = loaded
        if offsets is None:
            offsets = _offsets.type_offsets(self._words, file=name, base_offset=self._type_start,
                                            first_id=self.start_id)
        self._offsets = offsets
        if cache_key is not None and self._name_index is None:
            from purebpf.btf import cache

            self._name_index = self._build_name_index()
            cache.store(cache_key, offsets, self._name_column(), self._name_index,
                        type_len=hdr.type_len)

    def _content_key(self) -> bytes:
        """The cache key of this BTF's bytes (and its base's), computed once."""
        if self._key is None:
            from purebpf.btf import cache

            self._key = cache.key_for(self.raw, base=self.base._content_key()
                                      if self.base is not None else b"")
        return self._key

    # ------------------------------------------------------------------ opening

    @classmethod
    def from_bytes(cls, data: bytes, *, base: Optional["Btf"] = None, name: str = "<bytes>") -> "Btf":
        """Parse raw BTF bytes (magic ``0xeB9F`` in either byte order)."""
        return cls(bytes(data), base=base, name=name)

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"], *, base: Optional["Btf"] = None) -> "Btf":
        """Read a raw BTF file, or the ``.BTF`` section of an ELF file."""
        fname = os.fspath(path)
        try:
            with open(fname, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BtfError(f"cannot read: {exc.strerror or exc}", file=fname) from exc
        if data[:4] == b"\x7fELF":
            data = _elf_btf_section(data, fname)
        return cls(data, base=base, name=fname)

    @classmethod
    def load_vmlinux(cls) -> "Btf":
        """The running kernel's BTF (``/sys/kernel/btf/vmlinux``), cached per process.

        The offset table and name index come from the on-disk cache when
        available (see :mod:`purebpf.btf.cache`).
        """
        cached = _vmlinux_cache.get(VMLINUX_PATH)
        if cached is None:
            cached = cls._open_kernel(VMLINUX_PATH, base=None)
            _vmlinux_cache[VMLINUX_PATH] = cached
        return cached

    @classmethod
    def load_kernel_module(cls, name: str) -> "Btf":
        """A kernel module's split BTF (``/sys/kernel/btf/NAME``) on top of vmlinux."""
        if not name or "/" in name or name in (".", ".."):
            raise NotFoundError("kernel module BTF", name)
        path = os.path.join(KERNEL_BTF_DIR, name)
        if not os.path.exists(path):
            raise NotFoundError("kernel module BTF", name)
        return cls._open_kernel(path, base=cls.load_vmlinux())

    @classmethod
    def _open_kernel(cls, path: str, *, base: Optional["Btf"]) -> "Btf":
        from purebpf.btf import cache

        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BtfError(f"cannot read: {exc.strerror or exc}", file=path) from exc
        return cls(data, base=base, name=path, use_cache=cache.enabled())

    def _parse_header(self, data: bytes) -> "tuple[str, BtfHeader]":
        if len(data) < 8:
            raise BtfError(f"BTF header cut short: {len(data)} bytes", file=self.name,
                           section="header", offset=0)
        if data[0:2] == b"\x9f\xeb":
            order, fmt = "little", "<"
        elif data[0:2] == b"\xeb\x9f":
            order, fmt = "big", ">"
        else:
            raise BtfError(f"bad magic {data[0:2].hex()} (want 0xeb9f)", file=self.name,
                           section="header", offset=0)
        magic, version, flags, hdr_len = struct.unpack_from(fmt + "HBBI", data, 0)
        if version != BTF_VERSION:
            raise BtfError(f"unsupported BTF version {version}", file=self.name, section="header",
                           offset=2)
        if hdr_len < _HEADER_SIZE:
            raise BtfError(f"hdr_len {hdr_len} smaller than struct btf_header ({_HEADER_SIZE})",
                           file=self.name, section="header", offset=4)
        if hdr_len > len(data):
            raise BtfError(f"hdr_len {hdr_len} past the end of the data ({len(data)} bytes)",
                           file=self.name, section="header", offset=4)
        if any(data[_HEADER_SIZE:hdr_len]):
            raise BtfError("unknown non-zero fields in the extended header", file=self.name,
                           section="header", offset=_HEADER_SIZE)
        type_off, type_len, str_off, str_len = struct.unpack_from(fmt + "IIII", data, 8)
        hdr = BtfHeader(magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)
        body = len(data) - hdr_len
        if type_off % 4:
            raise BtfError(f"type section offset {type_off} not 4-byte aligned", file=self.name,
                           section="header", offset=8)
        if type_len % 4:
            raise BtfError(f"type section length {type_len} not a multiple of 4", file=self.name,
                           section="header", offset=12)
        if type_off + type_len > body:
            raise BtfError(f"type section [{type_off}, {type_off + type_len}) past the end of the "
                           f"data ({body} bytes after the header)", file=self.name,
                           section="header", offset=8)
        if str_off + str_len > body:
            raise BtfError(f"string section [{str_off}, {str_off + str_len}) past the end of the "
                           f"data ({body} bytes after the header)", file=self.name,
                           section="header", offset=16)
        if type_off < str_off + str_len and str_off < type_off + type_len:
            raise BtfError("type and string sections overlap", file=self.name, section="header",
                           offset=8)
        strs = data[hdr_len + str_off:hdr_len + str_off + str_len]
        if self.base is None and (not strs or strs[0] != 0):
            raise BtfError("string section must start with the empty string", file=self.name,
                           section="strings", offset=hdr_len + str_off)
        if strs and strs[-1] != 0:
            raise BtfError("string section does not end with NUL", file=self.name,
                           section="strings", offset=hdr_len + str_off + str_len - 1)
        return order, hdr

    @staticmethod
    def _word_view(data: bytes, start: int, length: int, order: str) -> Sequence[int]:
        """The type section as host-order u32 words (zero-copy when possible)."""
        if order == sys.byteorder and start % 4 == 0:
            return memoryview(data)[start:start + length].cast("I")
        words = array("I")
        words.frombytes(data[start:start + length])
        if order != sys.byteorder:
            words.byteswap()
        return words

    # ------------------------------------------------------------ container API

    def __len__(self) -> int:
        """Last valid type id + 1 (void and base types included)."""
        return self.start_id + len(self._offsets)

    def ids(self) -> range:
        """The type ids this BTF owns (not its base's)."""
        return range(self.start_id, len(self))

    def __iter__(self) -> Iterator[BtfType]:
        """This BTF's own types in id order (each decoded and cached)."""
        for type_id in self.ids():
            yield self[type_id]

    def __getitem__(self, type_id: int) -> BtfType:
        t = self._types.get(type_id)
        if t is not None:
            return t
        if type_id == 0:
            return VOID
        if type_id < self.start_id:
            if self.base is None or type_id < 0:
                raise NotFoundError("type", type_id)
            return self.base[type_id]
        index = type_id - self.start_id
        if index >= len(self._offsets):
            raise NotFoundError("type", type_id)
        offset = self._offsets[index]
        try:
            t = self._decode(type_id, offset)
        except IndexError as exc:  # only with a tampered cache file: the pass checks bounds
            raise self._error(type_id, offset, "type runs past the type section") from exc
        self._types[type_id] = t
        return t

    def __repr__(self) -> str:
        return f"<Btf {self.name!r} types {self.start_id}..{len(self) - 1} {self.byteorder}-endian>"

    # ----------------------------------------------------------------- strings

    def string_at(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` in the string section."""
        s = self._strings.get(offset)
        if s is not None:
            return s
        if offset < self._base_str_total:
            assert self.base is not None
            return self.base.string_at(offset)
        local = offset - self._base_str_total
        if local < 0 or local >= self.header.str_len:
            raise BtfError(f"string offset {offset} past the end of the string section",
                           file=self.name, section="strings", offset=self._str_start + max(local, 0))
        start = self._str_start + local
        end = self.raw.find(b"\0", start, self._str_end)
        if end < 0:
            raise BtfError(f"unterminated string at offset {offset}", file=self.name,
                           section="strings", offset=start)
        s = self.raw[start:end].decode("utf-8", "replace")
        self._strings[offset] = s
        return s

    # ---------------------------------------------------------------- decoding

    def _error(self, type_id: int, word: int, reason: str) -> BtfError:
        return BtfError(f"type [{type_id}]: {reason}", file=self.name, section="types",
                        offset=self._type_start + 4 * word)

    def _decode(self, type_id: int, o: int) -> BtfType:
        w = self._words
        name_off, info, size_or_type = w[o], w[o + 1], w[o + 2]
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        try:
            name = self.string_at(name_off)
        except BtfError as exc:
            raise self._error(type_id, o, f"name: {exc.reason}") from exc
        k = BtfKind(kind)  # the offset pass rejected unknown kinds
        if kflag and k not in _KIND_FLAG_OK:
            raise self._error(type_id, o, f"kind_flag set on {k.name}")
        if vlen and k in _NO_VLEN:
            raise self._error(type_id, o, f"vlen {vlen} on {k.name}")
        p = o + 3  # first trailer word
        if k is BtfKind.INT:
            t = w[p]
            return Int(type_id, name, size=size_or_type, encoding=IntEncoding((t >> 24) & 0xF),
                       offset=(t >> 16) & 0xFF, bits=t & 0xFF)
        if k is BtfKind.PTR:
            return Ptr(type_id, name, type=size_or_type)
        if k is BtfKind.ARRAY:
            return Array(type_id, name, type=w[p], index_type=w[p + 1], nelems=w[p + 2])
        if k is BtfKind.STRUCT or k is BtfKind.UNION:
            members = []
            for i in range(vlen):
                m = p + 3 * i
                off = w[m + 2]
                if kflag:
                    bit_offset, bitfield_size = off & 0xFFFFFF, off >> 24
                else:
                    bit_offset, bitfield_size = off, 0
                members.append(Member(self._member_name(type_id, m, w[m]), w[m + 1], bit_offset,
                                      bitfield_size))
            cls = Struct if k is BtfKind.STRUCT else UnionType
            return cls(type_id, name, size=size_or_type, members=tuple(members), kind_flag=kflag)
        if k is BtfKind.ENUM:
            values = []
            for i in range(vlen):
                m = p + 2 * i
                v = w[m + 1]
                values.append(EnumValue(self._member_name(type_id, m, w[m]), _s32(v) if kflag else v))
            return Enum(type_id, name, size=size_or_type, values=tuple(values), signed=kflag)
        if k is BtfKind.ENUM64:
            values = []
            for i in range(vlen):
                m = p + 3 * i
                v = w[m + 1] | (w[m + 2] << 32)
                if kflag and v >> 63:
                    v -= 1 << 64
                values.append(EnumValue(self._member_name(type_id, m, w[m]), v))
            return Enum64(type_id, name, size=size_or_type, values=tuple(values), signed=kflag)
        if k is BtfKind.FWD:
            return Fwd(type_id, name, is_union=kflag)
        if k is BtfKind.TYPEDEF:
            return Typedef(type_id, name, type=size_or_type)
        if k is BtfKind.VOLATILE:
            return Volatile(type_id, name, type=size_or_type)
        if k is BtfKind.CONST:
            return Const(type_id, name, type=size_or_type)
        if k is BtfKind.RESTRICT:
            return Restrict(type_id, name, type=size_or_type)
        if k is BtfKind.FUNC:
            if vlen > FuncLinkage.EXTERN:
                raise self._error(type_id, o, f"unknown function linkage {vlen}")
            return Func(type_id, name, type=size_or_type, linkage=FuncLinkage(vlen))
        if k is BtfKind.FUNC_PROTO:
            params = tuple(FuncParam(self._member_name(type_id, p + 2 * i, w[p + 2 * i]),
                                     w[p + 2 * i + 1]) for i in range(vlen))
            return FuncProto(type_id, name, return_type=size_or_type, params=params)
        if k is BtfKind.VAR:
            linkage = w[p]
            if linkage > VarLinkage.GLOBAL_EXTERN:
                raise self._error(type_id, o, f"unknown variable linkage {linkage}")
            return Var(type_id, name, type=size_or_type, linkage=VarLinkage(linkage))
        if k is BtfKind.DATASEC:
            secinfos = tuple(VarSecinfo(w[p + 3 * i], w[p + 3 * i + 1], w[p + 3 * i + 2])
                             for i in range(vlen))
            return Datasec(type_id, name, size=size_or_type, vars=secinfos)
        if k is BtfKind.FLOAT:
            return Float(type_id, name, size=size_or_type)
        if k is BtfKind.DECL_TAG:
            return DeclTag(type_id, name, type=size_or_type, component_idx=_s32(w[p]))
        if k is BtfKind.TYPE_TAG:
            return TypeTag(type_id, name, type=size_or_type)
        raise self._error(type_id, o, f"unknown BTF kind {kind}")  # pragma: no cover

    def _member_name(self, type_id: int, word: int, name_off: int) -> str:
        try:
            return self.string_at(name_off)
        except BtfError as exc:
            raise self._error(type_id, word, f"member name: {exc.reason}") from exc

    # --------------------------------------------------------------- name index

    def kind_of(self, type_id: int) -> BtfKind:
        """The kind of ``type_id`` without decoding the whole type."""
        if type_id == 0:
            return BtfKind.UNKN
        if type_id < self.start_id:
            if self.base is None or type_id < 0:
                raise NotFoundError("type", type_id)
            return self.base.kind_of(type_id)
        index = type_id - self.start_id
        if index >= len(self._offsets):
            raise NotFoundError("type", type_id)
        try:
            return BtfKind((self._words[self._offsets[index] + 1] >> 24) & 0x1F)
        except (IndexError, ValueError) as exc:  # only with a tampered cache file
            raise self._error(type_id, self._offsets[index], "bad type header") from exc

    def _name_column(self) -> "array[int]":
        """``name_off`` of every own type, in id order (host order u32)."""
        if self._name_offs is None:
            self._name_offs = array("I", map(self._words.__getitem__, self._offsets))
        return self._name_offs

    def _build_name_index(self) -> "NameIndex":
        from purebpf.btf._names import NameIndex

        return NameIndex.build(self._name_column(), self)

    def _raw_string(self, offset: int) -> bytes:
        """The undecoded bytes of the string at ``offset`` (base strings included)."""
        if offset < self._base_str_total:
            assert self.base is not None
            return self.base._raw_string(offset)
        local = offset - self._base_str_total
        if local >= self.header.str_len:
            raise BtfError(f"string offset {offset} past the end of the string section",
                           file=self.name, section="strings", offset=self._str_start + local)
        start = self._str_start + local
        end = self.raw.find(b"\0", start, self._str_end)
        if end < 0:
            raise BtfError(f"unterminated string at offset {offset}", file=self.name,
                           section="strings", offset=start)
        return self.raw[start:end]

    def find_by_name(self, name: str, kind: Optional[BtfKind] = None) -> List[int]:
        """All type ids (base included, ascending) named exactly ``name``, of ``kind`` if given.

        Without a cached name index, the first lookups scan the string section
        (about a millisecond on vmlinux, nothing to build); after
        ``_SCANS_BEFORE_INDEX`` of them the hash index is built once.
        """
        found: List[int] = []
        if self.base is not None:
            found.extend(self.base.find_by_name(name, kind))
        wanted = name.encode("utf-8", "surrogateescape")
        if b"\0" in wanted:  # BTF names are NUL-terminated: none contains NUL
            return found
        index = self._name_index
        if index is None and self._scans >= _SCANS_BEFORE_INDEX:
            index = self._name_index = self._build_name_index()
        if index is not None:
            own_indexes = index.lookup(wanted, self, self._name_column())
        else:
            from purebpf.btf._names import scan_lookup

            self._scans += 1
            if self._name_bytes is None:
                if self._name_offs is None:
                    # One tuple feeds both the column and the set (a set built
                    # from a tuple reuses its int objects: twice as fast).
                    values = tuple(map(self._words.__getitem__, self._offsets))
                    self._name_offs = array("I", values)
                    self._name_set = set(values)
                else:
                    self._name_set = set(self._name_offs)
                self._name_bytes = self._name_offs.tobytes()
            own_indexes = scan_lookup(self, wanted, self._name_bytes, self._name_set)
        start = self.start_id
        own = [start + i for i in own_indexes]
        if kind is not None:
            own = [i for i in own if self.kind_of(i) == kind]
        found.extend(own)
        return found

    def find(self, name: str, kind: Optional[BtfKind] = None) -> BtfType:
        """The type named ``name`` (of ``kind``); the lowest id when there are several."""
        ids = self.find_by_name(name, kind)
        if not ids:
            what = f"{kind.name.lower()} type" if kind is not None else "type"
            raise NotFoundError(what, name)
        return self[ids[0]]

    # ---------------------------------------------------------------- walking

    def _loop_error(self, type_id: int, what: str) -> BtfError:
        return BtfError(f"type [{type_id}]: {what} does not end (loop or chain too long)",
                        file=self.name, section="types")

    def _ref(self, type_id: int, referrer: int) -> BtfType:
        try:
            return self[type_id]
        except NotFoundError:
            raise BtfError(f"type [{referrer}] refers to missing type [{type_id}]", file=self.name,
                           section="types") from None

    def skip_modifiers(self, type_id: int) -> int:
        """Follow typedef/volatile/const/restrict/type_tag links to the underlying type id."""
        start = type_id
        for _ in range(_MAX_CHAIN):
            t = self[type_id] if type_id == start else self._ref(type_id, start)
            if t.kind not in _MODIFIERS:
                return type_id
            type_id = t.type  # type: ignore[union-attr]
        raise self._loop_error(start, "modifier chain")

    def skip_qualifiers(self, type_id: int) -> int:
        """Follow volatile/const/restrict/type_tag links (typedefs are kept)."""
        start = type_id
        for _ in range(_MAX_CHAIN):
            t = self[type_id] if type_id == start else self._ref(type_id, start)
            if t.kind not in _QUALIFIERS:
                return type_id
            type_id = t.type  # type: ignore[union-attr]
        raise self._loop_error(start, "qualifier chain")

    def size_of(self, type_id: int) -> int:
        """Size in bytes, with libbpf ``btf__resolve_size`` semantics.

        Arrays multiply, pointers are 8 bytes, modifiers/vars/decl tags are
        followed; void, functions and forward declarations have no size.
        """
        start = type_id
        nelems = 1
        for _ in range(_MAX_RESOLVE_DEPTH):
            t = self[type_id] if type_id == start else self._ref(type_id, start)
            k = t.kind
            if k in (BtfKind.INT, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64,
                     BtfKind.DATASEC, BtfKind.FLOAT):
                size: int = t.size  # type: ignore[union-attr]
                break
            if k is BtfKind.PTR:
                size = _POINTER_SIZE
                break
            if k in _MODIFIERS or k in (BtfKind.VAR, BtfKind.DECL_TAG):
                type_id = t.type  # type: ignore[union-attr]
                continue
            if k is BtfKind.ARRAY:
                assert isinstance(t, Array)
                if t.nelems and _U32_MAX // t.nelems < nelems:
                    raise BtfError(f"type [{start}]: array size overflows 32 bits",
                                   file=self.name, section="types")
                nelems *= t.nelems
                type_id = t.type
                continue
            raise BtfError(f"type [{start}]: {k.name} has no size", file=self.name, section="types")
        else:
            raise self._loop_error(start, "size resolution")
        if nelems and _U32_MAX // nelems < size:
            raise BtfError(f"type [{start}]: size overflows 32 bits", file=self.name, section="types")
        return nelems * size

    def align_of(self, type_id: int) -> int:
        """Alignment in bytes, with libbpf ``btf__align_of`` semantics.

        Structs/unions whose members are not naturally aligned (or whose size
        is not a multiple of their alignment) are packed: alignment 1.
        """
        return self._align_of(type_id, 0)

    def _align_of(self, type_id: int, depth: int) -> int:
        memo = self._align_memo.get(type_id)
        if memo is not None:
            return memo
        if depth > _MAX_CHAIN or type_id in self._align_active:
            raise self._loop_error(type_id, "alignment resolution")
        self._align_active.add(type_id)
        try:
            result = self._align_uncached(type_id, depth)
        finally:
            self._align_active.discard(type_id)
        self._align_memo[type_id] = result
        return result

    def _align_uncached(self, type_id: int, depth: int) -> int:
        t = self[type_id]
        k = t.kind
        if k in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FLOAT):
            result = min(_POINTER_SIZE, t.size)  # type: ignore[union-attr]
            if result == 0:
                raise BtfError(f"type [{type_id}]: {k.name} of size 0 has no alignment",
                               file=self.name, section="types")
        elif k is BtfKind.PTR:
            result = _POINTER_SIZE
        elif k in _MODIFIERS:
            result = self._align_of(self._checked(t.type, type_id), depth + 1)  # type: ignore[union-attr]
        elif k is BtfKind.ARRAY:
            assert isinstance(t, Array)
            result = self._align_of(self._checked(t.type, type_id), depth + 1)
        elif isinstance(t, (Struct, UnionType)):
            result = 1
            for m in t.members:
                align = self._align_of(self._checked(m.type, type_id), depth + 1)
                result = max(result, align)
                if m.bitfield_size == 0 and m.bit_offset % (8 * align):
                    result = 1
                    break
            else:
                if t.size % result:
                    result = 1
        else:
            raise BtfError(f"type [{type_id}]: {k.name} has no alignment", file=self.name,
                           section="types")
        return result

    def _checked(self, type_id: int, referrer: int) -> int:
        if not 0 <= type_id < len(self):
            raise BtfError(f"type [{referrer}] refers to missing type [{type_id}]", file=self.name,
                           section="types")
        return type_id

    def type_name(self, type_id: int) -> str:
        """A readable C spelling: ``struct task_struct``, ``char[16]``, ``int (*)(void *)``."""
        return self._declare(type_id, "", 0, type_id, [_MAX_NAME_NODES])

    def _declare(self, type_id: int, inner: str, depth: int, parent: int, budget: List[int]) -> str:
        """Spell ``type_id`` around the declarator ``inner`` (C's inside-out syntax).

        ``budget`` counts the types visited: function prototypes branch, so a
        malicious prototype listing itself twice would otherwise take
        exponential time before reaching the depth limit.
        """
        budget[0] -= 1
        if budget[0] < 0:
            raise BtfError(f"type [{parent}]: type name too complex (over {_MAX_NAME_NODES} "
                           "types, or a loop)", file=self.name, section="types")
        if depth > _MAX_CHAIN:
            raise self._loop_error(type_id, "declarator")
        t = self[type_id] if depth == 0 else self._ref(type_id, parent)
        k = t.kind

        def spaced(base: str) -> str:
            if not inner:
                return base
            return base + inner if inner.startswith("[") else base + " " + inner

        if k is BtfKind.UNKN:
            return spaced("void")
        if k in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FWD):
            if k is BtfKind.FWD:
                word = "union" if t.is_union else "struct"  # type: ignore[union-attr]
            elif k is BtfKind.ENUM64:
                word = "enum"
            else:
                word = k.name.lower()
            return spaced(f"{word} {t.name or '(anon)'}")
        if k is BtfKind.PTR:
            target = self._ref(t.type, type_id)  # type: ignore[union-attr]
            star = "*" + inner
            if target.kind in (BtfKind.ARRAY, BtfKind.FUNC_PROTO):
                star = "(" + star + ")"
            return self._declare(t.type, star, depth + 1, type_id, budget)  # type: ignore[union-attr]
        if k is BtfKind.ARRAY:
            assert isinstance(t, Array)
            return self._declare(t.type, f"{inner}[{t.nelems}]", depth + 1, type_id, budget)
        if k is BtfKind.FUNC_PROTO:
            assert isinstance(t, FuncProto)
            params = []
            for prm in t.params:
                if prm.type == 0 and not prm.name:
                    params.append("...")
                else:
                    params.append(self._declare(prm.type, "", depth + 1, type_id, budget))
            return self._declare(t.return_type, f"{inner}({', '.join(params) or 'void'})", depth + 1, type_id, budget)
        if k in _QUALIFIERS:
            if k is BtfKind.TYPE_TAG:
                word = f"__attribute__((btf_type_tag(\"{t.name}\")))"
            else:
                word = k.name.lower()
            target = self._ref(t.type, type_id)  # type: ignore[union-attr]
            if target.kind is BtfKind.PTR:
                return self._declare(t.type, word + (" " + inner if inner else ""), depth + 1, type_id, budget)  # type: ignore[union-attr]
            return word + " " + self._declare(t.type, inner, depth + 1, type_id, budget)  # type: ignore[union-attr]
        if k is BtfKind.FUNC:
            return spaced(t.name)
        return spaced(t.name or f"({k.name.lower()})")


def _elf_btf_section(data: bytes, fname: str) -> bytes:
    """The ``.BTF`` section of an ELF image (pyelftools is imported only here)."""
    import io

    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise BtfError("pyelftools is needed to read ELF files", file=fname) from exc
    try:
        elf = ELFFile(io.BytesIO(data))
        sec = elf.get_section_by_name(".BTF")
        if sec is None:
            raise BtfError("no .BTF section", file=fname, section=".BTF")
        return bytes(sec.data())
    except BtfError:
        raise
    except (ELFError, ValueError, struct.error, IndexError, KeyError, AttributeError,
            TypeError, OverflowError, OSError) as exc:
        raise BtfError(f"malformed ELF: {exc}", file=fname) from exc
