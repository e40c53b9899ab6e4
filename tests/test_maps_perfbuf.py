"""PerfBuffer reader vs samples sent by a real program.

A hand-assembled XDP program calls bpf_perf_event_output (helper 25) with
BPF_F_CURRENT_CPU; BPF_PROG_TEST_RUN runs it pinned to each CPU in turn
(BPF_F_TEST_RUN_ON_CPU is for other types; the test thread is pinned with
sched_setaffinity); the reader must return the bytes, tagged with that CPU.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator, List

import pytest

from purebpf.errors import MapKeyError, NotSupportedError, StateError
from purebpf.maps import Map
from purebpf.maps.perfbuf import PerfBuffer, PerfSample
from purebpf.spec import MapSpec
from purebpf.uapi import MapType

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

BPF_F_CURRENT_CPU = 0xFFFFFFFF


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhI", code, (src << 4) | dst, off, imm & 0xFFFFFFFF)


def output_prog(map_fd: int, value: int, words: int = 2) -> bytes:
    """Sends ``words`` copies of the u64 ``value`` with bpf_perf_event_output."""
    stores = b"".join(insn(0x7B, 10, 1, -8 * (i + 1)) for i in range(words))  # *(u64 *)(r10 - off) = r1
    return b"".join([
        insn(0xBF, 6, 1),                               # r6 = ctx
        insn(0x18, 1, 0, 0, value & 0xFFFFFFFF), insn(0, imm=value >> 32),
        stores,
        insn(0xBF, 1, 6),                               # r1 = ctx
        insn(0x18, 2, 1, 0, map_fd), insn(0),           # r2 = map
        insn(0x18, 3, 0, 0, BPF_F_CURRENT_CPU), insn(0),  # r3 = BPF_F_CURRENT_CPU (u32 max)
        insn(0xBF, 4, 10),
        insn(0x07, 4, 0, 0, -8 * words),                # r4 = r10 - size
        insn(0xB7, 5, 0, 0, 8 * words),                 # r5 = size
        insn(0x85, 0, 0, 0, 25),                        # call bpf_perf_event_output
        insn(0xB7, 0, 0, 0, 2),
        insn(0x95),
    ])


@pytest.fixture
def events() -> Iterator[Map]:
    with Map.create(MapSpec(name="perf_test", type=MapType.PERF_EVENT_ARRAY, key_size=4,
                            value_size=4, max_entries=0)) as m:
        yield m


def test_samples_per_cpu(events: Map) -> None:
    from purebpf.syscall import prog_load, prog_test_run
    from purebpf.uapi import ProgType

    before = set(os.listdir("/proc/self/fd"))
    affinity = os.sched_getaffinity(0)
    with PerfBuffer(events, pages=2) as pb:
        assert pb.cpus and set(pb.cpus) <= set(range(events.max_entries))
        fd, _log = prog_load(ProgType.XDP, output_prog(events.fileno(), 0x1122334455667788),
                             "GPL", name="perf_writer")
        sent: List[int] = []
        try:
            with fd:
                for cpu in pb.cpus:
                    if cpu not in affinity:
                        continue
                    os.sched_setaffinity(0, {cpu})
                    for _ in range(3):
                        assert prog_test_run(fd, data_in=bytes(64)).retval == 2
                    sent.append(cpu)
        finally:
            os.sched_setaffinity(0, affinity)
        got: List[PerfSample] = []
        samples = pb.poll(timeout=0, callback=got.append)
        assert samples == got
        want = struct.pack("=QQ", 0x1122334455667788, 0x1122334455667788)
        assert sorted((s.cpu, s.data[:16], s.lost) for s in samples) == \
            sorted((cpu, want, 0) for cpu in sent for _ in range(3))
        assert pb.consume() == []
    assert set(os.listdir("/proc/self/fd")) == before
    # close() emptied the map's slots (else the map would keep the events alive)
    for cpu in range(events.max_entries):
        with pytest.raises(MapKeyError):
            events.delete(cpu)
    with pytest.raises(StateError):
        pb.consume()


def test_ring_wraps_and_counts_lost(events: Map) -> None:
    from purebpf.syscall import prog_load, prog_test_run
    from purebpf.uapi import ProgType

    affinity = os.sched_getaffinity(0)
    with PerfBuffer(events, pages=1) as pb:
        cpu = next(c for c in pb.cpus if c in affinity)
        # 24 bytes -> 40-byte records, which do not divide the 4 KiB ring:
        # some are split across its end
        fd, _log = prog_load(ProgType.XDP, output_prog(events.fileno(), 7, words=3), "GPL",
                             name="perf_writer")
        try:
            os.sched_setaffinity(0, {cpu})
            with fd:
                total = 0
                for round_ in range(4):
                    for _ in range(60):
                        prog_test_run(fd, data_in=bytes(64))
                    got = pb.consume()
                    assert [s.data[:24] for s in got] == [struct.pack("=QQQ", 7, 7, 7)] * 60
                    total += len(got)
                for _ in range(300):  # more than fits: the kernel counts lost ones
                    prog_test_run(fd, data_in=bytes(64))
                got = pb.consume()
                # the count of lost samples is written once there is room again
                prog_test_run(fd, data_in=bytes(64))
                after = pb.consume()
        finally:
            os.sched_setaffinity(0, affinity)
        assert total == 240
        kept = [s for s in got if not s.lost]
        lost = sum(s.lost for s in got + after)
        assert 0 < len(kept) < 300 and lost > 0
        assert len(kept) + lost == 300
        assert [s.data[:24] for s in after if not s.lost] == [struct.pack("=QQQ", 7, 7, 7)]


def test_wrong_map_type() -> None:
    with Map.create(MapSpec(name="arr", type=MapType.ARRAY, key_size=4, value_size=4,
                            max_entries=1)) as m:
        with pytest.raises(NotSupportedError):
            PerfBuffer(m)
