"""The BTF type model: one small frozen class per BTF kind.

Mirrors ``struct btf_type`` and its per-kind trailers from
``include/uapi/linux/btf.h``.  Type objects are plain data: they refer to other
types by id (``int``), never by Python reference, so a type can be built
without decoding anything else, and the same classes describe local (object)
BTF and target (kernel) BTF.  Walking (resolving typedef chains, sizes, member
offsets) is done by :class:`purebpf.btf.Btf`, which owns the id space.

Type id 0 is ``void`` and is represented by :data:`VOID`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
import typing
from typing import ClassVar, Tuple

__all__ = [
    "BtfKind",
    "IntEncoding",
    "FuncLinkage",
    "VarLinkage",
    "Void",
    "Int",
    "Ptr",
    "Array",
    "Member",
    "Struct",
    "Union",
    "EnumValue",
    "Enum",
    "Enum64",
    "Fwd",
    "Typedef",
    "Volatile",
    "Const",
    "Restrict",
    "Func",
    "FuncParam",
    "FuncProto",
    "Var",
    "VarSecinfo",
    "Datasec",
    "Float",
    "DeclTag",
    "TypeTag",
    "BtfType",
    "VOID",
    "essential_name",
    "MODIFIER_KINDS",
]


class BtfKind(enum.IntEnum):
    """``BTF_KIND_*`` from include/uapi/linux/btf.h."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(enum.IntFlag):
    """``BTF_INT_SIGNED``/``BTF_INT_CHAR``/``BTF_INT_BOOL`` (bits 24..27 of the int trailer)."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class FuncLinkage(enum.IntEnum):
    """``enum btf_func_linkage``: stored in ``vlen`` of a FUNC."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(enum.IntEnum):
    """``BTF_VAR_*``: the ``linkage`` of ``struct btf_var``."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


@dataclass(frozen=True)
class _Base:
    id: int
    name: str

    kind: ClassVar[BtfKind] = BtfKind.UNKN

    @property
    def essential_name(self) -> str:
        """The name without a ``___flavor`` suffix (libbpf's ``bpf_core_essential_name_len``)."""
        return essential_name(self.name)


@dataclass(frozen=True)
class Void(_Base):
    """Type id 0."""


@dataclass(frozen=True)
class Int(_Base):
    """``BTF_KIND_INT``: ``size`` bytes; ``bits`` wide starting at bit ``offset``."""

    size: int = 0
    encoding: IntEncoding = IntEncoding.NONE
    offset: int = 0
    bits: int = 0
    kind: ClassVar[BtfKind] = BtfKind.INT

    @property
    def is_signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)

    @property
    def is_char(self) -> bool:
        return bool(self.encoding & IntEncoding.CHAR)

    @property
    def is_bool(self) -> bool:
        return bool(self.encoding & IntEncoding.BOOL)


@dataclass(frozen=True)
class Ptr(_Base):
    """``BTF_KIND_PTR`` to ``type``."""

    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.PTR


@dataclass(frozen=True)
class Array(_Base):
    """``BTF_KIND_ARRAY``: ``struct btf_array { type; index_type; nelems; }``."""

    type: int = 0
    index_type: int = 0
    nelems: int = 0
    kind: ClassVar[BtfKind] = BtfKind.ARRAY


@dataclass(frozen=True)
class Member:
    """``struct btf_member``.

    ``bit_offset`` and ``bitfield_size`` are already split according to the
    parent's ``kind_flag``: with kind_flag set the stored ``offset`` carries the
    bitfield size in its top 8 bits; without it, ``bitfield_size`` is 0 and a
    bitfield is described by the member's INT type instead.
    """

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True)
class Struct(_Base):
    """``BTF_KIND_STRUCT``: ``size`` bytes, ``members`` in declaration order."""

    size: int = 0
    members: Tuple[Member, ...] = ()
    kind_flag: bool = False
    kind: ClassVar[BtfKind] = BtfKind.STRUCT


@dataclass(frozen=True)
class Union(_Base):
    """``BTF_KIND_UNION``: like Struct; members overlap."""

    size: int = 0
    members: Tuple[Member, ...] = ()
    kind_flag: bool = False
    kind: ClassVar[BtfKind] = BtfKind.UNION


@dataclass(frozen=True)
class EnumValue:
    """``struct btf_enum`` / ``struct btf_enum64``: a name and its value.

    ``value`` is already interpreted as signed or unsigned according to the
    enum's ``kind_flag``.
    """

    name: str
    value: int


@dataclass(frozen=True)
class Enum(_Base):
    """``BTF_KIND_ENUM``: 32-bit values; ``signed`` is the kind_flag."""

    size: int = 4
    values: Tuple[EnumValue, ...] = ()
    signed: bool = False
    kind: ClassVar[BtfKind] = BtfKind.ENUM


@dataclass(frozen=True)
class Enum64(_Base):
    """``BTF_KIND_ENUM64``: 64-bit values split in lo32/hi32 on the wire."""

    size: int = 8
    values: Tuple[EnumValue, ...] = ()
    signed: bool = False
    kind: ClassVar[BtfKind] = BtfKind.ENUM64


@dataclass(frozen=True)
class Fwd(_Base):
    """``BTF_KIND_FWD``: a forward declaration; ``is_union`` is the kind_flag."""

    is_union: bool = False
    kind: ClassVar[BtfKind] = BtfKind.FWD


@dataclass(frozen=True)
class Typedef(_Base):
    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.TYPEDEF


@dataclass(frozen=True)
class Volatile(_Base):
    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.VOLATILE


@dataclass(frozen=True)
class Const(_Base):
    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.CONST


@dataclass(frozen=True)
class Restrict(_Base):
    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.RESTRICT


@dataclass(frozen=True)
class Func(_Base):
    """``BTF_KIND_FUNC``: ``type`` is a FUNC_PROTO; ``linkage`` lives in vlen."""

    type: int = 0
    linkage: FuncLinkage = FuncLinkage.STATIC
    kind: ClassVar[BtfKind] = BtfKind.FUNC


@dataclass(frozen=True)
class FuncParam:
    """``struct btf_param``; a trailing param with type 0 and no name means ``...``."""

    name: str
    type: int


@dataclass(frozen=True)
class FuncProto(_Base):
    return_type: int = 0
    params: Tuple[FuncParam, ...] = ()
    kind: ClassVar[BtfKind] = BtfKind.FUNC_PROTO

    @property
    def is_variadic(self) -> bool:
        return bool(self.params) and self.params[-1].type == 0 and not self.params[-1].name


@dataclass(frozen=True)
class Var(_Base):
    """``BTF_KIND_VAR``: ``struct btf_var { linkage; }``."""

    type: int = 0
    linkage: VarLinkage = VarLinkage.STATIC
    kind: ClassVar[BtfKind] = BtfKind.VAR


@dataclass(frozen=True)
class VarSecinfo:
    """``struct btf_var_secinfo``: a VAR (or FUNC for externs) placed in a DATASEC."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class Datasec(_Base):
    size: int = 0
    vars: Tuple[VarSecinfo, ...] = ()
    kind: ClassVar[BtfKind] = BtfKind.DATASEC


@dataclass(frozen=True)
class Float(_Base):
    size: int = 0
    kind: ClassVar[BtfKind] = BtfKind.FLOAT


@dataclass(frozen=True)
class DeclTag(_Base):
    """``BTF_KIND_DECL_TAG``: ``component_idx`` -1 tags the type itself."""

    type: int = 0
    component_idx: int = -1
    kind: ClassVar[BtfKind] = BtfKind.DECL_TAG


@dataclass(frozen=True)
class TypeTag(_Base):
    type: int = 0
    kind: ClassVar[BtfKind] = BtfKind.TYPE_TAG


BtfType = typing.Union[
    Void, Int, Ptr, Array, Struct, Union, Enum, Enum64, Fwd, Typedef, Volatile, Const,
    Restrict, Func, FuncProto, Var, Datasec, Float, DeclTag, TypeTag,
]

VOID = Void(id=0, name="")

#: Kinds that only qualify another type (skipped when resolving to the "real" type).
MODIFIER_KINDS = frozenset({BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST,
                            BtfKind.RESTRICT, BtfKind.TYPE_TAG})


def essential_name(name: str) -> str:
    """Strip a CO-RE ``___flavor`` suffix: ``task_struct___old`` -> ``task_struct``.

    Exactly libbpf's ``bpf_core_essential_name_len``: the last ``X___Y``
    where neither X nor Y is an underscore separates name and flavor.
    """
    if "___" not in name:  # the common case: no flavor at all
        return name
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name
