"""RingBuffer reader vs records written by a real program.

A tiny hand-assembled XDP program calls bpf_ringbuf_output (helper 130) or
reserve + discard (131/133); BPF_PROG_TEST_RUN runs it; the reader must
return exactly what the program wrote, in order, across the wrap-around of
the data area, skipping discarded records.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator, List

import pytest

from purebpf.errors import NotSupportedError, StateError
from purebpf.maps import Map
from purebpf.maps.ringbuf import RingBuffer
from purebpf.spec import MapSpec
from purebpf.uapi import MapType

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

PAGE = os.sysconf("SC_PAGE_SIZE")


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ld_map_fd(dst: int, fd: int) -> bytes:
    return insn(0x18, dst, 1, 0, fd) + insn(0)


def output_prog(ring_fd: int, size: int) -> bytes:
    """Writes ``size`` bytes (u64 words 0x1000+i*0x11) with bpf_ringbuf_output."""
    words = size // 8
    body = b"".join(
        insn(0x18, 1, 0, 0, 0x1000 + i * 0x11) + insn(0) +  # r1 = imm64
        insn(0x7B, 10, 1, -8 * (words - i))                  # *(u64 *)(r10 - off) = r1
        for i in range(words))
    return body + b"".join([
        ld_map_fd(1, ring_fd),
        insn(0xBF, 2, 10),                 # r2 = r10
        insn(0x07, 2, 0, 0, -8 * words),   # r2 += -size
        insn(0xB7, 3, 0, 0, size),         # r3 = size
        insn(0xB7, 4, 0, 0, 0),            # r4 = 0
        insn(0x85, 0, 0, 0, 130),          # call bpf_ringbuf_output
        insn(0xB7, 0, 0, 0, 2),
        insn(0x95),
    ])


def discard_prog(ring_fd: int) -> bytes:
    return b"".join([
        ld_map_fd(1, ring_fd),
        insn(0xB7, 2, 0, 0, 16),           # r2 = 16
        insn(0xB7, 3, 0, 0, 0),
        insn(0x85, 0, 0, 0, 131),          # r0 = bpf_ringbuf_reserve(map, 16, 0)
        insn(0x15, 0, 0, 4, 0),            # if r0 == 0 goto +4
        insn(0x7A, 0, 0, 0, 7),            # *(u64 *)(r0 + 0) = 7
        insn(0xBF, 1, 0),                  # r1 = r0
        insn(0xB7, 2, 0, 0, 0),
        insn(0x85, 0, 0, 0, 133),          # bpf_ringbuf_discard(r1, 0)
        insn(0xB7, 0, 0, 0, 2),
        insn(0x95),
    ])


def expected(size: int) -> bytes:
    return b"".join(struct.pack("=Q", 0x1000 + i * 0x11) for i in range(size // 8))


@pytest.fixture
def ring() -> Iterator[Map]:
    with Map.create(MapSpec(name="rb_test", type=MapType.RINGBUF, key_size=0, value_size=0,
                            max_entries=PAGE)) as m:
        yield m


def run(prog_bytes: bytes, times: int = 1) -> None:
    from purebpf.syscall import prog_load, prog_test_run
    from purebpf.uapi import ProgType

    fd, _log = prog_load(ProgType.XDP, prog_bytes, "GPL", name="rb_writer")
    with fd:
        for _ in range(times):
            assert prog_test_run(fd, data_in=bytes(64)).retval == 2


def test_records_in_order_and_across_the_wrap(ring: Map) -> None:
    with RingBuffer(ring) as rb:
        assert rb.consume() == [] and rb.pending() == 0
        got: List[bytes] = []
        # 40-byte records (48 with header) do not divide the page: they wrap
        for _ in range(6):
            run(output_prog(ring.fileno(), 40), times=20)
            seen: List[bytes] = []
            got += rb.consume(callback=seen.append)
            assert seen == got[-20:]
        assert got == [expected(40)] * 120
        assert rb.pending() == 0


def test_discarded_records_are_skipped_and_limit(ring: Map) -> None:
    with RingBuffer(ring) as rb:
        run(output_prog(ring.fileno(), 8))
        run(discard_prog(ring.fileno()))
        run(output_prog(ring.fileno(), 16), times=2)
        assert rb.pending() == 16 + 24 + 24 + 24
        assert rb.consume(limit=2) == [expected(8), expected(16)]
        assert rb.poll(timeout=0) == [expected(16)]
        assert rb.poll(timeout=0) == []


def test_reader_state_errors(ring: Map) -> None:
    rb = RingBuffer(ring)
    rb.close()
    rb.close()
    with pytest.raises(StateError):
        rb.consume()
    with Map.create(MapSpec(name="not_rb", type=MapType.ARRAY, key_size=4, value_size=4,
                            max_entries=1)) as other:
        with pytest.raises(NotSupportedError):
            RingBuffer(other)
