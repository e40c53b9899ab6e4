"""purebpf.insn: decode/encode, instruction model and helper ids.

Oracles: the bytes clang-19 writes (round trip), llvm-readelf/pyelftools for
which sections hold code, the kernel's own ``enum bpf_func_id`` (vmlinux BTF
through bpftool) and libbpf's bpf_helper_defs.h for helper numbers.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purebpf.errors import InstructionError, PurebpfError
from purebpf.insn import (
    HELPER_IDS,
    HELPER_NAMES,
    Instruction,
    decode,
    encode,
    helper_id,
    helper_name,
    index_by_slot,
    slot_offsets,
)
from purebpf.insn import opcodes as op

from conftest import fixture_objects

CLANG = "clang-19"

# ---------------------------------------------------------------------------
# A corpus of our own objects, built with clang-19, so the tests do not depend
# on which fixtures exist yet.  ISA_ASM names every instruction form LLVM 19
# can assemble; C_PROG exercises what the C compiler emits (maps, helpers,
# bpf-to-bpf calls, callbacks, atomics, byte swaps, sign extension).
# ---------------------------------------------------------------------------

ISA_ASM = r"""
	.text
	.globl	prog
	.type	prog,@function
prog:
	r0 = 1
	w0 = -7
	r0 += r1
	w0 += w1
	r1 -= 3
	w1 -= w2
	r1 *= r2
	w1 *= 7
	r1 /= 3
	w1 /= w2
	r1 s/= r2
	w1 s/= 5
	r1 s%= r2
	w1 s%= 5
	r1 %= r2
	w1 %= 9
	r1 |= r2
	w1 |= 1
	r1 &= 0xff
	w1 &= w3
	r1 <<= 3
	w1 <<= w2
	r1 >>= r2
	w1 >>= 4
	r1 s>>= 3
	w1 s>>= w2
	r1 ^= r2
	w1 ^= -1
	r0 = -r0
	w0 = -w0
	r1 = r2
	w1 = w2
	r1 = 2147483647
	r1 = -2147483648
	r1 = (s8)r2
	r1 = (s16)r2
	r1 = (s32)r2
	w1 = (s8)w2
	w1 = (s16)w2
	r0 = be16 r0
	r0 = be32 r0
	r0 = be64 r0
	r0 = le16 r0
	r0 = le32 r0
	r0 = le64 r0
	r0 = bswap16 r0
	r0 = bswap32 r0
	r0 = bswap64 r0
	r0 = *(u8 *)(r1 + 8)
	r0 = *(u16 *)(r1 - 8)
	r0 = *(u32 *)(r1 + 0)
	r0 = *(u64 *)(r1 + 32767)
	r0 = *(u64 *)(r1 - 32768)
	r0 = *(s8 *)(r1 + 8)
	r0 = *(s16 *)(r1 + 8)
	r0 = *(s32 *)(r1 + 8)
	*(u8 *)(r10 - 1) = r1
	*(u16 *)(r10 - 2) = r1
	*(u32 *)(r10 - 4) = r1
	*(u64 *)(r10 - 8) = r1
	*(u8 *)(r10 - 1) = 1
	*(u16 *)(r10 - 2) = -2
	*(u32 *)(r10 - 4) = 3
	*(u64 *)(r10 - 8) = 4
	lock *(u32 *)(r1 + 0) += w2
	lock *(u64 *)(r1 + 8) += r2
	lock *(u32 *)(r1 + 0) |= w2
	lock *(u64 *)(r1 + 0) |= r2
	lock *(u32 *)(r1 + 0) &= w2
	lock *(u64 *)(r1 + 0) &= r2
	lock *(u32 *)(r1 + 0) ^= w2
	lock *(u64 *)(r1 + 0) ^= r2
	w2 = atomic_fetch_add((u32 *)(r1 + 0), w2)
	r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)
	w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)
	r2 = atomic_fetch_or((u64 *)(r1 + 0), r2)
	w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)
	r2 = atomic_fetch_and((u64 *)(r1 + 0), r2)
	w2 = atomic_fetch_xor((u32 *)(r1 + 0), w2)
	r2 = atomic_fetch_xor((u64 *)(r1 + 0), r2)
	w2 = xchg32_32(r1 + 4, w2)
	r2 = xchg_64(r1 + 8, r2)
	w0 = cmpxchg32_32(r1 + 4, w0, w2)
	r0 = cmpxchg_64(r1 + 8, r0, r2)
	r0 = *(u8 *)skb[1]
	r0 = *(u16 *)skb[2]
	r0 = *(u32 *)skb[3]
	r0 = *(u8 *)skb[r1]
	r0 = *(u16 *)skb[r1]
	r0 = *(u32 *)skb[r1]
	r1 = 0x123456789abcdef0 ll
	r2 = -1 ll
	r3 = 0 ll
	if r1 == 5 goto +1
	if r1 == r2 goto +1
	if r1 != 5 goto +1
	if r1 != r2 goto +1
	if r1 > -1 goto +1
	if r1 > r2 goto +1
	if r1 >= 7 goto -1
	if r1 >= r2 goto -1
	if r1 < 5 goto +1
	if r1 < r2 goto +1
	if r1 <= 5 goto +1
	if r1 <= r2 goto +1
	if r1 s> 5 goto +1
	if r1 s> r2 goto +1
	if r1 s>= 5 goto +1
	if r1 s>= r2 goto +1
	if r1 s< -5 goto +1
	if r1 s< r2 goto +1
	if r1 s<= 5 goto +1
	if r1 s<= r2 goto +1
	if r1 & 8 goto +1
	if r1 & r2 goto +1
	if w1 == 5 goto +1
	if w1 == w2 goto +1
	if w1 != w2 goto +1
	if w1 > 5 goto +1
	if w1 >= w2 goto +1
	if w1 < 5 goto +1
	if w1 <= w2 goto +1
	if w1 s> 5 goto +1
	if w1 s>= w2 goto +1
	if w1 s< -3 goto +1
	if w1 s<= w2 goto +1
	if w1 & w2 goto +1
	if w1 & 0x10 goto +1
	goto +1
	goto -32768
	gotol +1
	gotol -3
	may_goto +1
	r1 = addr_space_cast(r2, 0, 1)
	r1 = addr_space_cast(r2, 1, 0)
	call 1
	call 211
	call sub
	exit
sub:
	r0 = 0
	exit
"""

C_PROG = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

volatile __u64 total;
volatile __s64 stotal;
volatile __u32 small;
char buf[64];

static __noinline int add_one(int x) { return x + 1; }

static int loop_cb(__u32 idx, void *ctx)
{
	__sync_fetch_and_add(&total, idx);
	return 0;
}

SEC("socket")
int sock_prog(struct __sk_buff *skb)
{
	__u32 key = skb->len & 63;
	__u64 *val = bpf_map_lookup_elem(&counts, &key);
	if (!val) {
		__u64 one = 1;
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
		return 0;
	}
	__sync_fetch_and_add(val, 1);
	__sync_fetch_and_or(val, 2);
	__sync_fetch_and_and(val, ~4ULL);
	__sync_fetch_and_xor(val, 8);
	__u64 old = __sync_val_compare_and_swap(val, 5, 6);
	__u64 prev = __atomic_exchange_n(val, old, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&small, 3, __ATOMIC_RELAXED);
	bpf_loop(4, loop_cb, 0, 0);
	stotal = (__s64)(__s8)skb->mark + (__s64)(__s16)skb->priority + (__s32)skb->hash;
	total = __builtin_bswap64(prev) ^ __builtin_bswap32(skb->len) ^ __builtin_bswap16(skb->protocol);
#if __BPF_CPU_VERSION__ >= 4
	stotal = stotal / (__s64)(skb->len | 1) + stotal % 7;
#endif
	return add_one(skb->len) + bpf_get_prandom_u32() % 3;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_prog(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	bpf_probe_read_kernel(buf, sizeof(buf), ctx);
	bpf_printk("pid %d", id >> 32);
	for (int i = 0; i < 16; i++)
		if (buf[i] == 'x')
			return i;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

#: (name, source kind, extra clang flags) for every corpus object.
CORPUS_BUILDS: List[Tuple[str, str, List[str]]] = [
    ("isa.bpfel.o", "asm", ["-target", "bpfel"]),
    ("isa.bpfeb.o", "asm", ["-target", "bpfeb"]),
    ("prog_v2.bpfel.o", "c", ["-target", "bpfel", "-mcpu=v2"]),
    ("prog_v3.bpfel.o", "c", ["-target", "bpfel", "-mcpu=v3"]),
    ("prog_v4.bpfel.o", "c", ["-target", "bpfel", "-mcpu=v4"]),
    ("prog_v4.bpfeb.o", "c", ["-target", "bpfeb", "-mcpu=v4"]),
    ("prog_v3.bpfeb.o", "c", ["-target", "bpfeb", "-mcpu=v3"]),
]


def _multiarch_include() -> List[str]:
    """Debian keeps asm/types.h under the multiarch directory."""
    out = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True, check=False)
    arch = out.stdout.strip()
    return [f"-I/usr/include/{arch}"] if arch else []


def build_corpus(directory: Path) -> List[Path]:
    """Compile every corpus object into ``directory``; return their paths."""
    if shutil.which(CLANG) is None:
        pytest.skip(f"{CLANG} not installed")
    asm = directory / "isa.s"
    asm.write_text(ISA_ASM)
    csrc = directory / "prog.bpf.c"
    csrc.write_text(C_PROG)
    paths = []
    for name, kind, flags in CORPUS_BUILDS:
        out = directory / name
        if kind == "asm":
            cmd = [CLANG, *flags, "-c", str(asm), "-o", str(out)]
        else:
            cmd = [CLANG, *flags, "-O2", "-g", *_multiarch_include(), "-c", str(csrc), "-o", str(out)]
        subprocess.run(cmd, check=True, capture_output=True)
        paths.append(out)
    return paths


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    return build_corpus(tmp_path_factory.mktemp("insn_corpus"))


def code_sections(path: Path) -> Iterator[Tuple[str, bytes, str]]:
    """(section name, bytes, byte order) of every executable section of an ELF object."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        byteorder = "little" if elf.little_endian else "big"
        for sec in elf.iter_sections():
            if sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and sec["sh_type"] == "SHT_PROGBITS" and sec["sh_size"]:
                yield sec.name, sec.data(), byteorder


def all_objects(corpus: List[Path]) -> List[Path]:
    return list(corpus) + fixture_objects()


# ---------------------------------------------------------------------------
# Round trip over real compiler output
# ---------------------------------------------------------------------------

def test_corpus_round_trip(corpus: List[Path]) -> None:
    seen_big = seen_little = 0
    sections = 0
    for path in all_objects(corpus):
        for name, data, byteorder in code_sections(path):
            insns = decode(data, byteorder, file=str(path), section=name)
            assert encode(insns, byteorder) == data, (path, name)
            assert sum(i.slots for i in insns) * 8 == len(data)
            sections += 1
            if byteorder == "big":
                seen_big += 1
            else:
                seen_little += 1
    assert sections >= 8 and seen_big >= 2 and seen_little >= 4


@pytest.mark.parametrize("path", fixture_objects(), ids=lambda p: p.name)
def test_fixture_round_trip(path: Path) -> None:
    found = False
    for name, data, byteorder in code_sections(path):
        found = True
        insns = decode(data, byteorder, file=str(path), section=name)
        assert encode(insns, byteorder) == data
    assert found, f"{path} has no executable section"


def _objdump_raw(path: Path) -> Dict[str, Dict[int, bytes]]:
    """Raw bytes of each instruction, per section, as llvm-objdump-19 splits them."""
    out = subprocess.run(["llvm-objdump-19", "-d", "--mcpu=v4", str(path)],
                         capture_output=True, text=True, check=True).stdout
    result: Dict[str, Dict[int, bytes]] = {}
    current: Dict[int, bytes] = {}
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (.*):$", line)
        if m:
            current = result.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s*(\d+):\t([0-9a-f]{2}(?: [0-9a-f]{2})*)(?:\t|$)", line)
        if m:
            current[int(m.group(1))] = bytes.fromhex(m.group(2).replace(" ", ""))
    return result


def test_fields_match_llvm_objdump_raw_bytes(corpus: List[Path]) -> None:
    """Each decoded instruction sits at the slot llvm-objdump shows, with its bytes.

    llvm-objdump is an independent splitter of the instruction stream (it too
    treats ld_imm64 as 16 bytes); the fields are checked against an
    independent struct unpack of those bytes.
    """
    checked = 0
    for path in all_objects(corpus):
        raw = _objdump_raw(path)
        for name, data, byteorder in code_sections(path):
            insns = decode(data, byteorder)
            slots = slot_offsets(insns)
            assert sorted(raw[name]) == slots, (path, name)
            for slot, insn in zip(slots, insns):
                b = raw[name][slot]
                assert len(b) == insn.size
                fmt = "<BBhi" if byteorder == "little" else ">BBhi"
                code, regs, off, imm = struct.unpack(fmt, b[:8])
                dst, src = (regs & 15, regs >> 4) if byteorder == "little" else (regs >> 4, regs & 15)
                assert (insn.opcode, insn.dst, insn.src, insn.off) == (code, dst, src, off)
                if insn.is_ld_imm64:
                    hi = struct.unpack(fmt, b[8:])[3]
                    assert insn.imm == ((hi & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF)
                else:
                    assert insn.imm == imm
                checked += 1
    assert checked > 300


# ---------------------------------------------------------------------------
# Byte order
# ---------------------------------------------------------------------------

def test_big_endian_register_nibbles() -> None:
    # r1 = r2 (bf) then *(u32 *)(r10 -4) = r1 (63), as bpfeb writes them.
    data = bytes.fromhex("bf12000000000000" "63a1fffc00000000")
    insns = decode(data, "big")
    assert (insns[0].dst, insns[0].src) == (1, 2)
    assert (insns[1].dst, insns[1].src, insns[1].off) == (10, 1, -4)
    assert encode(insns, "big") == data
    # The same bytes read as little endian swap the registers.
    le = decode(data, "little")
    assert (le[0].dst, le[0].src) == (2, 1)


def test_big_and_little_objects_decode_alike(corpus: List[Path]) -> None:
    """bpfel and bpfeb builds of the same source decode to the same instructions."""
    by_name = {p.name: p for p in corpus}
    for le_name, be_name in (("isa.bpfel.o", "isa.bpfeb.o"), ("prog_v4.bpfel.o", "prog_v4.bpfeb.o")):
        le = {n: decode(d, bo) for n, d, bo in code_sections(by_name[le_name])}
        be = {n: decode(d, bo) for n, d, bo in code_sections(by_name[be_name])}
        assert le.keys() == be.keys()
        differing = 0
        for name in le:
            assert len(le[name]) == len(be[name])
            for a, b in zip(le[name], be[name]):
                if a != b:
                    # Only byte-order dependent code differs: le/be swaps flip
                    # between BPF_TO_LE and BPF_TO_BE.
                    assert a.op == op.BPF_END and b.op == op.BPF_END, (name, a, b)
                    differing += 1
        if le_name == "isa.bpfel.o":
            assert differing == 0


def test_ld_imm64_spans_two_slots() -> None:
    insn = Instruction(op.LD_IMM64_OPCODE, dst=1, imm=0x123456789ABCDEF0)
    data = encode([insn, Instruction(op.EXIT_OPCODE)])
    assert len(data) == 24
    assert struct.unpack("<BBhi", data[:8]) == (0x18, 1, 0, struct.unpack("<i", struct.pack("<I", 0x9ABCDEF0))[0])
    assert struct.unpack("<BBhi", data[8:16]) == (0, 0, 0, 0x12345678)
    back = decode(data)
    assert back[0] == insn and back[0].slots == 2 and back[0].size == 16
    assert slot_offsets(back) == [0, 2]
    assert index_by_slot(back) == {0: 0, 2: 1}
    # negative constants are accepted and stored two's complement
    assert decode(encode([insn.with_imm(-1)]))[0].imm == 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 7, 9, 15, 17, 23])
def test_length_not_multiple_of_8(length: int) -> None:
    with pytest.raises(InstructionError) as info:
        decode(b"\x95" + b"\x00" * (length - 1), file="x.o", section="xdp")
    err = info.value
    assert err.file == "x.o" and err.section == "xdp"
    assert err.offset == length - length % 8


def test_truncated_ld_imm64() -> None:
    data = encode([Instruction(0xB7, dst=0), Instruction(0xB7, dst=1)]) + bytes([0x18, 1]) + bytes(6)
    with pytest.raises(InstructionError) as info:
        decode(data, section="tc")
    assert info.value.offset == 16 and info.value.section == "tc"
    assert "second" in info.value.reason


def test_unknown_opcodes_decode() -> None:
    data = bytes([0xFF, 0x21, 1, 0, 2, 0, 0, 0, 0x0E, 0, 0, 0, 0, 0, 0, 0])
    insns = decode(data)
    assert [i.opcode for i in insns] == [0xFF, 0x0E]
    assert encode(insns) == data


def test_ld_imm64_with_nonzero_reserved_fields_round_trips() -> None:
    for byteorder in ("little", "big"):
        data = bytes([0x18, 0x12, 0, 0, 1, 0, 0, 0, 0xB7, 0x34, 0x56, 0x78, 2, 0, 0, 0])
        insns = decode(data, byteorder)
        assert len(insns) == 1 and insns[0].second_slot != 0
        assert encode(insns, byteorder) == data


@pytest.mark.parametrize("bad", [
    Instruction(0x100), Instruction(0xB7, dst=16), Instruction(0xB7, src=-1),
    Instruction(0xB7, off=0x8000), Instruction(0xB7, imm=1 << 32), Instruction(0xB7, imm=-(1 << 31) - 1),
    Instruction(0x18, imm=1 << 64),
])
def test_encode_rejects_out_of_range_fields(bad: Instruction) -> None:
    with pytest.raises(InstructionError):
        encode([Instruction(0x95), bad])


def test_encode_accepts_unsigned_32bit_imm() -> None:
    assert decode(encode([Instruction(0xB7, imm=0xFFFFFFFF)]))[0].imm == -1


def test_bad_byteorder() -> None:
    with pytest.raises(ValueError):
        decode(b"", "middle")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from(["little", "big"]))
def test_random_bytes_decode_or_raise_instruction_error(data: bytes, byteorder: str) -> None:
    try:
        insns = decode(data, byteorder)
    except InstructionError as err:
        assert err.offset is not None
        return
    except Exception as err:  # pragma: no cover - the assertion is the point
        raise AssertionError(f"foreign exception {type(err).__name__}: {err}") from err
    assert encode(insns, byteorder) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=8), max_size=30), st.sampled_from(["little", "big"]))
def test_random_whole_slots_round_trip(slots: List[bytes], byteorder: str) -> None:
    data = b"".join(slots)
    try:
        insns = decode(data, byteorder)
    except PurebpfError as err:
        assert isinstance(err, InstructionError)
        # only a trailing ld_imm64 without its partner can fail
        assert data[err.offset or 0] == 0x18 and err.offset == len(data) - 8
        return
    assert encode(insns, byteorder) == data


# ---------------------------------------------------------------------------
# Instruction model
# ---------------------------------------------------------------------------

def test_classification_properties() -> None:
    call = Instruction(op.CALL_OPCODE, imm=1)
    assert call.is_call and call.is_helper_call and not call.is_pseudo_call and not call.is_jump
    assert call.with_src(op.BPF_PSEUDO_CALL).is_pseudo_call
    assert call.with_src(op.BPF_PSEUDO_KFUNC_CALL).is_kfunc_call
    assert Instruction(op.EXIT_OPCODE).is_exit
    ja = Instruction(op.BPF_JMP | op.BPF_JA, off=-3)
    assert ja.is_jump and ja.jump_offset() == -3
    gotol = Instruction(op.BPF_JMP32 | op.BPF_JA, imm=70000)
    assert gotol.is_jump and gotol.jump_offset() == 70000
    assert Instruction(op.BPF_JMP | op.BPF_JCOND, off=2).is_jump
    ldx = Instruction(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 1, 2, 8)
    assert ldx.is_load and not ldx.is_store and ldx.cls == op.BPF_LDX
    assert Instruction(op.BPF_LDX | op.BPF_MEMSX | op.BPF_B).is_load
    assert Instruction(op.BPF_ST | op.BPF_MEM | op.BPF_DW).is_store
    atomic = Instruction(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, imm=op.BPF_ADD | op.BPF_FETCH)
    assert atomic.is_atomic and atomic.is_store
    acq = atomic.with_imm(op.BPF_LOAD_ACQ)
    assert acq.is_load and not acq.is_store
    assert atomic.with_imm(op.BPF_STORE_REL).is_store
    assert Instruction(op.BPF_ALU64 | op.BPF_ADD | op.BPF_X).is_alu
    assert Instruction(op.BPF_ALU | op.BPF_MOV).is_alu
    assert not Instruction(op.BPF_JMP32 | op.BPF_JEQ).is_alu
    assert Instruction(op.BPF_LD | op.BPF_ABS | op.BPF_B).is_load
    func = Instruction(op.LD_IMM64_OPCODE, src=op.BPF_PSEUDO_FUNC, imm=0xFFFFFFFF)
    assert func.jump_offset() == -1
    assert ldx.with_off(4).off == 4 and ldx.off == 8  # frozen: copies
    with pytest.raises(dataclasses.FrozenInstanceError):
        ldx.off = 3  # type: ignore[misc]


def test_opcode_enums_match_uapi_header() -> None:
    """Every enum member equals the #define of the same name in linux/bpf*.h."""
    text = ""
    for header in ("/usr/include/linux/bpf_common.h", "/usr/include/linux/bpf.h"):
        text += Path(header).read_text()
    defines = {m.group(1): int(m.group(2), 0)
               for m in re.finditer(r"#define\s+(BPF_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", text)}
    # BPF_XCHG / BPF_CMPXCHG are written "(0xe0 | BPF_FETCH)"
    for m in re.finditer(r"#define\s+(BPF_\w+)\s+\((0x[0-9a-fA-F]+)\s*\|\s*BPF_FETCH\)", text):
        defines[m.group(1)] = int(m.group(2), 0) | defines["BPF_FETCH"]
    enum_values = {m.group(1): int(m.group(2), 0)
                   for m in re.finditer(r"\b(BPF_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", text)}
    checked = 0
    for enum in (op.Class, op.Size, op.Mode, op.Source, op.AluOp, op.JmpOp):
        for member in enum:
            if member.name in defines:
                assert defines[member.name] == member.value, member
                checked += 1
    for name in ("BPF_PSEUDO_MAP_FD", "BPF_PSEUDO_MAP_VALUE", "BPF_PSEUDO_BTF_ID", "BPF_PSEUDO_FUNC",
                 "BPF_PSEUDO_MAP_IDX", "BPF_PSEUDO_MAP_IDX_VALUE", "BPF_PSEUDO_CALL",
                 "BPF_PSEUDO_KFUNC_CALL", "BPF_FETCH", "BPF_XCHG", "BPF_CMPXCHG", "BPF_MEMSX",
                 "BPF_ATOMIC", "BPF_JCOND", "BPF_JMP32", "BPF_ALU64", "BPF_TO_BE", "BPF_END"):
        value = defines.get(name, enum_values.get(name))
        if value is None:
            # Debian 12's uapi headers predate a few cpu v4 names.
            assert name in ("BPF_MEMSX", "BPF_JCOND")
            continue
        assert getattr(op, name) == value, name
        checked += 1
    assert checked > 50


# ---------------------------------------------------------------------------
# Helper ids
# ---------------------------------------------------------------------------

def test_helper_names_spot_checks() -> None:
    assert HELPER_NAMES[1] == "bpf_map_lookup_elem"
    assert HELPER_NAMES[4] == "bpf_probe_read"
    assert HELPER_NAMES[5] == "bpf_ktime_get_ns"
    assert HELPER_NAMES[6] == "bpf_trace_printk"
    assert HELPER_NAMES[14] == "bpf_get_current_pid_tgid"
    assert HELPER_NAMES[25] == "bpf_perf_event_output"
    assert HELPER_NAMES[113] == "bpf_probe_read_kernel"
    assert HELPER_NAMES[130] == "bpf_ringbuf_output"
    assert HELPER_NAMES[181] == "bpf_loop"
    assert HELPER_NAMES[209] == "bpf_user_ringbuf_drain"
    assert HELPER_NAMES[211] == "bpf_cgrp_storage_delete"
    assert sorted(HELPER_NAMES) == list(range(1, 212))
    assert helper_name(1) == "bpf_map_lookup_elem" and helper_name(0) is None and helper_name(999) is None
    assert helper_id("map_lookup_elem") == helper_id("bpf_map_lookup_elem") == 1
    assert HELPER_IDS["bpf_loop"] == 181


def test_helper_names_match_libbpf_helper_defs() -> None:
    """libbpf's generated bpf_helper_defs.h lists each helper with its id."""
    text = Path("/usr/include/bpf/bpf_helper_defs.h").read_text()
    pairs = re.findall(r"\(\s*\*\s*(bpf_\w+)\s*\)\s*\(.*?\)\s*=\s*\(void \*\)\s*(\d+)\s*;", text, re.S)
    assert len(pairs) > 200
    for name, num in pairs:
        assert HELPER_NAMES[int(num)] == name


def test_helper_names_match_running_kernel_btf() -> None:
    """The kernel's own enum bpf_func_id, read from vmlinux BTF with bpftool."""
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("kernel feature missing: /sys/kernel/btf/vmlinux")
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                         capture_output=True, text=True, check=True).stdout
    body = re.search(r"enum bpf_func_id \{(.*?)\};", out, re.S)
    assert body is not None
    kernel = {int(num): "bpf_" + name
              for name, num in re.findall(r"\bBPF_FUNC_([a-z0-9_]+) = (\d+),", body.group(1))}
    kernel.pop(0)  # BPF_FUNC_unspec
    assert kernel == HELPER_NAMES


# ---------------------------------------------------------------------------
# Builders against the LLVM assembler
# ---------------------------------------------------------------------------

def test_builders_encode_like_llvm_assembler(tmp_path: Path) -> None:
    """Each builder's bytes equal what clang-19 assembles from the same instruction text."""
    from purebpf.insn import builders as b

    pairs = [
        ("r1 += r2", b.alu64_reg(op.BPF_ADD, 1, 2)),
        ("w3 -= w4", b.alu32_reg(op.BPF_SUB, 3, 4)),
        ("r1 s/= r2", b.alu64_reg(op.BPF_DIV, 1, 2, off=1)),
        ("r5 <<= 7", b.alu64_imm(op.BPF_LSH, 5, 7)),
        ("w5 &= -8", b.alu32_imm(op.BPF_AND, 5, -8)),
        ("w5 s%= 3", b.alu32_imm(op.BPF_MOD, 5, 3, off=1)),
        ("r2 = -r2", b.neg64(2)),
        ("w2 = -w2", b.neg32(2)),
        ("r6 = r1", b.mov64_reg(6, 1)),
        ("w6 = w1", b.mov32_reg(6, 1)),
        ("r0 = -1", b.mov64_imm(0, -1)),
        ("w0 = 42", b.mov32_imm(0, 42)),
        ("r1 = (s16)r2", b.movsx64_reg(1, 2, 16)),
        ("r3 = be32 r3", b.endian(3, 32, big=True)),
        ("r3 = le16 r3", b.endian(3, 16, big=False)),
        ("r3 = bswap64 r3", b.bswap(3, 64)),
        ("r1 = 0x1122334455667788 ll", b.ld_imm64(1, 0x1122334455667788)),
        ("r1 = -2 ll", b.ld_imm64(1, -2)),
        ("r0 = *(u16 *)(r1 + 6)", b.ldx_mem(op.BPF_H, 0, 1, 6)),
        ("r0 = *(s8 *)(r1 - 1)", b.ldx_memsx(op.BPF_B, 0, 1, -1)),
        ("*(u64 *)(r10 - 8) = r1", b.stx_mem(op.BPF_DW, 10, 1, -8)),
        ("*(u32 *)(r10 - 4) = 9", b.st_mem(op.BPF_W, 10, -4, 9)),
        ("r2 = atomic_fetch_or((u64 *)(r1 + 0), r2)", b.atomic_op(op.BPF_DW, op.BPF_OR | op.BPF_FETCH, 1, 2, 0)),
        ("lock *(u32 *)(r1 + 4) += w2", b.atomic_op(op.BPF_W, op.BPF_ADD, 1, 2, 4)),
        ("if r1 s> 5 goto +2", b.jmp_imm(op.BPF_JSGT, 1, 5, 2)),
        ("if r1 != r2 goto -3", b.jmp_reg(op.BPF_JNE, 1, 2, -3)),
        ("if w1 < 7 goto +1", b.jmp32_imm(op.BPF_JLT, 1, 7, 1)),
        ("if w1 & w2 goto +0", b.jmp32_reg(op.BPF_JSET, 1, 2, 0)),
        ("goto +4", b.ja(4)),
        ("gotol +5", b.gotol(5)),
        ("call 14", b.call_helper(14)),
        ("exit", b.exit_insn()),
    ]
    asm = tmp_path / "builders.s"
    asm.write_text("\t.text\nf:\n" + "".join(f"\t{text}\n" for text, _ in pairs))
    obj = tmp_path / "builders.o"
    subprocess.run([CLANG, "-target", "bpfel", "-c", str(asm), "-o", str(obj)], check=True, capture_output=True)
    (_, data, _), = [s for s in code_sections(obj) if s[0] == ".text"]
    assert encode([insn for _, insn in pairs]) == data
    # pseudo forms LLVM has no syntax for: fields per include/uapi/linux/bpf.h
    assert b.call_pseudo(3).is_pseudo_call and b.call_pseudo(3).imm == 3
    assert b.call_kfunc(77).is_kfunc_call and b.call_kfunc(77).imm == 77
    mv = b.ld_map_value(2, 5, 16)
    assert (mv.src, mv.imm & 0xFFFFFFFF, mv.imm >> 32) == (op.BPF_PSEUDO_MAP_VALUE, 5, 16)
    assert b.ld_map_fd(1, 9).src == op.BPF_PSEUDO_MAP_FD and b.ld_func(2, -4).jump_offset() == -4
    with pytest.raises(ValueError):
        b.movsx64_reg(1, 2, 64)
