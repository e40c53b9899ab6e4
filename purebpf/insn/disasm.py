"""Disassembler in the kernel verifier's syntax (kernel/bpf/disasm.c)."""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from purebpf.insn.instruction import Instruction

__all__ = ["format_instruction", "disassemble"]


def format_instruction(insn: Instruction, *, index: Optional[int] = None) -> str:
    """Placeholder: replaced by the full formatter."""
    return f"({insn.opcode:02x}) unknown"


def disassemble(
    insns: Sequence[Instruction],
    *,
    annotate: Optional[Callable[[int, Instruction], Optional[str]]] = None,
) -> List[str]:
    """One line per instruction, prefixed with its slot index."""
    out: List[str] = []
    slot = 0
    for insn in insns:
        out.append(f"{slot:4d}: {format_instruction(insn, index=slot)}")
        slot += insn.slots
    return out
