"""eBPF instructions: decode/encode, opcode constants, helper ids, disassembler.

``decode`` turns a program section's bytes into :class:`Instruction` objects
(an ld_imm64 pair is one object spanning two slots), ``encode`` is its exact
inverse, and ``disassemble`` / ``format_instruction`` print instructions the
way the kernel verifier and ``bpftool prog dump xlated`` do
(kernel/bpf/disasm.c).  This package knows nothing about ELF or the kernel.
"""

from __future__ import annotations

from purebpf.insn import builders
from purebpf.insn.codec import INSN_SIZE, decode, encode
from purebpf.insn.disasm import disassemble, format_instruction
from purebpf.insn.helpers import HELPER_IDS, HELPER_NAMES, helper_id, helper_name
from purebpf.insn.instruction import Instruction, index_by_slot, slot_offsets
from purebpf.insn.opcodes import (
    AluOp,
    AtomicOp,
    CallSrc,
    Class,
    JmpOp,
    Mode,
    PseudoSrc,
    Size,
    Source,
    VALID_OPCODES,
    is_valid_opcode,
)

__all__ = [
    "Instruction",
    "builders",
    "decode",
    "encode",
    "disassemble",
    "format_instruction",
    "HELPER_NAMES",
    "HELPER_IDS",
    "helper_name",
    "helper_id",
    "slot_offsets",
    "index_by_slot",
    "INSN_SIZE",
    "Class",
    "Size",
    "Mode",
    "Source",
    "AluOp",
    "JmpOp",
    "AtomicOp",
    "PseudoSrc",
    "CallSrc",
    "VALID_OPCODES",
    "is_valid_opcode",
]
