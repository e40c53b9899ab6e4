"""Instruction constructors, after the kernel's ``include/linux/filter.h`` macros.

The kernel and its selftests write hand-made programs with macros such as
``BPF_MOV64_IMM(BPF_REG_0, 0)`` and ``BPF_EXIT_INSN()``; these functions are
their lowercase Python counterparts, handy for feature probes and tests::

    from purebpf.insn import builders as b
    prog = [b.mov64_imm(0, 0), b.exit_insn()]      # r0 = 0; exit

Each returns one :class:`~purebpf.insn.Instruction` (ld_imm64 included).
"""

from __future__ import annotations

from purebpf.insn.instruction import Instruction
from purebpf.insn.opcodes import (
    BPF_ALU,
    BPF_ALU64,
    BPF_ATOMIC,
    BPF_CALL,
    BPF_END,
    BPF_EXIT,
    BPF_JA,
    BPF_JMP,
    BPF_JMP32,
    BPF_K,
    BPF_LDX,
    BPF_MEM,
    BPF_MEMSX,
    BPF_MOV,
    BPF_NEG,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    BPF_ST,
    BPF_STX,
    BPF_X,
    LD_IMM64_OPCODE,
)

__all__ = [
    "alu64_reg", "alu32_reg", "alu64_imm", "alu32_imm", "neg64", "neg32",
    "mov64_reg", "mov32_reg", "mov64_imm", "mov32_imm", "movsx64_reg",
    "endian", "bswap",
    "ld_imm64", "ld_map_fd", "ld_map_value", "ld_func",
    "ldx_mem", "ldx_memsx", "stx_mem", "st_mem", "atomic_op",
    "jmp_imm", "jmp_reg", "jmp32_imm", "jmp32_reg", "ja", "gotol",
    "call_helper", "call_pseudo", "call_kfunc", "exit_insn",
]


# -- ALU ---------------------------------------------------------------------

def alu64_reg(op: int, dst: int, src: int, off: int = 0) -> Instruction:
    """``BPF_ALU64_REG(OP, DST, SRC)``: ``dst op= src`` (``off=1`` makes DIV/MOD signed)."""
    return Instruction(BPF_ALU64 | op | BPF_X, dst, src, off, 0)


def alu32_reg(op: int, dst: int, src: int, off: int = 0) -> Instruction:
    """``BPF_ALU32_REG(OP, DST, SRC)``: ``wdst op= wsrc``."""
    return Instruction(BPF_ALU | op | BPF_X, dst, src, off, 0)


def alu64_imm(op: int, dst: int, imm: int, off: int = 0) -> Instruction:
    """``BPF_ALU64_IMM(OP, DST, IMM)``: ``dst op= imm``."""
    return Instruction(BPF_ALU64 | op | BPF_K, dst, 0, off, imm)


def alu32_imm(op: int, dst: int, imm: int, off: int = 0) -> Instruction:
    """``BPF_ALU32_IMM(OP, DST, IMM)``: ``wdst op= imm``."""
    return Instruction(BPF_ALU | op | BPF_K, dst, 0, off, imm)


def neg64(dst: int) -> Instruction:
    """``dst = -dst``."""
    return Instruction(BPF_ALU64 | BPF_NEG | BPF_K, dst)


def neg32(dst: int) -> Instruction:
    """``wdst = -wdst``."""
    return Instruction(BPF_ALU | BPF_NEG | BPF_K, dst)


def mov64_reg(dst: int, src: int) -> Instruction:
    """``BPF_MOV64_REG(DST, SRC)``: ``dst = src``."""
    return Instruction(BPF_ALU64 | BPF_MOV | BPF_X, dst, src)


def mov32_reg(dst: int, src: int) -> Instruction:
    """``BPF_MOV32_REG(DST, SRC)``: ``wdst = wsrc`` (zero-extends)."""
    return Instruction(BPF_ALU | BPF_MOV | BPF_X, dst, src)


def mov64_imm(dst: int, imm: int) -> Instruction:
    """``BPF_MOV64_IMM(DST, IMM)``: ``dst = imm`` (sign-extended 32-bit immediate)."""
    return Instruction(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)


def mov32_imm(dst: int, imm: int) -> Instruction:
    """``BPF_MOV32_IMM(DST, IMM)``: ``wdst = imm``."""
    return Instruction(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm)


def movsx64_reg(dst: int, src: int, bits: int) -> Instruction:
    """``BPF_MOVSX64_REG``: ``dst = (s8/s16/s32)src`` (cpu v4); ``bits`` is 8, 16 or 32."""
    if bits not in (8, 16, 32):
        raise ValueError(f"movsx widths are 8, 16 or 32, not {bits}")
    return Instruction(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, bits, 0)


def endian(dst: int, bits: int, *, big: bool) -> Instruction:
    """``BPF_ENDIAN(TYPE, DST, LEN)``: ``dst = be16/le32/... dst``."""
    return Instruction(BPF_ALU | BPF_END | (BPF_X if big else BPF_K), dst, 0, 0, bits)


def bswap(dst: int, bits: int) -> Instruction:
    """``BPF_BSWAP(DST, LEN)``: unconditional byte swap ``dst = bswapN dst`` (cpu v4)."""
    return Instruction(BPF_ALU64 | BPF_END | BPF_K, dst, 0, 0, bits)


# -- 64-bit immediates ------------------------------------------------------------

def ld_imm64(dst: int, value: int, src: int = 0) -> Instruction:
    """``BPF_LD_IMM64_RAW(DST, SRC, IMM)``: the two-slot ``dst = value``."""
    return Instruction(LD_IMM64_OPCODE, dst, src, 0, value & 0xFFFFFFFFFFFFFFFF)


def ld_map_fd(dst: int, map_fd: int) -> Instruction:
    """``BPF_LD_MAP_FD(DST, MAP_FD)``: ``dst = &map`` for the map behind ``map_fd``."""
    return ld_imm64(dst, map_fd & 0xFFFFFFFF, BPF_PSEUDO_MAP_FD)


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> Instruction:
    """``BPF_LD_MAP_VALUE(DST, MAP_FD, OFF)``: ``dst = &value[0] + offset`` of an array map."""
    return ld_imm64(dst, (offset & 0xFFFFFFFF) << 32 | (map_fd & 0xFFFFFFFF), BPF_PSEUDO_MAP_VALUE)


def ld_func(dst: int, rel: int) -> Instruction:
    """``dst = &subprogram`` (``BPF_PSEUDO_FUNC``), ``rel`` slots after the next one."""
    return ld_imm64(dst, rel & 0xFFFFFFFF, BPF_PSEUDO_FUNC)


# -- memory ------------------------------------------------------------------------

def ldx_mem(size: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_LDX_MEM(SIZE, DST, SRC, OFF)``: ``dst = *(size *)(src + off)``."""
    return Instruction(BPF_LDX | size | BPF_MEM, dst, src, off, 0)


def ldx_memsx(size: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_LDX_MEMSX(SIZE, DST, SRC, OFF)``: sign-extending load (cpu v4)."""
    return Instruction(BPF_LDX | size | BPF_MEMSX, dst, src, off, 0)


def stx_mem(size: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_STX_MEM(SIZE, DST, SRC, OFF)``: ``*(size *)(dst + off) = src``."""
    return Instruction(BPF_STX | size | BPF_MEM, dst, src, off, 0)


def st_mem(size: int, dst: int, off: int, imm: int) -> Instruction:
    """``BPF_ST_MEM(SIZE, DST, OFF, IMM)``: ``*(size *)(dst + off) = imm``."""
    return Instruction(BPF_ST | size | BPF_MEM, dst, 0, off, imm)


def atomic_op(size: int, op: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_ATOMIC_OP(SIZE, OP, DST, SRC, OFF)``: ``op`` is e.g. ``BPF_ADD | BPF_FETCH``."""
    return Instruction(BPF_STX | size | BPF_ATOMIC, dst, src, off, op)


# -- jumps and calls -----------------------------------------------------------------

def jmp_imm(op: int, dst: int, imm: int, off: int) -> Instruction:
    """``BPF_JMP_IMM(OP, DST, IMM, OFF)``: ``if dst op imm goto pc+off``."""
    return Instruction(BPF_JMP | op | BPF_K, dst, 0, off, imm)


def jmp_reg(op: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_JMP_REG(OP, DST, SRC, OFF)``: ``if dst op src goto pc+off``."""
    return Instruction(BPF_JMP | op | BPF_X, dst, src, off, 0)


def jmp32_imm(op: int, dst: int, imm: int, off: int) -> Instruction:
    """``BPF_JMP32_IMM(OP, DST, IMM, OFF)``: 32-bit comparison."""
    return Instruction(BPF_JMP32 | op | BPF_K, dst, 0, off, imm)


def jmp32_reg(op: int, dst: int, src: int, off: int) -> Instruction:
    """``BPF_JMP32_REG(OP, DST, SRC, OFF)``: 32-bit comparison."""
    return Instruction(BPF_JMP32 | op | BPF_X, dst, src, off, 0)


def ja(off: int) -> Instruction:
    """``BPF_JMP_A(OFF)``: ``goto pc+off``."""
    return Instruction(BPF_JMP | BPF_JA, 0, 0, off, 0)


def gotol(rel: int) -> Instruction:
    """``BPF_JMP32_A(IMM)``: ``gotol pc+rel`` with a 32-bit offset (cpu v4)."""
    return Instruction(BPF_JMP32 | BPF_JA, 0, 0, 0, rel)


def call_helper(func_id: int) -> Instruction:
    """``BPF_EMIT_CALL(FUNC)``: call the helper numbered ``func_id`` (``enum bpf_func_id``)."""
    return Instruction(BPF_JMP | BPF_CALL, 0, 0, 0, func_id)


def call_pseudo(rel: int) -> Instruction:
    """``BPF_CALL_REL(IMM)``: bpf-to-bpf call to slot ``pc + 1 + rel``."""
    return Instruction(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel)


def call_kfunc(btf_id: int, btf_fd_index: int = 0) -> Instruction:
    """``BPF_CALL_KFUNC(OFF, IMM)``: call a kernel function by BTF id (``off`` picks a module BTF)."""
    return Instruction(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, btf_fd_index, btf_id)


def exit_insn() -> Instruction:
    """``BPF_EXIT_INSN()``: return ``r0``."""
    return Instruction(BPF_JMP | BPF_EXIT)
