"""Disassembler in the kernel verifier's syntax (kernel/bpf/disasm.c).

The kernel prints instructions in a C-like notation, both in verifier logs
and in ``bpftool prog dump xlated``::

       0: (b7) r1 = 0
       1: (63) *(u32 *)(r10 -4) = r1
       2: (18) r1 = map[id:3]
       4: (85) call bpf_map_lookup_elem#1
       5: (15) if r0 == 0x0 goto pc+1
       6: (95) exit

:func:`format_instruction` produces the text after the ``(code)``;
:func:`disassemble` produces whole lines.  The notation follows disasm.c
exactly (``%+d`` offsets, signed decimal ALU immediates, hexadecimal jump
immediates, ``w`` registers for 32-bit operations), and 64-bit immediates with
a pseudo source follow bpftool's ``print_imm`` (``map[id:N]``,
``map[id:N][0]+OFF``, ``map[idx:N]+OFF``, ``subprog[+N]``).  Two pseudo
sources that bpftool never shows (the kernel rewrites them before a dump) get
readable forms of their own: ``map[idx:N]`` for ``BPF_PSEUDO_MAP_IDX`` and
``btf_id[N]`` for ``BPF_PSEUDO_BTF_ID``.  Encodings that the kernel would
print as ``BUG_..`` or with a missing operator, and opcodes outside the
instruction set (:data:`~purebpf.insn.opcodes.VALID_OPCODES`), are shown as
``unknown``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from purebpf.insn.helpers import HELPER_NAMES
from purebpf.insn.instruction import Instruction
from purebpf.insn.opcodes import (
    BPF_ABS,
    BPF_ADD,
    BPF_ADDR_SPACE_CAST,
    BPF_ALU,
    BPF_ALU64,
    BPF_AND,
    BPF_ATOMIC,
    BPF_CALL,
    BPF_CMPXCHG,
    BPF_DIV,
    BPF_DW,
    BPF_END,
    BPF_EXIT,
    BPF_FETCH,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JCOND,
    BPF_JMP,
    BPF_JMP32,
    BPF_LD,
    BPF_LDX,
    BPF_LOAD_ACQ,
    BPF_MAY_GOTO,
    BPF_MEM,
    BPF_MEMSX,
    BPF_MOD,
    BPF_MOV,
    BPF_NEG,
    BPF_OR,
    BPF_PSEUDO_BTF_ID,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_IDX,
    BPF_PSEUDO_MAP_IDX_VALUE,
    BPF_PSEUDO_MAP_VALUE,
    BPF_ST,
    BPF_STORE_REL,
    BPF_STX,
    BPF_TO_BE,
    BPF_X,
    BPF_XCHG,
    BPF_XOR,
    VALID_OPCODES,
)

__all__ = ["format_instruction", "disassemble", "UNKNOWN"]

#: Text shown for an encoding that is not a valid eBPF instruction.
UNKNOWN = "unknown"

#: ``bpf_alu_string``: assignment operator per ``BPF_OP >> 4``.
_ALU_OPS = {
    0x0: "+=", 0x1: "-=", 0x2: "*=", 0x3: "/=", 0x4: "|=", 0x5: "&=",
    0x6: "<<=", 0x7: ">>=", 0x9: "%=", 0xA: "^=", 0xB: "=", 0xC: "s>>=",
}
#: ``bpf_alu_sign_string``: cpu v4 signed division/modulo (``off == 1``).
_ALU_SIGNED_OPS = {0x3: "s/=", 0x9: "s%="}
#: ``bpf_movsx_string``: cpu v4 sign-extending move, indexed by ``off``.
_MOVSX_CASTS = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
#: ``bpf_atomic_alu_string``.
_ATOMIC_NAMES = {BPF_ADD: "add", BPF_AND: "and", BPF_OR: "or", BPF_XOR: "xor"}
#: ``bpf_ldst_string`` / ``bpf_ldsx_string`` per ``BPF_SIZE``.
_SIZE_NAMES = {0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64"}
_SIGNED_SIZE_NAMES = {0x00: "s32", 0x08: "s16", 0x10: "s8"}
#: ``bpf_jmp_string`` for conditional jumps per ``BPF_OP >> 4``.
_JMP_OPS = {
    0x1: "==", 0x2: ">", 0x3: ">=", 0x4: "&", 0x5: "!=", 0x6: "s>", 0x7: "s>=",
    0xA: "<", 0xB: "<=", 0xC: "s<", 0xD: "s<=",
}
#: ``BPF_ST | 0xc0``: the verifier-internal speculation barrier (seen in xlated dumps).
_BPF_NOSPEC = 0xC0
#: ``off == -1`` on ``BPF_ALU64 | BPF_MOV | BPF_X``: verifier-internal per-CPU address.
_BPF_ADDR_PERCPU = -1

KfuncNamer = Callable[[int], Optional[str]]


def _s32(value: int) -> int:
    """Reinterpret the low 32 bits of ``value`` as a signed int (C ``(s32)``)."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _s16(value: int) -> int:
    """Reinterpret the low 16 bits of ``value`` as a signed short (C ``(s16)``)."""
    value &= 0xFFFF
    return value - 0x10000 if value & 0x8000 else value


def _alu(insn: Instruction) -> Optional[str]:
    code, cls, op = insn.opcode, insn.opcode & 0x07, insn.opcode & 0xF0
    reg = "w" if cls == BPF_ALU else "r"
    dst, src, off = insn.dst, insn.src, _s16(insn.off)
    imm = _s32(insn.imm)
    if op == BPF_END:
        if cls == BPF_ALU64:
            return f"r{dst} = bswap{imm} r{dst}"
        order = "be" if code & 0x08 == BPF_TO_BE else "le"
        return f"r{dst} = {order}{imm} r{dst}"
    if op == BPF_NEG:
        return f"{reg}{dst} = -{reg}{dst}"
    if code == BPF_ALU64 | BPF_MOV | BPF_X and off == BPF_ADDR_SPACE_CAST:
        uimm = insn.imm & 0xFFFFFFFF
        return f"r{dst} = addr_space_cast(r{src}, {uimm >> 16}, {uimm & 0xFFFF})"
    if code == BPF_ALU64 | BPF_MOV | BPF_X and off == _BPF_ADDR_PERCPU:
        return f"r{dst} = &(void __percpu *)(r{src})"
    key = op >> 4
    if off == 1 and op in (BPF_DIV, BPF_MOD):
        opstr: Optional[str] = _ALU_SIGNED_OPS[key]
    else:
        opstr = _ALU_OPS.get(key)
    if opstr is None:
        return None
    if code & 0x08 == BPF_X:
        cast = _MOVSX_CASTS.get(off, "") if op == BPF_MOV else ""
        return f"{reg}{dst} {opstr} {cast}{reg}{src}"
    return f"{reg}{dst} {opstr} {imm}"


def _stx(insn: Instruction) -> Optional[str]:
    code, mode = insn.opcode, insn.opcode & 0xE0
    size = _SIZE_NAMES[code & 0x18]
    dst, src, off = insn.dst, insn.src, _s16(insn.off)
    if mode == BPF_MEM:
        return f"*({size} *)(r{dst} {off:+d}) = r{src}"
    if mode != BPF_ATOMIC:
        return None
    imm = _s32(insn.imm)
    bits = "64" if code & 0x18 == BPF_DW else ""
    if imm in _ATOMIC_NAMES:
        return f"lock *({size} *)(r{dst} {off:+d}) {_ALU_OPS[imm >> 4]} r{src}"
    if imm & ~BPF_FETCH in _ATOMIC_NAMES and imm & BPF_FETCH:
        name = _ATOMIC_NAMES[imm & ~BPF_FETCH]
        return f"r{src} = atomic{bits}_fetch_{name}(({size} *)(r{dst} {off:+d}), r{src})"
    if imm == BPF_CMPXCHG:
        return f"r0 = atomic{bits}_cmpxchg(({size} *)(r{dst} {off:+d}), r0, r{src})"
    if imm == BPF_XCHG:
        return f"r{src} = atomic{bits}_xchg(({size} *)(r{dst} {off:+d}), r{src})"
    if imm == BPF_LOAD_ACQ:
        return f"r{dst} = load_acquire(({size} *)(r{src} {off:+d}))"
    if imm == BPF_STORE_REL:
        return f"store_release(({size} *)(r{dst} {off:+d}), r{src})"
    return None


def _st(insn: Instruction) -> Optional[str]:
    mode = insn.opcode & 0xE0
    if mode == BPF_MEM:
        size = _SIZE_NAMES[insn.opcode & 0x18]
        return f"*({size} *)(r{insn.dst} {_s16(insn.off):+d}) = {_s32(insn.imm)}"
    if mode == _BPF_NOSPEC:
        return "nospec"
    return None


def _ldx(insn: Instruction) -> Optional[str]:
    mode, sz = insn.opcode & 0xE0, insn.opcode & 0x18
    if mode == BPF_MEM:
        size: Optional[str] = _SIZE_NAMES[sz]
    elif mode == BPF_MEMSX:
        size = _SIGNED_SIZE_NAMES.get(sz)
    else:
        return None
    if size is None:
        return None
    return f"r{insn.dst} = *({size} *)(r{insn.src} {_s16(insn.off):+d})"


def _ld_imm64_operand(insn: Instruction) -> str:
    """The right-hand side of an ld_imm64, following bpftool's ``print_imm``."""
    full = insn.imm & 0xFFFFFFFFFFFFFFFF
    lo, hi = full & 0xFFFFFFFF, full >> 32
    src = insn.src
    if src == BPF_PSEUDO_MAP_FD:
        return f"map[id:{lo}]"
    if src == BPF_PSEUDO_MAP_VALUE:
        return f"map[id:{lo}][0]+{hi}"
    if src == BPF_PSEUDO_MAP_IDX_VALUE:
        return f"map[idx:{lo}]+{hi}"
    if src == BPF_PSEUDO_FUNC:
        return f"subprog[{_s32(lo):+d}]"
    if src == BPF_PSEUDO_MAP_IDX:
        return f"map[idx:{lo}]"
    if src == BPF_PSEUDO_BTF_ID:
        return f"btf_id[{lo}]" if not hi else f"btf_id[{lo}]@btf_obj_fd[{hi}]"
    return f"{full:#x}"


def _ld(insn: Instruction) -> Optional[str]:
    code, mode = insn.opcode, insn.opcode & 0xE0
    size = _SIZE_NAMES[code & 0x18]
    if mode == BPF_ABS:
        return f"r0 = *({size} *)skb[{_s32(insn.imm)}]"
    if mode == BPF_IND:
        return f"r0 = *({size} *)skb[r{insn.src} + {_s32(insn.imm)}]"
    if mode == BPF_IMM and code & 0x18 == BPF_DW:
        return f"r{insn.dst} = {_ld_imm64_operand(insn)}"
    return None


def _call(insn: Instruction, kfunc_name: Optional[KfuncNamer]) -> str:
    imm = _s32(insn.imm)
    if insn.src == BPF_PSEUDO_CALL:
        return f"call pc{imm:+d}"
    name: Optional[str] = None
    if insn.src == 0:
        name = HELPER_NAMES.get(imm)
    elif insn.src == BPF_PSEUDO_KFUNC_CALL:
        name = (kfunc_name(imm) if kfunc_name is not None else None) or "kernel-function"
    return f"call {name or 'unknown'}#{imm}"


def _jmp(insn: Instruction, kfunc_name: Optional[KfuncNamer]) -> Optional[str]:
    code, cls, op = insn.opcode, insn.opcode & 0x07, insn.opcode & 0xF0
    off = _s16(insn.off)
    if op == BPF_CALL:
        return _call(insn, kfunc_name)
    if code == BPF_JMP | BPF_JA:
        return f"goto pc{off:+d}"
    if code == BPF_JMP | BPF_JA | BPF_X:
        return f"gotox r{insn.dst}"
    if code == BPF_JMP | BPF_JCOND and insn.src == BPF_MAY_GOTO:
        return f"may_goto pc{off:+d}"
    if code == BPF_JMP32 | BPF_JA:
        return f"gotol pc{_s32(insn.imm):+d}"
    if code == BPF_JMP | BPF_EXIT:
        return "exit"
    opstr = _JMP_OPS.get(op >> 4)
    if opstr is None:
        return None
    reg = "w" if cls == BPF_JMP32 else "r"
    if code & 0x08 == BPF_X:
        return f"if {reg}{insn.dst} {opstr} {reg}{insn.src} goto pc{off:+d}"
    return f"if {reg}{insn.dst} {opstr} {insn.imm & 0xFFFFFFFF:#x} goto pc{off:+d}"


def instruction_text(insn: Instruction, *, kfunc_name: Optional[KfuncNamer] = None) -> str:
    """The kernel's text for ``insn`` without the ``(code)`` prefix, or ``"unknown"``."""
    if insn.opcode not in VALID_OPCODES:
        return UNKNOWN
    cls = insn.opcode & 0x07
    text: Optional[str]
    if cls == BPF_ALU or cls == BPF_ALU64:
        text = _alu(insn)
    elif cls == BPF_STX:
        text = _stx(insn)
    elif cls == BPF_ST:
        text = _st(insn)
    elif cls == BPF_LDX:
        text = _ldx(insn)
    elif cls == BPF_LD:
        text = _ld(insn)
    else:  # BPF_JMP, BPF_JMP32
        text = _jmp(insn, kfunc_name)
    return UNKNOWN if text is None else text


def format_instruction(
    insn: Instruction,
    *,
    index: Optional[int] = None,
    kfunc_name: Optional[KfuncNamer] = None,
) -> str:
    """Format one instruction in the kernel verifier's syntax.

    Without ``index`` this is the bare text (``"r1 = *(u32 *)(r2 +8)"``);
    with ``index`` (the instruction's slot number) it is a whole bpftool-style
    line, ``"   5: (61) r1 = *(u32 *)(r2 +8)"``.  ``kfunc_name`` optionally
    maps a kfunc call's BTF id to a name (the kernel shows
    ``kernel-function`` when it cannot).
    """
    text = instruction_text(insn, kfunc_name=kfunc_name)
    if index is None:
        return text
    return f"{index:4d}: ({insn.opcode & 0xFF:02x}) {text}"


def disassemble(
    insns: Sequence[Instruction],
    *,
    annotate: Optional[Callable[[int, Instruction], Optional[str]]] = None,
    kfunc_name: Optional[KfuncNamer] = None,
) -> List[str]:
    """Disassemble a program, one line per instruction, bpftool style.

    Each line starts with the instruction's slot index (an ld_imm64 takes two
    slots, so the next index skips one) and the opcode in hex.  ``annotate``,
    called with ``(slot, insn)``, may return a note that is appended as
    ``  ; note`` (a relocation target, a source line, ...).
    """
    out: List[str] = []
    slot = 0
    for insn in insns:
        line = format_instruction(insn, index=slot, kfunc_name=kfunc_name)
        if annotate is not None:
            note = annotate(slot, insn)
            if note:
                line = f"{line}  ; {note}"
        out.append(line)
        slot += insn.slots
    return out
