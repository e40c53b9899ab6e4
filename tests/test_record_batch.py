"""RecordBatch: many records in one buffer, read without an object per record.

The buffers here are laid out by hand with ``struct`` the way the kernel
lays records out (a ring buffer's 8-byte header, a perf sample's 12 bytes of
header and size), so the expected records are known independently of the
batch's own arithmetic.  The readers that build batches from real rings are
tested in tests/test_events_batch.py.
"""

from __future__ import annotations

import ctypes
import struct
from typing import List, Tuple

import pytest

from purebpf.maps.batch import RecordBatch, same_at_stride


def ring_layout(payloads: List[bytes]) -> Tuple[bytes, List[int]]:
    """Ring buffer layout: u32 len + u32 pg_off header, payload padded to 8 bytes."""
    out = bytearray()
    offsets = []
    for n, p in enumerate(payloads):
        out += struct.pack("=II", len(p), n * 7)  # pg_off varies, as in the kernel
        offsets.append(len(out))
        out += p + bytes(-len(p) % 8)
    return bytes(out), offsets


def event(seq: int) -> bytes:
    return struct.pack("=QIi8s", seq, seq * 3, -seq, b"task%04d" % seq)


EVENT = struct.Struct("=QIi8s")  # 24 bytes


def uniform_batch(n: int) -> Tuple[RecordBatch, List[bytes]]:
    payloads = [event(i) for i in range(n)]
    buf, offsets = ring_layout(payloads)
    assert offsets[1] - offsets[0] == 32
    return RecordBatch(buf, count=n, offset=8, stride=32, record_size=24), payloads


def test_uniform_sequence_protocol() -> None:
    batch, payloads = uniform_batch(50)
    assert len(batch) == 50 and batch
    assert batch.stride == 32 and batch.record_size == 24 and batch.offset == 8
    assert batch[0] == payloads[0] and batch[49] == payloads[49] and batch[-1] == payloads[-1]
    assert list(batch) == payloads
    assert batch.records() == payloads
    assert batch == payloads and batch == tuple(payloads)
    assert batch != payloads[:-1]
    with pytest.raises(IndexError):
        batch[50]
    with pytest.raises(IndexError):
        batch[-51]
    assert payloads[7] in batch
    assert batch.index(payloads[9]) == 9
    assert list(reversed(batch)) == payloads[::-1]
    assert "50 records of 24 bytes" in repr(batch)
    with pytest.raises(TypeError):
        hash(batch)


def test_uniform_slices_share_the_buffer() -> None:
    batch, payloads = uniform_batch(40)
    for sl in (slice(3, 17), slice(None, None, 3), slice(5, 35, 7), slice(30, 100),
               slice(10, 2), slice(None, None, -1), slice(-5, None), slice(20, 3, -4)):
        part = batch[sl]
        assert isinstance(part, RecordBatch)
        assert part.records() == payloads[sl], sl
        assert part.buffer is batch.buffer
        assert part.payloads() == b"".join(payloads[sl])
        assert list(part.unpack(EVENT)) == [EVENT.unpack(p) for p in payloads[sl]]


def test_payloads_strip_headers_for_ctypes_and_struct() -> None:
    batch, payloads = uniform_batch(300)
    data = batch.payloads()
    assert data == b"".join(payloads)

    class Event(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("seq", ctypes.c_uint64), ("triple", ctypes.c_uint32),
                    ("neg", ctypes.c_int32), ("comm", ctypes.c_char * 8)]

    assert ctypes.sizeof(Event) == batch.record_size
    events = (Event * len(batch)).from_buffer_copy(data)
    assert [e.seq for e in events] == list(range(300))
    assert [e.neg for e in events][:3] == [0, -1, -2]
    assert events[123].comm == b"task0123"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 36, 100])
def test_payloads_every_alignment(size: int) -> None:
    """Record sizes that are not multiples of 8 leave padding the copy must skip."""
    payloads = [bytes((i + k) % 251 for k in range(size)) for i in range(37)]
    buf, offsets = ring_layout(payloads)
    stride = offsets[1] - offsets[0]
    batch = RecordBatch(buf, count=37, offset=8, stride=stride, record_size=size)
    assert batch.records() == payloads
    assert batch.payloads() == b"".join(payloads)
    # a perf-like layout: payload at offset 12 of a 48-byte record
    perf = b"".join(struct.pack("=IHHI", 9, 0, 48, size) + p + bytes(36 - size)
                    for p in payloads) if size <= 36 else None
    if perf is not None:
        pb = RecordBatch(perf, count=37, offset=12, stride=48, record_size=size)
        assert pb.payloads() == b"".join(payloads)
        assert pb.records() == payloads


def test_unpack_runs_over_strides_and_checks_the_format() -> None:
    batch, payloads = uniform_batch(64)
    expected = [EVENT.unpack(p) for p in payloads]
    assert list(batch.unpack("=QIi8s")) == expected
    assert list(batch.unpack(EVENT)) == expected
    # a shorter format reads the start of each record
    assert list(batch.unpack("<Q")) == [(i,) for i in range(64)]
    with pytest.raises(ValueError, match="needs 32 bytes"):
        list(batch.unpack("=4Q"))
    # native alignment: '@QI' is 12 bytes, its natural layout within the record
    assert list(batch.unpack("@QI")) == [(i, 3 * i) for i in range(64)]
    one = batch[5:6]
    assert list(one.unpack(EVENT)) == [expected[5]]
    assert list(batch[0:0].unpack(EVENT)) == []


def test_unpack_native_alignment_at_an_odd_offset() -> None:
    """Perf samples start 12 bytes into their record: '@' alignment is relative to it."""
    payloads = [struct.pack("=IQ", i, i * 10) + bytes(8) for i in range(9)]
    buf = b"".join(struct.pack("=IHHI", 9, 0, 32, 20) + p for p in payloads)
    batch = RecordBatch(buf, count=9, offset=12, stride=32, record_size=20)
    assert list(batch.unpack("=IQ")) == [(i, i * 10) for i in range(9)]
    # '@IQ' puts the Q at offset 8: 16 bytes, read from each record start
    assert list(batch.unpack("@IQ")) == [struct.unpack_from("@IQ", p) for p in payloads]


def test_scattered_records_of_varying_size() -> None:
    payloads = [bytes([i]) * (1 + i % 5) * 8 for i in range(20)]
    buf, offsets = ring_layout(payloads)
    batch = RecordBatch(buf, offsets=offsets, sizes=[len(p) for p in payloads], cpu=1, lost=4)
    assert batch.stride is None and batch.record_size is None
    assert len(batch) == 20 and batch.records() == payloads and list(batch) == payloads
    assert batch[-2] == payloads[-2]
    assert batch[2:9:3].records() == payloads[2:9:3]
    assert batch.payloads() == b"".join(payloads)
    assert list(batch.unpack("=Q")) == [struct.unpack_from("=Q", p) for p in payloads]
    with pytest.raises(ValueError, match="only 8"):
        list(batch.unpack("=2Q"))
    assert batch.cpu == 1 and batch.lost == 4
    assert "varying size, cpu 1, 4 lost" in repr(batch)
    # same sizes but not evenly spaced: the shared size is still known
    same = RecordBatch(buf, offsets=[offsets[0], offsets[5]], sizes=[8, 8])
    assert same.record_size == 8 and same.stride is None
    assert same.records() == [payloads[0], payloads[5][:8]]


def test_empty_and_invalid_batches() -> None:
    empty = RecordBatch()
    assert len(empty) == 0 and not empty and empty.records() == [] and empty.payloads() == b""
    assert list(empty.unpack("=Q")) == []
    with pytest.raises(ValueError, match="do not fit"):
        RecordBatch(bytes(100), count=4, offset=8, stride=32, record_size=24)
    with pytest.raises(ValueError, match="stride"):
        RecordBatch(bytes(100), count=2, offset=8)
    with pytest.raises(ValueError, match="same length"):
        RecordBatch(bytes(100), offsets=[0, 8], sizes=[8])


def test_same_at_stride() -> None:
    buf, _offsets = ring_layout([event(i) for i in range(100)])
    assert same_at_stride(buf, 0, 100, 32, struct.pack("=I", 24))
    assert not same_at_stride(buf, 0, 100, 32, struct.pack("=I", 25))
    # pg_off differs per record: the 8-byte headers are not all the same
    assert not same_at_stride(buf, 0, 100, 32, buf[:8])
    assert same_at_stride(buf, 0, 1, 32, buf[:8])
    assert same_at_stride(buf, 0, 0, 32, b"\0\0\0\0")
    broken = bytearray(buf)
    broken[32 * 77] |= 0x80  # one header differs
    assert not same_at_stride(bytes(broken), 0, 100, 32, struct.pack("=I", 24))
    assert same_at_stride(bytes(broken), 0, 77, 32, struct.pack("=I", 24))
    # the last item may end the buffer exactly
    assert same_at_stride(b"\1\0\0\0" + bytes(4) + b"\1\0\0\0", 0, 2, 8, b"\1\0\0\0")
