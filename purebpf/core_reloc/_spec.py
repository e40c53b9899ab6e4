"""CO-RE access specifications: parsing a local one, matching it in a target.

A ``bpf_core_relo`` record names a root type and an *access string* such as
``"0:1:3"``: the first number indexes the root as if it were an array (``&p[0]``),
each following number is a member index inside a struct/union or an element
index inside an array.  Following libbpf's relo_core.c we keep two views:

* the *raw* spec: one entry per number, including hops through anonymous
  struct/union members;
* the *high-level* accessors: only the meaningful turning points -- named
  members and array indices -- which are what must be found again, by name, in
  the target BTF.

The total bit offset of the accessed field is computed along the way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Tuple

from purebpf.btf.types import Array, Enum, Enum64, Member, Struct, Union

from purebpf.core_reloc import _compat
from purebpf.core_reloc._walk import (
    essential,
    SpecError,
    is_any_enum,
    is_composite,
    resolve_size,
    skip_mods,
    type_at,
    type_label,
)

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf

#: libbpf's BPF_CORE_SPEC_MAX_LEN: deepest access string accepted.
SPEC_MAX_LEN = 64

FIELD_KINDS = frozenset(range(0, 6))       # FIELD_BYTE_OFFSET .. FIELD_RSHIFT_U64
TYPE_KINDS = frozenset({6, 7, 8, 9, 12})   # TYPE_ID_LOCAL/TARGET, EXISTS, SIZE, MATCHES
ENUMVAL_KINDS = frozenset({10, 11})        # ENUMVAL_EXISTS, ENUMVAL_VALUE

_NUMBER = re.compile(r"\s*[+-]?\d+\Z")


@dataclass
class Accessor:
    """One high-level step: a named member (``name`` set) or an array index."""

    type_id: int          # struct/union holding the member, or the array element type
    idx: int              # member index, or element index
    name: Optional[str]   # member (or enumerator) name; None for an array index


@dataclass
class CoreSpec:
    """A resolved access (libbpf ``struct bpf_core_spec``)."""

    btf: "Btf"
    root_type_id: int
    kind: int
    accessors: List[Accessor] = field(default_factory=list)
    raw: List[int] = field(default_factory=list)
    bit_offset: int = 0

    @property
    def raw_str(self) -> str:
        return ":".join(str(i) for i in self.raw)

    def copy(self) -> "CoreSpec":
        return CoreSpec(self.btf, self.root_type_id, self.kind,
                        [Accessor(a.type_id, a.idx, a.name) for a in self.accessors],
                        list(self.raw), self.bit_offset)


def parse_access_string(text: str) -> List[int]:
    """``"0:1:3"`` -> ``[0, 1, 3]``; anything else (empty, ``"1:"``, ``"a"``, negative) fails."""
    if not text or text.startswith(":"):
        raise SpecError(f"access string {text!r} is empty or starts with ':'")
    parts = text.split(":")
    out: List[int] = []
    for part in parts:
        if not _NUMBER.match(part):
            raise SpecError(f"access string {text!r}: {part!r} is not a number")
        value = int(part)
        if value < 0:
            raise SpecError(f"access string {text!r}: negative index {value}")
        out.append(value)
    if len(out) > SPEC_MAX_LEN:
        raise SpecError(f"access string {text!r} is deeper than {SPEC_MAX_LEN} levels")
    return out


def _members(t: object) -> Tuple[Member, ...]:
    return t.members if isinstance(t, (Struct, Union)) else ()


def _is_flex_array(btf: "Btf", prev: Accessor, arr: Array) -> bool:
    """A zero-length array that is the last member of its struct (libbpf is_flex_arr)."""
    if prev.name is None or arr.nelems > 0:
        return False
    holder = type_at(btf, prev.type_id)
    return prev.idx == len(_members(holder)) - 1


def parse_local_spec(btf: "Btf", root_type_id: int, access_str: str, kind: int) -> CoreSpec:
    """Turn a relocation record into a local spec (libbpf bpf_core_parse_spec)."""
    spec = CoreSpec(btf, root_type_id, kind)
    if kind in TYPE_KINDS:
        if access_str != "0":
            raise SpecError(f"type-based relocation must have access string \"0\", got {access_str!r}")
        type_at(btf, root_type_id)
        return spec
    raw = parse_access_string(access_str)
    spec.raw = list(raw)
    tid, t = skip_mods(btf, root_type_id)
    idx = raw[0]
    acc = Accessor(tid, idx, None)
    spec.accessors.append(acc)

    if kind in ENUMVAL_KINDS:
        if not isinstance(t, (Enum, Enum64)):
            raise SpecError(f"enum value relocation on {type_label(btf, root_type_id)}, which is not an enum")
        if len(raw) > 1 or idx >= len(t.values):
            raise SpecError(f"enumerator index {access_str} out of range for "
                            f"{type_label(btf, tid)} ({len(t.values)} values)")
        acc.name = t.values[idx].name
        return spec

    if kind not in FIELD_KINDS:
        raise SpecError(f"unknown relocation kind {kind}")

    size = resolve_size(btf, tid)
    spec.bit_offset = idx * size * 8
    for i in range(1, len(raw)):
        tid, t = skip_mods(btf, tid)
        idx = raw[i]
        if isinstance(t, (Struct, Union)):
            if idx >= len(t.members):
                raise SpecError(f"member index {idx} out of range for {type_label(btf, tid)} "
                                f"({len(t.members)} members)")
            m = t.members[idx]
            spec.bit_offset += m.bit_offset
            if m.name:
                spec.accessors.append(Accessor(tid, idx, m.name))
            tid = m.type
        elif isinstance(t, Array):
            elem_id, _ = skip_mods(btf, t.type)
            flex = _is_flex_array(btf, spec.accessors[-1], t)
            if not flex and idx >= t.nelems:
                raise SpecError(f"array index {idx} out of bounds for {type_label(btf, tid)}")
            spec.accessors.append(Accessor(elem_id, idx, None))
            spec.bit_offset += idx * resolve_size(btf, elem_id) * 8
            tid = elem_id
        else:
            raise SpecError(f"access {access_str!r} step {i} reaches {type_label(btf, tid)} "
                            f"({t.kind.name}), which has no members or elements")
    return spec


# --------------------------------------------------------------------------- matching


class _NoMatch(Exception):
    """Internal: this candidate does not match; carries the human reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _match_member(local: CoreSpec, acc: Accessor, targ_btf: "Btf", targ_id: int,
                  spec: CoreSpec, depth: int = 0) -> Optional[int]:
    """Find ``acc``'s member by name in target composite ``targ_id``, through anonymous members.

    On success the target accessor is pushed onto ``spec`` (raw spec and bit
    offset updated) and the member's type id is returned.  ``None`` means the
    name is absent; a name present with an incompatible type raises _NoMatch.
    """
    if depth > SPEC_MAX_LEN:
        raise SpecError("anonymous member nesting too deep")
    targ_id, targ_t = skip_mods(targ_btf, targ_id)
    if not isinstance(targ_t, (Struct, Union)):
        return None
    local_holder = type_at(local.btf, acc.type_id)
    local_member = _members(local_holder)[acc.idx]
    name = acc.name
    # Members are visited in order, as libbpf does; only anonymous members (searched
    # recursively) and the member with the wanted name are pushed onto the spec.
    for i, m in enumerate(targ_t.members):
        if m.name and m.name != name:
            continue
        if len(spec.raw) >= SPEC_MAX_LEN:
            raise SpecError("target access deeper than 64 levels")
        spec.bit_offset += m.bit_offset
        spec.raw.append(i)
        if not m.name:
            found = _match_member(local, acc, targ_btf, m.type, spec, depth + 1)
            if found is not None:
                return found
        else:
            ok = _compat.fields_are_compat(local.btf, local_member.type, targ_btf, m.type)
            if not ok:
                raise _NoMatch(
                    f"field `{m.name}` has incompatible type: local "
                    f"{type_label(local.btf, local_member.type)} vs target "
                    f"{type_label(targ_btf, m.type)}")
            spec.accessors.append(Accessor(targ_id, i, m.name))
            return m.type
        spec.bit_offset -= m.bit_offset
        spec.raw.pop()
    return None


def match_spec(local: CoreSpec, targ_btf: "Btf", targ_id: int) -> Tuple[Optional[CoreSpec], str]:
    """Match a local spec against one candidate (libbpf bpf_core_spec_match).

    Returns ``(target_spec, reason)``; ``target_spec`` is None when the
    candidate does not match and ``reason`` says why.  Malformed BTF raises
    SpecError.
    """
    spec = CoreSpec(targ_btf, targ_id, local.kind)
    kind = local.kind
    if kind in TYPE_KINDS:
        if kind == 12:
            ok, why = _compat.types_match(local.btf, local.root_type_id, targ_btf, targ_id)
        else:
            ok, why = _compat.types_are_compat(local.btf, local.root_type_id, targ_btf, targ_id)
        return (spec, "compatible") if ok else (None, why)

    first = local.accessors[0]
    if kind in ENUMVAL_KINDS:
        tid, t = skip_mods(targ_btf, targ_id)
        if not isinstance(t, (Enum, Enum64)):
            return None, f"{type_label(targ_btf, targ_id)} is not an enum"
        want = essential(first.name or "")
        for i, v in enumerate(t.values):
            if essential(v.name) == want:
                spec.accessors.append(Accessor(tid, i, v.name))
                spec.raw.append(i)
                return spec, f"has enumerator {v.name}"
        return None, f"{type_label(targ_btf, tid)} has no enumerator `{want}`"

    if kind not in FIELD_KINDS:
        raise SpecError(f"unknown relocation kind {kind}")

    tid = targ_id
    for i, lacc in enumerate(local.accessors):
        tid, targ_t = skip_mods(targ_btf, tid)
        if lacc.name is not None:
            try:
                found = _match_member(local, lacc, targ_btf, tid, spec)
            except _NoMatch as exc:
                return None, exc.reason
            if found is None:
                holder = type_label(targ_btf, tid)
                if not is_composite(targ_t):
                    return None, f"{holder} is not a struct/union, cannot hold field `{lacc.name}`"
                return None, f"{holder} has no field `{lacc.name}`"
            tid = found
        else:
            if i > 0:
                if not isinstance(targ_t, Array):
                    return None, f"{type_label(targ_btf, tid)} is not an array (local indexes [{lacc.idx}])"
                flex = _is_flex_array(targ_btf, spec.accessors[-1], targ_t)
                if not flex and lacc.idx >= targ_t.nelems:
                    return None, (f"index [{lacc.idx}] out of bounds of "
                                  f"{type_label(targ_btf, tid)} ({targ_t.nelems} elements)")
                tid, _ = skip_mods(targ_btf, targ_t.type)
            if len(spec.raw) >= SPEC_MAX_LEN:
                raise SpecError("target access deeper than 64 levels")
            spec.accessors.append(Accessor(tid, lacc.idx, None))
            spec.raw.append(lacc.idx)
            spec.bit_offset += lacc.idx * resolve_size(targ_btf, tid) * 8
    return spec, "all fields found with compatible types"


# --------------------------------------------------------------------------- display


def describe_access(spec: CoreSpec) -> str:
    """A C-like view of the access: ``struct task_struct::se.exec_start``, ``enum e::V``."""
    root = type_label(spec.btf, spec.root_type_id)
    if spec.kind in TYPE_KINDS or not spec.accessors:
        return root
    if spec.kind in ENUMVAL_KINDS:
        return f"{root}::{spec.accessors[0].name}"
    parts: List[str] = []
    for i, acc in enumerate(spec.accessors):
        if acc.name is not None:
            parts.append(("." if parts else "") + acc.name)
        elif i > 0 or acc.idx > 0:
            parts.append(f"[{acc.idx}]")
    text = "".join(parts)
    return f"{root}::{text}" if text else root
