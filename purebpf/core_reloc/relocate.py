"""Relocate every program of an ObjectSpec: the object-level CO-RE pass.

Programs are visited in the order of their ``.BTF.ext`` core_relo sections and
their offset in the section, and records in their order, which matters
because -- as in libbpf -- the candidate list of a local type is narrowed by
each relocation that matched and shared by the following ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from purebpf.errors import CoreRelocationError

from purebpf.core_reloc.engine import CandidateCache, CoreFixupError, compute_fixup
from purebpf.core_reloc.explain import CoreExplanation
from purebpf.core_reloc.target import TargetBtf, load_target_btf

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf
    from purebpf.spec import ObjectSpec, ProgramSpec

__all__ = ["RelocatedProgram", "ObjectRelocation", "relocate_object"]


@dataclass(frozen=True)
class RelocatedProgram:
    """A program's instructions after CO-RE, with one explanation per relocation.

    ``instructions`` is a patched copy.  Slot positions are preserved; only a
    poisoned ld_imm64 turns one 2-slot instruction into two 1-slot calls.
    """

    name: str
    instructions: Tuple[Any, ...]
    explanations: Tuple[CoreExplanation, ...]
    errors: Tuple[CoreRelocationError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ObjectRelocation:
    """CO-RE results for an object: ``programs`` maps program name -> result."""

    programs: Dict[str, RelocatedProgram] = field(default_factory=dict)
    target_name: str = ""

    @property
    def errors(self) -> Tuple[CoreRelocationError, ...]:
        return tuple(e for p in self.programs.values() for e in p.errors)

    @property
    def explanations(self) -> Tuple[CoreExplanation, ...]:
        return tuple(x for p in self.programs.values() for x in p.explanations)

    def check(self) -> "ObjectRelocation":
        """Raise the first CoreRelocationError if any relocation failed; else return self."""
        errs = self.errors
        if errs:
            raise errs[0]
        return self


def _slot_index(insns: Sequence[Any]) -> Dict[int, int]:
    out: Dict[int, int] = {}
    slot = 0
    for i, insn in enumerate(insns):
        out[slot] = i
        slot += 2 if insn.opcode == 0x18 else 1
    return out


def _record_error(program: str, slot: int, index: int, relo: Any, reason: str) -> CoreRelocationError:
    kind = getattr(relo, "kind", "?")
    return CoreRelocationError(
        f"program {program!r} insn #{index} (slot {slot}): CO-RE relocation record "
        f"(kind {int(kind) if isinstance(kind, int) else kind}, type id {getattr(relo, 'type_id', '?')}, "
        f"access {getattr(relo, 'access_str', '?')!r}) is malformed: {reason}")


def relocate_program(prog: "ProgramSpec", local: Optional["Btf"], target: TargetBtf,
                     cache: CandidateCache) -> RelocatedProgram:
    """Apply all CO-RE relocations of one program to a copy of its instructions."""
    insns = tuple(prog.instructions)
    work: List[Tuple[Any, ...]] = [(i,) for i in insns]
    slots = _slot_index(insns)
    explanations: List[CoreExplanation] = []
    errors: List[CoreRelocationError] = []
    for relo in prog.core_relos:
        off = int(relo.insn_off)
        slot = off // 8
        if off % 8 or slot not in slots:
            why = ("offset is not a multiple of 8" if off % 8 else
                   f"slot {slot} is not the start of an instruction (program has "
                   f"{sum(2 if i.opcode == 0x18 else 1 for i in insns)} slots)")
            errors.append(_record_error(prog.name, slot, slot, relo, why))
            continue
        if local is None:
            errors.append(_record_error(prog.name, slot, slots[slot], relo, "the object has no .BTF"))
            continue
        index = slots[slot]
        try:
            e = compute_fixup(local, target, relo, work[index][0], program=prog.name,
                              insn_index=index, cache=cache)
        except CoreFixupError as exc:
            explanations.append(exc.explanation)
            errors.append(exc)
            continue
        explanations.append(e)
        work[index] = tuple(e.replacement) + work[index][1:]
    out = tuple(i for group in work for i in group)
    return RelocatedProgram(prog.name, out, tuple(explanations), tuple(errors))


def relocate_object(spec: "ObjectSpec", target: Union[TargetBtf, "Btf", None] = None, *,
                    programs: Optional[Sequence[str]] = None) -> ObjectRelocation:
    """Relocate entry programs and .text subprograms of ``spec`` against ``target``.

    ``target`` defaults to the running kernel (:func:`load_target_btf`), which
    is only loaded if the object has CO-RE relocations at all.  ``programs``
    restricts the entry programs relocated (subprograms are always included,
    since any program may call them).  Failures are collected per program
    (``RelocatedProgram.errors``); call :meth:`ObjectRelocation.check` to raise.
    Nothing in ``spec`` is modified.
    """
    all_progs = list(spec.programs) + list(spec.subprograms)
    if programs is not None:
        wanted = set(programs)
        known = {p.name for p in all_progs}
        missing = sorted(wanted - known)
        if missing:
            from purebpf.errors import NotFoundError

            raise NotFoundError("program", missing[0], candidates=sorted(known))
        all_progs = [p for p in all_progs if p.name in wanted or p.is_subprogram]
    section_rank: Dict[str, int] = {}
    if spec.btf_ext is not None:
        section_rank = {name: i for i, name in enumerate(spec.btf_ext.core_relos)}
    all_progs.sort(key=lambda p: (section_rank.get(p.section, len(section_rank)), p.section_offset))

    needs_target = any(p.core_relos for p in all_progs)
    if not needs_target:
        return ObjectRelocation({p.name: RelocatedProgram(p.name, tuple(p.instructions), ())
                                 for p in all_progs}, "")
    if target is None:
        tgt = load_target_btf()
    elif isinstance(target, TargetBtf):
        tgt = target
    else:
        tgt = TargetBtf.from_btf(target)
    cache: CandidateCache = {}
    result = {p.name: relocate_program(p, spec.btf, tgt, cache) for p in all_progs}
    return ObjectRelocation(result, tgt.main_name)
