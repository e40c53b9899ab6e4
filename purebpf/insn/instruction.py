"""The :class:`Instruction` model: one eBPF instruction as a frozen dataclass.

The kernel's ``struct bpf_insn`` (include/uapi/linux/bpf.h) is 8 bytes::

    struct bpf_insn {
        __u8    code;           /* opcode */
        __u8    dst_reg:4;      /* dest register */
        __u8    src_reg:4;      /* source register */
        __s16   off;            /* signed offset */
        __s32   imm;            /* signed immediate constant */
    };

The one exception is ``BPF_LD | BPF_IMM | BPF_DW`` ("ld_imm64"), which spans
two such slots: the first holds the low 32 bits of a 64-bit constant in
``imm``, the second (whose other fields must be zero) holds the high 32 bits.
Here that pair is a single :class:`Instruction` whose ``imm`` is the full
64-bit value, unsigned; ``slots`` tells how many 8-byte slots it takes.
Jump and call offsets always count slots, so use :func:`slot_offsets` to map
between list positions and slot numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from purebpf.insn.opcodes import (
    BPF_ABS,
    BPF_ALU,
    BPF_ALU64,
    BPF_ATOMIC,
    BPF_CALL,
    BPF_EXIT,
    BPF_IND,
    BPF_JMP,
    BPF_JMP32,
    BPF_LD,
    BPF_LDX,
    BPF_LOAD_ACQ,
    BPF_MEM,
    BPF_MEMSX,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_ST,
    BPF_STX,
    CALL_OPCODE,
    EXIT_OPCODE,
    LD_IMM64_OPCODE,
)

__all__ = ["Instruction", "slot_offsets", "index_by_slot"]


@dataclass(frozen=True)
class Instruction:
    """One eBPF instruction (two slots for ld_imm64).

    ``opcode`` is the raw 8-bit code (class | size/source | mode/op), ``dst``
    and ``src`` the register numbers (0-15 as stored), ``off`` the signed
    16-bit offset and ``imm`` the signed 32-bit immediate -- or, for ld_imm64,
    the unsigned 64-bit constant ``(hi32 << 32) | lo32``.

    ``second_slot`` only matters for a malformed ld_imm64 whose second slot
    has non-zero code/regs/off fields (the kernel rejects those); it keeps
    them, packed as ``code | dst << 8 | src << 12 | (off & 0xffff) << 16``, so
    that :func:`~purebpf.insn.encode` reproduces any decoded bytes exactly.
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    second_slot: int = dataclasses.field(default=0, repr=False)

    def __str__(self) -> str:
        """The instruction in the kernel verifier's syntax, e.g. ``r1 = *(u32 *)(r2 +8)``."""
        from purebpf.insn.disasm import format_instruction  # disasm imports this module

        return format_instruction(self)

    # -- opcode fields ---------------------------------------------------
    @property
    def cls(self) -> int:
        """Instruction class, ``BPF_CLASS(code)`` (see :class:`~purebpf.insn.opcodes.Class`)."""
        return self.opcode & 0x07

    @property
    def size_field(self) -> int:
        """``BPF_SIZE(code)`` for load/store classes."""
        return self.opcode & 0x18

    @property
    def mode(self) -> int:
        """``BPF_MODE(code)`` for load/store classes."""
        return self.opcode & 0xE0

    @property
    def op(self) -> int:
        """``BPF_OP(code)`` for ALU/JMP classes."""
        return self.opcode & 0xF0

    @property
    def source(self) -> int:
        """``BPF_SRC(code)`` for ALU/JMP classes: ``BPF_K`` (0) or ``BPF_X`` (8)."""
        return self.opcode & 0x08

    # -- size in the instruction stream ------------------------------------
    @property
    def is_ld_imm64(self) -> bool:
        """``BPF_LD | BPF_IMM | BPF_DW``: the two-slot 64-bit immediate load."""
        return self.opcode == LD_IMM64_OPCODE

    @property
    def slots(self) -> int:
        """Number of 8-byte ``struct bpf_insn`` slots: 2 for ld_imm64, else 1."""
        return 2 if self.opcode == LD_IMM64_OPCODE else 1

    @property
    def size(self) -> int:
        """Encoded size in bytes: 16 for ld_imm64, else 8."""
        return 16 if self.opcode == LD_IMM64_OPCODE else 8

    # -- classification ------------------------------------------------------
    @property
    def is_alu(self) -> bool:
        """ALU (32-bit) or ALU64 class."""
        return self.opcode & 0x07 in (BPF_ALU, BPF_ALU64)

    @property
    def is_call(self) -> bool:
        """``BPF_JMP | BPF_CALL`` of any kind (helper, bpf-to-bpf, kfunc)."""
        return self.opcode == CALL_OPCODE

    @property
    def is_helper_call(self) -> bool:
        """A call to a kernel helper: ``imm`` is an ``enum bpf_func_id``."""
        return self.opcode == CALL_OPCODE and self.src == 0

    @property
    def is_pseudo_call(self) -> bool:
        """A bpf-to-bpf call (``src == BPF_PSEUDO_CALL``); target slot is ``pc + 1 + imm``."""
        return self.opcode == CALL_OPCODE and self.src == BPF_PSEUDO_CALL

    @property
    def is_kfunc_call(self) -> bool:
        """A kfunc call (``src == BPF_PSEUDO_KFUNC_CALL``): ``imm`` is a kernel BTF id."""
        return self.opcode == CALL_OPCODE and self.src == BPF_PSEUDO_KFUNC_CALL

    @property
    def is_exit(self) -> bool:
        """``BPF_JMP | BPF_EXIT``: return ``r0``."""
        return self.opcode == EXIT_OPCODE

    @property
    def is_jump(self) -> bool:
        """A JMP/JMP32 branch (conditional, ``ja``/``gotol`` or ``may_goto``); not call/exit."""
        return self.opcode & 0x07 in (BPF_JMP, BPF_JMP32) and self.opcode & 0xF0 not in (BPF_CALL, BPF_EXIT)

    @property
    def is_atomic(self) -> bool:
        """``BPF_STX | BPF_ATOMIC`` (including load-acquire / store-release)."""
        return self.opcode & 0x07 == BPF_STX and self.opcode & 0xE0 == BPF_ATOMIC

    @property
    def is_load(self) -> bool:
        """Reads memory into a register: LDX (MEM, MEMSX), legacy LD_ABS/LD_IND, load-acquire."""
        cls = self.opcode & 0x07
        if cls == BPF_LDX:
            return self.opcode & 0xE0 in (BPF_MEM, BPF_MEMSX)
        if cls == BPF_LD:
            return self.opcode & 0xE0 in (BPF_ABS, BPF_IND)
        return self.is_atomic and self.imm == BPF_LOAD_ACQ

    @property
    def is_store(self) -> bool:
        """Writes memory: ST, STX MEM and every STX atomic except load-acquire."""
        cls = self.opcode & 0x07
        if cls == BPF_ST:
            return True
        if cls == BPF_STX:
            mode = self.opcode & 0xE0
            return mode == BPF_MEM or (mode == BPF_ATOMIC and self.imm != BPF_LOAD_ACQ)
        return False

    # -- targets -----------------------------------------------------------
    def jump_offset(self) -> Optional[int]:
        """Relative slot offset of a jump or pseudo call/func, else ``None``.

        For branches that is ``off`` (``imm`` for the 32-bit ``gotol``:
        ``BPF_JMP32 | BPF_JA``); for bpf-to-bpf calls and ``BPF_PSEUDO_FUNC``
        ld_imm64 it is ``imm``.  The target slot is ``slot + 1 + offset``.
        """
        if self.is_jump:
            if self.opcode & 0x07 == BPF_JMP32 and self.opcode & 0xF0 == 0:
                return self.imm
            return self.off
        if self.is_pseudo_call:
            return self.imm
        if self.opcode == LD_IMM64_OPCODE and self.src == BPF_PSEUDO_FUNC:
            lo = self.imm & 0xFFFFFFFF
            return lo - (1 << 32) if lo & 0x80000000 else lo
        return None

    # -- copies ------------------------------------------------------------
    def with_imm(self, imm: int) -> "Instruction":
        """A copy with ``imm`` replaced."""
        return dataclasses.replace(self, imm=imm)

    def with_off(self, off: int) -> "Instruction":
        """A copy with ``off`` replaced."""
        return dataclasses.replace(self, off=off)

    def with_src(self, src: int) -> "Instruction":
        """A copy with ``src`` replaced."""
        return dataclasses.replace(self, src=src)

    def with_dst(self, dst: int) -> "Instruction":
        """A copy with ``dst`` replaced."""
        return dataclasses.replace(self, dst=dst)

    def with_opcode(self, opcode: int) -> "Instruction":
        """A copy with ``opcode`` replaced."""
        return dataclasses.replace(self, opcode=opcode)


def slot_offsets(insns: Sequence[Instruction]) -> List[int]:
    """The slot index of each instruction (ld_imm64 takes two slots)."""
    out: List[int] = []
    slot = 0
    for insn in insns:
        out.append(slot)
        slot += 2 if insn.opcode == LD_IMM64_OPCODE else 1
    return out


def index_by_slot(insns: Sequence[Instruction]) -> Dict[int, int]:
    """Map each instruction's first slot index to its position in ``insns``."""
    return {slot: i for i, slot in enumerate(slot_offsets(insns))}
