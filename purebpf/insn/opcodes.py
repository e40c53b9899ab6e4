"""eBPF opcode constants, named as in ``include/uapi/linux/bpf_common.h`` and
``include/uapi/linux/bpf.h``.

An eBPF instruction's 8-bit ``code`` byte is split in three fields::

    +----------------+--------+--------------------+
    |   4 bits       |  1 bit |   3 bits           |
    | operation code | source | instruction class  |   ALU / ALU64 / JMP / JMP32
    +----------------+--------+--------------------+

    +--------+--------+-------------------+
    | 3 bits | 2 bits |   3 bits          |
    |  mode  |  size  | instruction class |   LD / LDX / ST / STX
    +--------+--------+-------------------+

(Documentation/bpf/standardization/instruction-set.rst, "Instruction
encoding").  The enums below keep the uapi names, so ``Class.BPF_ALU64`` is the
``BPF_ALU64`` macro and ``BPF_ALU64`` is also exported as a plain module
constant.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "Class", "Size", "Mode", "Source", "AluOp", "JmpOp", "AtomicOp",
    "PseudoSrc", "CallSrc",
    "class_of", "size_of", "mode_of", "source_of", "op_of",
    "SIZE_BYTES", "VALID_OPCODES", "is_valid_opcode", "LD_IMM64_OPCODE", "CALL_OPCODE", "EXIT_OPCODE",
    "BPF_LD", "BPF_LDX", "BPF_ST", "BPF_STX", "BPF_ALU", "BPF_JMP", "BPF_JMP32", "BPF_ALU64",
    "BPF_W", "BPF_H", "BPF_B", "BPF_DW",
    "BPF_IMM", "BPF_ABS", "BPF_IND", "BPF_MEM", "BPF_MEMSX", "BPF_ATOMIC",
    "BPF_K", "BPF_X", "BPF_TO_LE", "BPF_TO_BE", "BPF_FROM_LE", "BPF_FROM_BE",
    "BPF_ADD", "BPF_SUB", "BPF_MUL", "BPF_DIV", "BPF_OR", "BPF_AND", "BPF_LSH", "BPF_RSH",
    "BPF_NEG", "BPF_MOD", "BPF_XOR", "BPF_MOV", "BPF_ARSH", "BPF_END",
    "BPF_JA", "BPF_JEQ", "BPF_JGT", "BPF_JGE", "BPF_JSET", "BPF_JNE", "BPF_JSGT", "BPF_JSGE",
    "BPF_CALL", "BPF_EXIT", "BPF_JLT", "BPF_JLE", "BPF_JSLT", "BPF_JSLE", "BPF_JCOND",
    "BPF_FETCH", "BPF_XCHG", "BPF_CMPXCHG", "BPF_LOAD_ACQ", "BPF_STORE_REL",
    "BPF_PSEUDO_MAP_FD", "BPF_PSEUDO_MAP_VALUE", "BPF_PSEUDO_BTF_ID", "BPF_PSEUDO_FUNC",
    "BPF_PSEUDO_MAP_IDX", "BPF_PSEUDO_MAP_IDX_VALUE",
    "BPF_PSEUDO_CALL", "BPF_PSEUDO_KFUNC_CALL", "BPF_MAY_GOTO", "BPF_ADDR_SPACE_CAST",
]


class Class(IntEnum):
    """Instruction class: the low 3 bits of the opcode (``BPF_CLASS(code)``)."""

    BPF_LD = 0x00
    BPF_LDX = 0x01
    BPF_ST = 0x02
    BPF_STX = 0x03
    BPF_ALU = 0x04
    BPF_JMP = 0x05
    BPF_JMP32 = 0x06
    BPF_ALU64 = 0x07


class Size(IntEnum):
    """Access width of load/store classes (``BPF_SIZE(code)``, bits 3-4)."""

    BPF_W = 0x00   # 4 bytes
    BPF_H = 0x08   # 2 bytes
    BPF_B = 0x10   # 1 byte
    BPF_DW = 0x18  # 8 bytes


class Mode(IntEnum):
    """Addressing mode of load/store classes (``BPF_MODE(code)``, bits 5-7)."""

    BPF_IMM = 0x00     # 64-bit immediate (only with BPF_LD | BPF_DW)
    BPF_ABS = 0x20     # legacy packet access, absolute offset
    BPF_IND = 0x40     # legacy packet access, register + offset
    BPF_MEM = 0x60     # regular memory access
    BPF_MEMSX = 0x80   # sign-extending load (cpu v4); BPF_LEN in classic BPF
    BPF_ATOMIC = 0xC0  # atomic operation, kind in imm


class Source(IntEnum):
    """Operand source of ALU/JMP classes (``BPF_SRC(code)``, bit 3)."""

    BPF_K = 0x00  # 32-bit immediate
    BPF_X = 0x08  # source register


class AluOp(IntEnum):
    """Operation of ALU / ALU64 instructions (``BPF_OP(code)``, bits 4-7)."""

    BPF_ADD = 0x00
    BPF_SUB = 0x10
    BPF_MUL = 0x20
    BPF_DIV = 0x30   # sdiv when off == 1
    BPF_OR = 0x40
    BPF_AND = 0x50
    BPF_LSH = 0x60
    BPF_RSH = 0x70
    BPF_NEG = 0x80
    BPF_MOD = 0x90   # smod when off == 1
    BPF_XOR = 0xA0
    BPF_MOV = 0xB0   # movsx when off is 8/16/32; addr_space_cast when off == 1
    BPF_ARSH = 0xC0
    BPF_END = 0xD0   # byte swap


class JmpOp(IntEnum):
    """Operation of JMP / JMP32 instructions (``BPF_OP(code)``, bits 4-7)."""

    BPF_JA = 0x00
    BPF_JEQ = 0x10
    BPF_JGT = 0x20
    BPF_JGE = 0x30
    BPF_JSET = 0x40
    BPF_JNE = 0x50
    BPF_JSGT = 0x60
    BPF_JSGE = 0x70
    BPF_CALL = 0x80
    BPF_EXIT = 0x90
    BPF_JLT = 0xA0
    BPF_JLE = 0xB0
    BPF_JSLT = 0xC0
    BPF_JSLE = 0xD0
    BPF_JCOND = 0xE0  # conditional pseudo jump; src == BPF_MAY_GOTO


class AtomicOp(IntEnum):
    """The ``imm`` of a ``BPF_STX | BPF_ATOMIC`` instruction."""

    BPF_ADD = 0x00
    BPF_OR = 0x40
    BPF_AND = 0x50
    BPF_XOR = 0xA0
    BPF_FETCH_ADD = 0x01
    BPF_FETCH_OR = 0x41
    BPF_FETCH_AND = 0x51
    BPF_FETCH_XOR = 0xA1
    BPF_XCHG = 0xE1      # 0xe0 | BPF_FETCH
    BPF_CMPXCHG = 0xF1   # 0xf0 | BPF_FETCH
    BPF_LOAD_ACQ = 0x100
    BPF_STORE_REL = 0x110


class PseudoSrc(IntEnum):
    """``src_reg`` of a ``BPF_LD | BPF_IMM | BPF_DW`` (ld_imm64) instruction."""

    NONE = 0                     # plain 64-bit constant
    BPF_PSEUDO_MAP_FD = 1        # imm = map fd
    BPF_PSEUDO_MAP_VALUE = 2     # imm = map fd, next imm = offset in value
    BPF_PSEUDO_BTF_ID = 3        # imm = BTF id of a kernel variable (ksym)
    BPF_PSEUDO_FUNC = 4          # imm = relative offset of a subprogram
    BPF_PSEUDO_MAP_IDX = 5       # imm = index into fd_array
    BPF_PSEUDO_MAP_IDX_VALUE = 6  # imm = index into fd_array, next imm = offset


class CallSrc(IntEnum):
    """``src_reg`` of a ``BPF_JMP | BPF_CALL`` instruction."""

    HELPER = 0                  # imm = enum bpf_func_id
    BPF_PSEUDO_CALL = 1         # bpf-to-bpf call, imm = relative slot offset
    BPF_PSEUDO_KFUNC_CALL = 2   # imm = BTF id of a kernel function


# Plain module constants with the uapi macro names.
BPF_LD, BPF_LDX, BPF_ST, BPF_STX = 0x00, 0x01, 0x02, 0x03
BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = 0x04, 0x05, 0x06, 0x07
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_MEMSX, BPF_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
BPF_K, BPF_X = 0x00, 0x08
BPF_TO_LE, BPF_TO_BE = 0x00, 0x08
BPF_FROM_LE, BPF_FROM_BE = BPF_TO_LE, BPF_TO_BE
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV = 0x00, 0x10, 0x20, 0x30
BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = 0x40, 0x50, 0x60, 0x70
BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV = 0x80, 0x90, 0xA0, 0xB0
BPF_ARSH, BPF_END = 0xC0, 0xD0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE = 0x00, 0x10, 0x20, 0x30
BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE = 0x40, 0x50, 0x60, 0x70
BPF_CALL, BPF_EXIT, BPF_JLT, BPF_JLE = 0x80, 0x90, 0xA0, 0xB0
BPF_JSLT, BPF_JSLE, BPF_JCOND = 0xC0, 0xD0, 0xE0
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ = 0x100
BPF_STORE_REL = 0x110
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2
BPF_MAY_GOTO = 0          # src_reg of BPF_JMP | BPF_JCOND
BPF_ADDR_SPACE_CAST = 1   # off of BPF_ALU64 | BPF_MOV | BPF_X

#: Bytes accessed for each ``BPF_SIZE`` value.
SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}

LD_IMM64_OPCODE = BPF_LD | BPF_IMM | BPF_DW   # 0x18
CALL_OPCODE = BPF_JMP | BPF_CALL              # 0x85
EXIT_OPCODE = BPF_JMP | BPF_EXIT              # 0x95


def class_of(code: int) -> int:
    """``BPF_CLASS(code)``."""
    return code & 0x07


def size_of(code: int) -> int:
    """``BPF_SIZE(code)``."""
    return code & 0x18


def mode_of(code: int) -> int:
    """``BPF_MODE(code)``."""
    return code & 0xE0


def source_of(code: int) -> int:
    """``BPF_SRC(code)``."""
    return code & 0x08


def op_of(code: int) -> int:
    """``BPF_OP(code)``."""
    return code & 0xF0


def _valid_opcodes() -> "frozenset[int]":
    """Opcodes of the eBPF instruction set (the kernel's ``BPF_INSN_MAP`` in
    kernel/bpf/core.c, plus the encodings the verifier prints in translated
    programs: ``BPF_ST | BPF_NOSPEC`` and the ``gotox`` indirect jump)."""
    codes = set()
    alu_ops = (BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH,
               BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH)
    for cls in (BPF_ALU, BPF_ALU64):
        for alu in alu_ops:
            codes.add(cls | alu | BPF_K)
            codes.add(cls | alu | BPF_X)
        codes.add(cls | BPF_NEG | BPF_K)
    codes.update((BPF_ALU | BPF_END | BPF_TO_LE, BPF_ALU | BPF_END | BPF_TO_BE,
                  BPF_ALU64 | BPF_END | BPF_TO_LE))
    jmp_ops = (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
               BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE)
    for cls in (BPF_JMP, BPF_JMP32):
        for jmp in jmp_ops:
            codes.add(cls | jmp | BPF_K)
            codes.add(cls | jmp | BPF_X)
    codes.update((BPF_JMP | BPF_JA, BPF_JMP32 | BPF_JA, BPF_JMP | BPF_JA | BPF_X,
                  CALL_OPCODE, EXIT_OPCODE, BPF_JMP | BPF_JCOND))
    codes.add(LD_IMM64_OPCODE)
    for size in (BPF_W, BPF_H, BPF_B):
        codes.update((BPF_LD | BPF_ABS | size, BPF_LD | BPF_IND | size,
                      BPF_LDX | BPF_MEMSX | size))
    for size in (BPF_W, BPF_H, BPF_B, BPF_DW):
        codes.update((BPF_LDX | BPF_MEM | size, BPF_ST | BPF_MEM | size,
                      BPF_STX | BPF_MEM | size, BPF_STX | BPF_ATOMIC | size))
    codes.add(BPF_ST | 0xC0)  # BPF_NOSPEC, verifier-internal
    return frozenset(codes)


#: Every opcode byte that is an eBPF instruction (see :func:`is_valid_opcode`).
VALID_OPCODES = _valid_opcodes()


def is_valid_opcode(code: int) -> bool:
    """True when ``code`` is an opcode of the eBPF instruction set.

    This is a check of the opcode byte only; whether the other fields fit
    (an atomic's ``imm``, a byte swap's width) is the verifier's business.
    """
    return code in VALID_OPCODES
