"""Type compatibility rules of CO-RE (libbpf relo_core.c semantics).

Three relations, from loosest to strictest:

* :func:`fields_are_compat` -- may a local field be relocated onto a target
  field of the same name?  Any struct/union pair, pointers, floats; enums and
  forward declarations with the same essential name (or one anonymous); ints
  of any size/sign (but not old-style bitfield ints with a bit offset); arrays
  whose element types are compatible.
* :func:`types_are_compat` -- for ``bpf_core_type_exists()``/``type_size()``/
  ``type_id()``: same kinds after skipping modifiers, pointers and arrays
  followed, function prototypes compared parameter by parameter.
* :func:`types_match` -- for ``bpf_core_type_matches()`` (libbpf
  ``__bpf_core_types_match``): names must agree at every level, ints must
  have the same size and signedness, arrays the same length, every local
  member/enumerator must exist in the target, and behind a pointer a struct
  may match a forward declaration of the same flavour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from purebpf.btf.types import (
    Array,
    BtfKind,
    Enum,
    Enum64,
    Fwd,
    FuncProto,
    Int,
    Ptr,
    Struct,
    Union,
)

from purebpf.core_reloc._walk import (
    essential,
    SpecError,
    is_any_enum,
    is_composite,
    kind_core_compat,
    skip_mods,
    type_at,
    type_label,
)

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf

#: libbpf's depth limit for the iterative parts of the compat/match walks.
_MAX_DEPTH = 32
#: Bound on recursion through function prototypes and members (Python stack safety).
_MAX_LEVEL = 32


def fields_are_compat(local_btf: "Btf", local_id: int, targ_btf: "Btf", targ_id: int) -> bool:
    """libbpf bpf_core_fields_are_compat."""
    for _ in range(_MAX_DEPTH * 8):
        local_id, lt = skip_mods(local_btf, local_id)
        targ_id, tt = skip_mods(targ_btf, targ_id)
        if is_composite(lt) and is_composite(tt):
            return True
        if not kind_core_compat(lt, tt):
            return False
        if lt.kind in (BtfKind.PTR, BtfKind.FLOAT):
            return True
        if lt.kind in (BtfKind.FWD, BtfKind.ENUM, BtfKind.ENUM64):
            ln, tn = essential(lt.name), essential(tt.name)
            return not ln or not tn or ln == tn
        if isinstance(lt, Int) and isinstance(tt, Int):
            return lt.offset == 0 and tt.offset == 0
        if isinstance(lt, Array) and isinstance(tt, Array):
            local_id, targ_id = lt.type, tt.type
            continue
        return False
    raise SpecError("array nesting too deep while comparing field types")


def types_are_compat(local_btf: "Btf", local_id: int, targ_btf: "Btf", targ_id: int,
                     level: int = _MAX_LEVEL) -> Tuple[bool, str]:
    """libbpf __bpf_core_types_are_compat; returns (ok, reason)."""
    lt = type_at(local_btf, local_id)
    tt = type_at(targ_btf, targ_id)
    if not kind_core_compat(lt, tt):
        return False, f"kind {tt.kind.name} differs from local {lt.kind.name}"
    for _ in range(_MAX_DEPTH):
        local_id, lt = skip_mods(local_btf, local_id)
        targ_id, tt = skip_mods(targ_btf, targ_id)
        if not kind_core_compat(lt, tt):
            return False, (f"{type_label(targ_btf, targ_id)} ({tt.kind.name}) differs in kind from "
                           f"local {type_label(local_btf, local_id)} ({lt.kind.name})")
        if lt.kind in (BtfKind.UNKN, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.FWD,
                       BtfKind.ENUM64):
            return True, "compatible"
        if isinstance(lt, Int) and isinstance(tt, Int):
            if lt.offset == 0 and tt.offset == 0:
                return True, "compatible"
            return False, "bitfield-style int (non-zero bit offset)"
        if isinstance(lt, Ptr) and isinstance(tt, Ptr):
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, Array) and isinstance(tt, Array):
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, FuncProto) and isinstance(tt, FuncProto):
            if len(lt.params) != len(tt.params):
                return False, (f"function prototype has {len(tt.params)} parameters, "
                               f"local has {len(lt.params)}")
            for lp, tp in zip(lt.params, tt.params):
                if level <= 0:
                    raise SpecError("function prototype nesting too deep")
                lp_id, _ = skip_mods(local_btf, lp.type)
                tp_id, _ = skip_mods(targ_btf, tp.type)
                ok, why = types_are_compat(local_btf, lp_id, targ_btf, tp_id, level - 1)
                if not ok:
                    return False, f"parameter: {why}"
            local_id, _ = skip_mods(local_btf, lt.return_type)
            targ_id, _ = skip_mods(targ_btf, tt.return_type)
            continue
        return False, f"unexpected kind {lt.kind.name}"
    raise SpecError("type chain too deep while checking compatibility")


def _names_match(local_name: str, targ_name: str) -> bool:
    """libbpf bpf_core_names_match: anonymous matches anonymous only; else essential names."""
    if not targ_name:
        return not local_name
    return essential(local_name) == essential(targ_name)


def types_match(local_btf: "Btf", local_id: int, targ_btf: "Btf", targ_id: int,
                behind_ptr: bool = False, level: int = _MAX_LEVEL) -> Tuple[bool, str]:
    """libbpf __bpf_core_types_match; returns (ok, reason)."""
    if level <= 0:
        raise SpecError("type nesting too deep while matching types")
    for _ in range(_MAX_DEPTH):
        local_id, lt = skip_mods(local_btf, local_id)
        targ_id, tt = skip_mods(targ_btf, targ_id)
        ldesc, tdesc = type_label(local_btf, local_id), type_label(targ_btf, targ_id)
        if not _names_match(lt.name, tt.name):
            return False, f"names differ: local {ldesc} vs target {tdesc}"
        lk, tk = lt.kind, tt.kind
        if lk == BtfKind.UNKN:
            return (lk == tk), "void vs void" if lk == tk else f"void vs {tdesc}"
        if isinstance(lt, Fwd):
            if behind_ptr:
                if isinstance(tt, Fwd):
                    ok = lt.is_union == tt.is_union
                else:
                    ok = (tk == BtfKind.STRUCT and not lt.is_union) or (tk == BtfKind.UNION and lt.is_union)
            else:
                ok = isinstance(tt, Fwd) and lt.is_union == tt.is_union
            return ok, ("forward declaration matches" if ok
                        else f"forward declaration {ldesc} does not match {tdesc}")
        if isinstance(lt, (Enum, Enum64)):
            if not isinstance(tt, (Enum, Enum64)):
                return False, f"{tdesc} is not an enum"
            if lt.size != tt.size:
                return False, f"enum size {tt.size} differs from local {lt.size}"
            if len(lt.values) > len(tt.values):
                return False, f"{tdesc} has fewer enumerators than local {ldesc}"
            for lv in lt.values:
                if not any(_names_match(lv.name, tv.name) for tv in tt.values):
                    return False, f"{tdesc} has no enumerator `{lv.name}`"
            return True, "enumerators match"
        if isinstance(lt, (Struct, Union)):
            if behind_ptr:
                if lk == tk:
                    return True, "same kind behind pointer"
                if isinstance(tt, Fwd):
                    ok = (lk == BtfKind.UNION) == tt.is_union
                    return ok, "matches forward declaration" if ok else "forward declaration of other kind"
                return False, f"kind {tk.name} differs from {lk.name}"
            if lk != tk:
                return False, f"kind {tk.name} differs from {lk.name}"
            assert isinstance(tt, (Struct, Union))
            if len(lt.members) > len(tt.members):
                return False, f"{tdesc} has fewer members than local {ldesc}"
            for lm in lt.members:
                matched = False
                inner = ""
                for tm in tt.members:
                    if not _names_match(lm.name, tm.name):
                        continue
                    ok, inner = types_match(local_btf, lm.type, targ_btf, tm.type, behind_ptr, level - 1)
                    if ok:
                        matched = True
                        break
                if not matched:
                    if inner:
                        return False, f"member `{lm.name or '(anon)'}` of {tdesc} does not match: {inner}"
                    return False, f"{tdesc} has no member `{lm.name or '(anon)'}`"
            return True, "all members match"
        if isinstance(lt, Int):
            if not isinstance(tt, Int):
                return False, f"{tdesc} is not an int"
            if lt.size != tt.size or lt.is_signed != tt.is_signed:
                return False, f"int size/signedness differ: local {ldesc} vs target {tdesc}"
            return True, "ints match"
        if isinstance(lt, Ptr):
            if not isinstance(tt, Ptr):
                return False, f"{tdesc} is not a pointer"
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, Array):
            if not isinstance(tt, Array):
                return False, f"{tdesc} is not an array"
            if lt.nelems != tt.nelems:
                return False, f"array length {tt.nelems} differs from local {lt.nelems}"
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, FuncProto):
            if not isinstance(tt, FuncProto):
                return False, f"{tdesc} is not a function prototype"
            if len(lt.params) != len(tt.params):
                return False, "parameter count differs"
            for lp, tp in zip(lt.params, tt.params):
                ok, why = types_match(local_btf, lp.type, targ_btf, tp.type, behind_ptr, level - 1)
                if not ok:
                    return False, f"parameter: {why}"
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return False, f"unexpected kind {lk.name}"
    raise SpecError("type chain too deep while matching types")
