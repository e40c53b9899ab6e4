"""Explanations: what each CO-RE relocation did, and why.

Every relocation yields a :class:`CoreExplanation` -- a frozen record that can
be turned into JSON (:meth:`CoreExplanation.to_dict`) or read by a person
(:func:`format_explanation`).  It tells which local type and field the
compiler recorded, every candidate type considered in the target BTF with the
reason it was accepted or rejected, where the field lives in the target, and
how the instruction changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["CandidateReport", "TargetLocation", "CoreExplanation", "format_explanation", "KIND_NAMES"]

#: libbpf's short names for relocation kinds (core_relo_kind_str).
KIND_NAMES = {
    0: "byte_off", 1: "byte_sz", 2: "field_exists", 3: "signed", 4: "lshift_u64",
    5: "rshift_u64", 6: "local_type_id", 7: "target_type_id", 8: "type_exists",
    9: "type_size", 10: "enumval_exists", 11: "enumval_value", 12: "type_matches",
}


@dataclass(frozen=True)
class CandidateReport:
    """One target type considered for a relocation."""

    source: str                 # "vmlinux", module name or BTF file
    type_id: int
    type_name: str
    matched: bool
    reason: str
    raw_spec: Optional[str] = None      # target access string when matched ("0:2:1")
    access: Optional[str] = None        # readable target access when matched
    bit_offset: Optional[int] = None
    value: Optional[int] = None         # relocated value this candidate yields

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TargetLocation:
    """Where the relocated entity lives in the target BTF."""

    source: str
    type_id: int
    type_name: str
    access: str
    raw_spec: str
    bit_offset: int

    @property
    def byte_offset(self) -> int:
        return self.bit_offset // 8

    def to_dict(self) -> Dict[str, Any]:
        out = dict(self.__dict__)
        out["byte_offset"] = self.byte_offset
        return out


@dataclass(frozen=True)
class CoreExplanation:
    """The full story of one CO-RE relocation.

    ``outcome`` is ``"patched"`` (instruction rewritten, possibly to the same
    value), ``"poisoned"`` (replaced by an invalid helper call because the
    target lacks what the local type describes) or ``"error"`` (``error``
    says why; the object cannot be loaded as is).
    """

    program: str
    insn_index: int               # index into the program's instruction tuple
    slot: int                     # 8-byte slot within the program
    kind: int
    kind_name: str
    local_type_id: int
    local_type: str               # "struct task_struct"
    access_str: str               # raw access string from .BTF.ext ("0:1:3")
    access: str                   # readable ("struct task_struct::se.exec_start")
    local_bit_offset: Optional[int]
    candidates: Tuple[CandidateReport, ...]
    target: Optional[TargetLocation]
    outcome: str
    orig_value: Optional[int]
    new_value: Optional[int]
    validated: bool
    orig_size: int = 0
    new_size: int = 0
    insn_before: str = ""
    insn_after: Tuple[str, ...] = ()
    change: str = ""              # short description ("off 16 -> 24")
    error: Optional[str] = None
    replacement: Tuple[Any, ...] = field(default=(), repr=False, compare=True)

    @property
    def ok(self) -> bool:
        return self.outcome != "error"

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (instructions as text and as raw fields)."""
        out: Dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "candidates":
                out[key] = [c.to_dict() for c in value]
            elif key == "target":
                out[key] = value.to_dict() if value is not None else None
            elif key == "replacement":
                out[key] = [
                    {"opcode": i.opcode, "dst": i.dst, "src": i.src, "off": i.off, "imm": i.imm}
                    for i in value
                ]
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out


def _hex(value: Optional[int]) -> str:
    if value is None:
        return "-"
    return f"{value}" if value < 10 else f"{value} ({value:#x})"


def format_explanation(e: CoreExplanation) -> str:
    """A multi-line, human readable account of one relocation."""
    lines: List[str] = []
    head = f"{e.program} insn #{e.insn_index}"
    if e.slot != e.insn_index:
        head += f" (slot {e.slot})"
    lines.append(f"{head}: <{e.kind_name}> {e.access}  [{e.local_type} id {e.local_type_id}, "
                 f"spec {e.access_str}]")
    if e.local_bit_offset is not None:
        lines.append(f"  local:     offset {_bits(e.local_bit_offset)}")
    if e.candidates:
        lines.append("  candidates:")
        for c in e.candidates:
            mark = "+" if c.matched else "-"
            extra = ""
            if c.matched and c.raw_spec:
                extra = f" -> {c.access} (spec {c.raw_spec}"
                extra += f", offset {_bits(c.bit_offset)})" if c.bit_offset is not None else ")"
            lines.append(f"    {mark} {c.source} [{c.type_id}] {c.type_name}: {c.reason}{extra}")
    elif e.kind != 6:
        lines.append("  candidates: none with this name in the target BTF")
    if e.target is not None:
        t = e.target
        lines.append(f"  target:    {t.source} [{t.type_id}] {t.access} (spec {t.raw_spec}, "
                     f"offset {_bits(t.bit_offset)})")
    if e.outcome == "error":
        lines.append(f"  ERROR:     {e.error}")
    elif e.outcome == "poisoned":
        why = e.change[len("poisoned "):] if e.change.startswith("poisoned ") else e.change
        lines.append(f"  poisoned:  {why}" if why else "  poisoned")
    else:
        value_line = f"  value:     {_hex(e.orig_value)} -> {_hex(e.new_value)}"
        if not e.validated:
            value_line += "  (original not checked)"
        if e.orig_size != e.new_size:
            value_line += f"  size {e.orig_size} -> {e.new_size} bytes"
        lines.append(value_line)
        lines.append(f"  {e.outcome}:  {e.change}" if e.change else f"  {e.outcome}")
    if e.insn_before:
        lines.append(f"  before:    {e.insn_before}")
    for i, text in enumerate(e.insn_after):
        lines.append(f"  {'after:    ' if i == 0 else '          '} {text}")
    return "\n".join(lines)


def _bits(bit_offset: Optional[int]) -> str:
    if bit_offset is None:
        return "-"
    if bit_offset % 8:
        return f"{bit_offset // 8}.{bit_offset % 8} (bit {bit_offset})"
    return f"{bit_offset // 8}"
