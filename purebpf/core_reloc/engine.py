"""Compute one CO-RE fixup (pure) and apply fixups to instruction copies.

:func:`compute_fixup` is libbpf's ``bpf_core_calc_relo_insn`` +
``bpf_core_patch_insn`` for a single ``bpf_core_relo`` record, returning an
explanation that carries the replacement instruction(s).  :func:`apply_fixup`
splices that replacement into a new instruction tuple; nothing is mutated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from purebpf.errors import CoreRelocationError, PurebpfError
from purebpf.insn import format_instruction

from purebpf.core_reloc._calc import PatchError, RelocResult, calc_relo, patch_insn
from purebpf.core_reloc._spec import CoreSpec, describe_access, match_spec, parse_local_spec
from purebpf.core_reloc._walk import SpecError, essential, type_at, type_label
from purebpf.core_reloc.explain import KIND_NAMES, CandidateReport, CoreExplanation, TargetLocation
from purebpf.core_reloc.target import Candidate, TargetBtf

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf import Btf, CoreRelo

__all__ = ["compute_fixup", "apply_fixup", "CoreFixupError", "CandidateCache"]

#: Builds the explanation of the relocation being computed: (outcome, result,
#: replacement instructions, change description[, error]).
_Explain = Callable[..., CoreExplanation]
#: Builds the error for the relocation being computed: (reason[, result]).
_Fail = Callable[..., "CoreFixupError"]

#: Per-object memory of the candidates still viable for each local root type id.
#: Like libbpf's cand_cache, a list is narrowed to the candidates that matched a
#: relocation, and later relocations of the same root type start from it.
CandidateCache = Dict[int, Tuple[Candidate, ...]]


class CoreFixupError(CoreRelocationError):
    """A CO-RE relocation that cannot be applied.

    Carries ``program``, ``insn_index``, ``kind`` (name), ``local_type``,
    ``access``, ``candidates`` (readable list of what was tried) and the full
    ``explanation``.
    """

    def __init__(self, explanation: CoreExplanation) -> None:
        self.explanation = explanation
        self.program = explanation.program
        self.insn_index = explanation.insn_index
        self.kind = explanation.kind_name
        self.local_type = explanation.local_type
        self.access = explanation.access
        self.candidates = [f"{c.source} [{c.type_id}] {c.type_name}" for c in explanation.candidates]
        tried = "; candidates: " + ", ".join(self.candidates) if self.candidates else ""
        super().__init__(
            f"program {explanation.program!r} insn #{explanation.insn_index}: CO-RE <{self.kind}> "
            f"relocation of {explanation.access} (spec {explanation.access_str!r}) failed: "
            f"{explanation.error}{tried}")


def format_insn(insn: Any) -> str:
    """The instruction in the kernel verifier's syntax (purebpf.insn.format_instruction)."""
    try:
        return str(format_instruction(insn))
    except PurebpfError:  # a display helper must not fail
        return (f"(op {insn.opcode:#04x}) dst=r{insn.dst} src=r{insn.src} "
                f"off={insn.off} imm={insn.imm}")


def _as_target(target: Union[TargetBtf, "Btf"]) -> TargetBtf:
    return target if isinstance(target, TargetBtf) else TargetBtf.from_btf(target)


def _location(cand: Candidate, spec: CoreSpec) -> TargetLocation:
    return TargetLocation(cand.source, cand.type_id, type_label(cand.btf, cand.type_id),
                          describe_access(spec), spec.raw_str, spec.bit_offset)


def compute_fixup(local: "Btf", target: Union[TargetBtf, "Btf"], relo: "CoreRelo", insn: Any, *,
                  program: str = "<program>", insn_index: Optional[int] = None,
                  cache: Optional[CandidateCache] = None) -> CoreExplanation:
    """Resolve one relocation record against ``target`` and patch ``insn``.

    ``relo.insn_off`` is only used to report the slot; ``insn`` is the
    instruction it designates.  Returns an explanation whose ``replacement``
    holds the new instruction(s) (two for a poisoned ld_imm64).  Raises
    :class:`CoreFixupError` (a CoreRelocationError) when libbpf would refuse
    the relocation, the record is malformed, or candidates disagree.
    """
    tgt = _as_target(target)
    kind = int(relo.kind)
    kind_name = KIND_NAMES.get(kind, f"unknown({kind})")
    slot = int(relo.insn_off) // 8
    index = slot if insn_index is None else insn_index
    access_str = str(relo.access_str)
    state: Dict[str, Any] = {
        "local_type": type_label(local, relo.type_id), "access": access_str,
        "local_bit_offset": None, "candidates": [], "target": None,
    }

    def explanation(outcome: str, res: Optional[RelocResult], repl: Tuple[Any, ...], change: str,
                    error: Optional[str] = None) -> CoreExplanation:
        return CoreExplanation(
            program=program, insn_index=index, slot=slot, kind=kind, kind_name=kind_name,
            local_type_id=int(relo.type_id), local_type=state["local_type"], access_str=access_str,
            access=state["access"], local_bit_offset=state["local_bit_offset"],
            candidates=tuple(state["candidates"]), target=state["target"], outcome=outcome,
            orig_value=res.orig_val if res is not None else None,
            new_value=res.new_val if res is not None else None,
            validated=res.validate if res is not None else False,
            orig_size=res.orig_sz if res is not None else 0,
            new_size=res.new_sz if res is not None else 0,
            insn_before=format_insn(insn), insn_after=tuple(format_insn(i) for i in repl),
            change=change, error=error, replacement=repl)

    def fail(reason: str, res: Optional[RelocResult] = None) -> CoreFixupError:
        return CoreFixupError(explanation("error", res, (), "", reason))

    # 1. the local side: root type and access spec
    try:
        local_t = type_at(local, relo.type_id)
        local_spec = parse_local_spec(local, relo.type_id, access_str, kind)
    except SpecError as exc:
        raise fail(f"malformed relocation record: {exc.reason}") from None
    state["access"] = describe_access(local_spec)
    if kind in range(0, 6):
        state["local_bit_offset"] = local_spec.bit_offset

    # 2. TYPE_ID_LOCAL needs no target at all
    if kind == 6:
        res = RelocResult(orig_val=relo.type_id, new_val=relo.type_id, validate=False)
        return _patch(res, insn, explanation, fail)

    if not local_t.name:
        raise fail("CO-RE relocations of anonymous types are not supported (libbpf neither)")

    # 3. candidates and matching
    cands = cache.get(relo.type_id) if cache is not None else None
    if cands is None:
        try:
            cands = tgt.candidates(local_t)
        except SpecError as exc:
            raise fail(exc.reason) from None
    matched: List[Candidate] = []
    best: Optional[Tuple[Candidate, CoreSpec, RelocResult]] = None
    big_endian = getattr(local, "byteorder", "little") == "big"
    reports: List[CandidateReport] = state["candidates"]
    for cand in cands:
        cname = type_label(cand.btf, cand.type_id)
        try:
            cspec, why = match_spec(local_spec, cand.btf, cand.type_id)
            if cspec is None:
                reports.append(CandidateReport(cand.source, cand.type_id, cname, False, why))
                continue
            cres = calc_relo(kind, local_spec, cspec, big_endian)
        except SpecError as exc:
            reports.append(CandidateReport(cand.source, cand.type_id, cname, False, f"error: {exc.reason}"))
            raise fail(f"error matching candidate [{cand.type_id}] {cname}: {exc.reason}") from None
        reports.append(CandidateReport(cand.source, cand.type_id, cname, True, why, cspec.raw_str,
                                       describe_access(cspec), cspec.bit_offset,
                                       None if cres.poison else cres.new_val))
        if best is None:
            best = (cand, cspec, cres)
            state["target"] = _location(cand, cspec)
        elif cspec.bit_offset != best[1].bit_offset:
            raise fail(f"field offset ambiguity: [{best[0].type_id}] gives bit offset "
                       f"{best[1].bit_offset}, [{cand.type_id}] gives {cspec.bit_offset}")
        elif cres.poison != best[2].poison or cres.new_val != best[2].new_val:
            raise fail(f"relocation decision ambiguity: [{best[0].type_id}] gives "
                       f"{'failure' if best[2].poison else best[2].new_val}, [{cand.type_id}] gives "
                       f"{'failure' if cres.poison else cres.new_val}")
        matched.append(cand)
    if cache is not None:
        cache[relo.type_id] = tuple(matched) if matched else tuple(cands)

    if best is not None:
        res = best[2]
    else:
        try:
            res = calc_relo(kind, local_spec, None, big_endian)
        except SpecError as exc:
            raise fail(exc.reason) from None
    return _patch(res, insn, explanation, fail, _missing(local_t.name, reports) if best is None else "")


def _missing(name: str, reports: Sequence[CandidateReport]) -> str:
    if not reports:
        return f"no type named `{essential(name)}` (or a flavor of it) in the target"
    return "; ".join(f"{r.reason} (candidate {r.type_name}, id {r.type_id})" for r in reports)


def _patch(res: RelocResult, insn: Any, explanation: _Explain, fail: _Fail,
           why_missing: str = "") -> CoreExplanation:
    """Patch ``insn`` with ``res`` and explain it; ``why_missing`` tells why no candidate matched."""
    try:
        repl, change = patch_insn(insn, res)
    except PatchError as exc:
        raise fail(exc.reason, res) from None
    if change.startswith("poisoned"):
        detail = why_missing or change[len("poisoned"):].lstrip(": ")
        text = "poisoned (call to invalid helper 0xbad2310: fails verification only if reachable)"
        if detail:
            text += f": {detail}"
        return explanation("poisoned", res, repl, text)
    if why_missing and res.new_val == 0:
        change += f" (not found: {why_missing})"
    return explanation("patched", res, repl, change)


def apply_fixup(insns: Sequence[Any], explanation: CoreExplanation) -> Tuple[Any, ...]:
    """A new instruction tuple with ``explanation``'s replacement at its ``insn_index``.

    A poisoned ld_imm64 becomes two one-slot instructions, so the indices of
    later instructions grow by one while every *slot* keeps its position; apply
    several fixups from the highest index down (as relocate_object does).
    """
    if explanation.outcome == "error":
        raise CoreFixupError(explanation)
    i = explanation.insn_index
    if not 0 <= i < len(insns):
        raise CoreRelocationError(f"program {explanation.program!r}: instruction index {i} "
                                  f"out of range ({len(insns)} instructions)")
    return tuple(insns[:i]) + tuple(explanation.replacement) + tuple(insns[i + 1:])
