"""Small, loop-safe BTF walking helpers used by the CO-RE engine.

They work on any :class:`purebpf.btf.Btf` through its public indexing only and
turn every lookup failure into :class:`SpecError`, which the engine reports as
a CO-RE relocation failure (never an IndexError or a RecursionError).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Tuple

from purebpf.btf.types import (
    MODIFIER_KINDS,
    Array,
    BtfKind,
    BtfType,
    Datasec,
    Enum,
    Enum64,
    Float,
    Int,
    Ptr,
    Struct,
    Union,
)
from purebpf.btf.types import essential_name as _essential_name
from purebpf.errors import PurebpfError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf

#: libbpf's MAX_RESOLVE_DEPTH: longest modifier/array chain followed.
MAX_RESOLVE_DEPTH = 32
#: Pointer size of the BPF target (the BPF ISA is 64-bit).
POINTER_SIZE = 8


@lru_cache(maxsize=1 << 16)
def essential(name: str) -> str:
    """:func:`purebpf.btf.types.essential_name`, memoised, with a fast path for
    the common case of a name without any ``___``."""
    if "___" not in name:
        return name
    return _essential_name(name)


class SpecError(Exception):
    """Internal: a relocation cannot be computed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def type_at(btf: "Btf", type_id: int) -> BtfType:
    """``btf[type_id]``, with lookup/decoding failures turned into SpecError."""
    try:
        return btf[type_id]
    except PurebpfError as exc:
        raise SpecError(f"type id {type_id} is not valid in {btf.name}: {exc}") from exc
    except (IndexError, KeyError, ValueError, TypeError) as exc:  # defensive: foreign BTF object
        raise SpecError(f"type id {type_id} is not valid in {btf.name}: {exc}") from exc


def skip_mods(btf: "Btf", type_id: int) -> Tuple[int, BtfType]:
    """Follow typedef/const/volatile/restrict/type_tag links (libbpf skip_mods_and_typedefs).

    Returns the id and type reached.  A chain longer than any sane BTF (a loop)
    raises SpecError instead of hanging.
    """
    for _ in range(256):
        t = type_at(btf, type_id)
        if t.kind not in MODIFIER_KINDS:
            return type_id, t
        type_id = t.type  # type: ignore[union-attr]
    raise SpecError(f"modifier/typedef chain starting at [{type_id}] is too long (loop?)")


def is_composite(t: BtfType) -> bool:
    return t.kind in (BtfKind.STRUCT, BtfKind.UNION)


def is_any_enum(t: BtfType) -> bool:
    return t.kind in (BtfKind.ENUM, BtfKind.ENUM64)


def kind_core_compat(a: BtfType, b: BtfType) -> bool:
    """libbpf btf_kind_core_compat: same kind, or ENUM vs ENUM64."""
    return a.kind == b.kind or (is_any_enum(a) and is_any_enum(b))


def resolve_size(btf: "Btf", type_id: int) -> int:
    """Size in bytes of a type, with libbpf ``btf__resolve_size`` semantics.

    Modifiers, typedefs and VARs are followed; arrays multiply by their element
    count (a flexible array has size 0); pointers are 8 bytes.  void, FUNC,
    FUNC_PROTO and FWD have no size: SpecError.
    """
    nelems = 1
    tid = type_id
    for _ in range(MAX_RESOLVE_DEPTH):
        if tid == 0:
            break
        t = type_at(btf, tid)
        if isinstance(t, (Int, Struct, Union, Enum, Enum64, Datasec, Float)):
            size = t.size
            if nelems and size > 0xFFFFFFFF // nelems:
                raise SpecError(f"size of [{type_id}] overflows 32 bits")
            return nelems * size
        if isinstance(t, Ptr):
            return nelems * POINTER_SIZE
        if isinstance(t, Array):
            if nelems and t.nelems > 0xFFFFFFFF // nelems:
                raise SpecError(f"size of array [{type_id}] overflows 32 bits")
            nelems *= t.nelems
            tid = t.type
            continue
        if t.kind in MODIFIER_KINDS or t.kind in (BtfKind.VAR, BtfKind.DECL_TAG):
            tid = t.type  # type: ignore[union-attr]
            continue
        raise SpecError(f"type [{tid}] ({t.kind.name}) has no size")
    raise SpecError(f"type [{type_id}] has no size (void, or chain too long)")


def type_label(btf: "Btf", type_id: int) -> str:
    """A readable C-ish name for a type, never failing ("struct foo", "[12]")."""
    try:
        return str(btf.type_name(type_id))
    except Exception:  # noqa: BLE001 - a label must never fail
        try:
            t = btf[type_id]
            return f"{t.kind.name.lower()} {t.name or '(anon)'}"
        except Exception:  # noqa: BLE001
            return f"[{type_id}]"
