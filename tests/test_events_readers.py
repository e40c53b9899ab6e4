"""Ring and perf buffer readers against a real producer: nothing lost silently.

The producer (tests/test_events_producer.py, built with clang-19 and loaded
by purebpf) emits numbered records as fast as BPF_PROG_TEST_RUN ``repeat``
runs it, and counts the outputs the kernel refused.  The oracles are the
kernel: the helper's return code (the program's fail counter) for the ring
buffer, the kernel's PERF_RECORD_LOST counts for the perf buffer, and the
record contents computed independently of the reader.  Buffers are small so
that they fill up and wrap around many times.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_events_producer import build_producer, record  # noqa: E402

from purebpf.maps import (PerfBuffer, PerfBufferBuilder, PerfSample, RingBuffer,  # noqa: E402
                          RingBufferBuilder, RingBufferPoller)
from purebpf.errors import StateError  # noqa: E402

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

PACKET = bytes(64)
# burst sizes (records per BPF_PROG_TEST_RUN): some overfill the 4 KiB rings,
# the many smaller ones make the data area wrap around often
RB_BURSTS = [10, 50, 200, 1000, 3, 700, 5000, 1] + [120, 150, 97, 33, 181] * 8
PB_BURSTS = [5, 90, 400, 3, 2000, 60, 1] + [70, 85, 86, 30, 41] * 8


@pytest.fixture(scope="module")
def producer_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_producer(tmp_path_factory.mktemp("events"))


def load(path: Path, *, ring_size: int = 4096, var_size: bool = False) -> Any:
    from purebpf.object import open_object

    with open_object(str(path)) as spec:
        spec.maps["rb"].max_entries = ring_size
        spec.rodata["var_size"] = 1 if var_size else 0
        return spec.load()


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    after = set(os.listdir("/proc/self/fd"))
    assert after <= before | {str(n) for n in range(3)}, f"leaked fds: {after - before}"


class Pinned:
    """Run the calling thread on one CPU for a while."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.saved = os.sched_getaffinity(0)

    def __enter__(self) -> "Pinned":
        os.sched_setaffinity(0, {self.cpu})
        return self

    def __exit__(self, *exc: object) -> None:
        os.sched_setaffinity(0, self.saved)


def first_cpu() -> int:
    return min(os.sched_getaffinity(0))


def seq_of(data: bytes) -> int:
    return int(struct.unpack_from("=Q", data)[0])


def run(obj: Any, prog: str, times: int) -> None:
    assert obj.programs[prog].test_run(PACKET, repeat=times).retval == 2


# -- ring buffer -----------------------------------------------------------------


def check_ring_records(records: List[bytes], total: int, failed: int, var_size: bool) -> None:
    seqs = [seq_of(r) for r in records]
    assert len(records) + failed == total
    assert seqs == sorted(set(seqs)), "records out of order or repeated"
    assert all(0 <= s < total for s in seqs)
    for r, s in zip(records, seqs):
        assert r == record(s, var_size)


def test_ringbuf_fills_wraps_and_loses_nothing_silently(producer_obj: Path,
                                                        no_fd_leak: None) -> None:
    """Bursts larger than the ring: delivered + refused == N, contents intact."""
    with load(producer_obj, var_size=True) as obj, RingBuffer(obj.maps["rb"]) as rb:
        got: List[bytes] = []
        with Pinned(first_cpu()):
            for burst in RB_BURSTS:
                run(obj, "emit_rb", burst)
                seen: List[bytes] = []
                got += rb.consume(callback=seen.append)
                assert seen == got[len(got) - len(seen):]
                assert rb.pending() == 0
        total = sum(RB_BURSTS)
        assert obj.globals["rb_seq"] == total
        failed = obj.globals["rb_fail"]
        assert failed > 0, "the ring never filled: the test would not test that"
        check_ring_records(got, total, failed, var_size=True)
        # the ring went around its 4 KiB data area many times
        assert sum(8 + len(r) for r in got) > 20 * 4096


def test_ringbuf_concurrent_producer(producer_obj: Path, no_fd_leak: None) -> None:
    """A producer thread runs flat out while the reader polls: the count still adds up."""
    cpus = sorted(os.sched_getaffinity(0))
    total = 0
    bursts = [2000] * 60
    with load(producer_obj, ring_size=16384) as obj, RingBuffer(obj.maps["rb"]) as rb:
        errors: List[BaseException] = []

        def produce() -> None:
            try:
                with Pinned(cpus[0]):
                    for burst in bursts:
                        run(obj, "emit_rb", burst)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        got: List[bytes] = []
        thread = threading.Thread(target=produce)
        with Pinned(cpus[-1]):
            thread.start()
            while thread.is_alive():
                got += rb.poll(timeout=0.05)
            thread.join()
            got += rb.consume()
        assert not errors
        total = sum(bursts)
        check_ring_records(got, total, obj.globals["rb_fail"], var_size=False)


def test_ringbuf_discarded_records_are_skipped(producer_obj: Path, no_fd_leak: None) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        got: List[bytes] = []
        with Pinned(first_cpu()):
            for _ in range(5):
                run(obj, "emit_rb_discard", 150)
                got += rb.consume_batch()
        seqs = [seq_of(r) for r in got]
        assert seqs and all(s % 2 == 0 for s in seqs)
        assert seqs == sorted(set(seqs))
        assert all(r == record(seq_of(r)) for r in got)
        # submitted + discarded + refused reservations == N
        failed, discarded = obj.globals["rb_fail"], obj.globals["rb_disc"]
        assert failed > 0 and discarded > 0
        assert len(got) + discarded + failed == 750


def test_ringbuf_data_stays_valid_after_callback(producer_obj: Path) -> None:
    """Records kept from a callback are unchanged after the kernel reuses the space."""
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        kept: List[bytes] = []
        with Pinned(first_cpu()):
            for _ in range(10):
                run(obj, "emit_rb", 100)  # 100 * 40 bytes: the ring is reused each round
                rb.consume(callback=kept.append)
        assert all(type(r) is bytes for r in kept)
        assert [r for r in kept] == [record(seq_of(r)) for r in kept]
        assert len({seq_of(r) for r in kept}) == len(kept) == 10 * 100


def test_ringbuf_callback_raises_then_continues(producer_obj: Path) -> None:
    class Boom(Exception):
        pass

    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 10)
        seen: List[int] = []

        def callback(data: bytes) -> None:
            seen.append(seq_of(data))
            if seq_of(data) == 3:
                raise Boom("record 3")

        with pytest.raises(Boom):
            rb.consume(callback=callback)
        # like libbpf: the record whose callback failed is consumed, the rest stays
        assert seen == [0, 1, 2, 3]
        assert rb.pending() == 6 * 40
        rest = rb.consume(callback=callback)
        assert [seq_of(r) for r in rest] == [4, 5, 6, 7, 8, 9]
        assert seen == list(range(10))


def test_ringbuf_callback_nonzero_stops(producer_obj: Path) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"], callback=lambda d: int(seq_of(d) == 2)) as rb:
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 6)
        assert [seq_of(r) for r in rb.consume()] == [0, 1, 2]
        assert [seq_of(r) for r in rb.consume()] == [3, 4, 5]
        assert obj.globals["rb_seq"] == 6


def test_ringbuf_count_and_stop_counts(producer_obj: Path) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 6)
        seen: List[int] = []
        assert rb.consume_count(callback=lambda d: seen.append(seq_of(d))) == 6
        assert seen == list(range(6))
        assert rb.consume_count() == 0


def test_ringbuf_iter_and_batch(producer_obj: Path) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 20)
            taken: List[int] = []
            for data in rb.iter(timeout=0):
                taken.append(seq_of(data))
                if len(taken) == 5:
                    break  # leaving early loses nothing
            assert taken == [0, 1, 2, 3, 4]
            assert [seq_of(r) for r in rb.consume_batch(limit=5)] == [5, 6, 7, 8, 9]
            assert [seq_of(r) for r in rb] == list(range(10, 20))
            assert list(rb.iter(timeout_ms=0)) == []
            # iterate while producing from another thread; stop on a quiet ring
            thread = threading.Thread(target=run, args=(obj, "emit_rb", 30))
            thread.start()
            thread.join()
            assert [seq_of(r) for r in rb.iter(timeout=0.2)] == list(range(20, 50))
            assert rb.wait(timeout_ms=0) is False
            with pytest.raises(ValueError):
                rb.poll(timeout=1, timeout_ms=1)


def test_ringbuf_poll_wakes_up_on_data(producer_obj: Path) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        assert rb.poll(timeout_ms=10) == []
        timer = threading.Timer(0.05, run, args=(obj, "emit_rb", 3))
        timer.start()
        got: List[bytes] = []
        for _ in range(1000):  # bounded: each poll waits at most 1 s
            got += rb.poll(timeout=1.0)
            if len(got) >= 3:
                break
        timer.join()
        assert [seq_of(r) for r in got] == [0, 1, 2]


def test_several_rings_in_one_poller(producer_obj: Path, no_fd_leak: None) -> None:
    with load(producer_obj) as a, load(producer_obj, var_size=True) as b:
        got_a: List[bytes] = []
        got_b: List[bytes] = []
        reader_b = RingBuffer(b.maps["rb"])
        try:
            with RingBufferPoller() as poller:
                poller.add(a.maps["rb"], got_a.append)
                assert poller.add(reader_b, got_b.append) is reader_b
                assert poller.poll(timeout_ms=0) == 0
                with Pinned(first_cpu()):
                    for _ in range(20):
                        run(a, "emit_rb", 30)
                        run(b, "emit_rb", 70)
                        n = poller.poll(timeout=1.0)
                        assert n > 0
                        while poller.consume():
                            pass
                check_ring_records(got_a, 600, a.globals["rb_fail"], var_size=False)
                check_ring_records(got_b, 1400, b.globals["rb_fail"], var_size=True)
                assert len(got_a) == 600  # 30 * 40 bytes fit in the ring
            assert poller.closed
            with pytest.raises(StateError):
                poller.poll(timeout=0)
            assert not reader_b.closed  # a reader passed in stays its owner's
            with RingBufferBuilder().add(a.maps["rb"], got_a.append).add(
                    reader_b, lambda d: 1).build() as built:
                with Pinned(first_cpu()):
                    run(a, "emit_rb", 2)
                    run(b, "emit_rb", 2)
                # the callback of b returns 1: consumption stops after its first record
                assert built.consume() == 3
                assert built.consume() == 1
        finally:
            reader_b.close()


# -- perf buffer -----------------------------------------------------------------


def check_perf(samples: List[Tuple[int, bytes]], cpu: int, total: int) -> None:
    seqs = [seq_of(d) for _c, d in samples]
    assert all(c == cpu for c, _d in samples)
    assert seqs == sorted(set(seqs)), "samples out of order or repeated"
    assert all(0 <= s < total for s in seqs)
    # the kernel pads the raw data to 8 bytes with its u32 size: 32 + 4 bytes
    assert all(len(d) == 36 and d[:32] == record(seq_of(d)) for _c, d in samples)


def test_perfbuf_fills_wraps_and_counts_lost(producer_obj: Path, no_fd_leak: None) -> None:
    cpu = first_cpu()
    with load(producer_obj) as obj:
        samples: List[Tuple[int, bytes]] = []
        lost: List[Tuple[int, int]] = []
        with PerfBuffer(obj.maps["pb"], pages=1,
                        sample_cb=lambda c, d: samples.append((c, d)),
                        lost_cb=lambda c, n: lost.append((c, n))) as pb:
            assert cpu in pb.cpus
            with Pinned(cpu):
                for burst in PB_BURSTS:
                    run(obj, "emit_pb", burst)
                    pb.consume()
                # a lost count is written once there is room again: one more sample
                run(obj, "emit_pb", 1)
                pb.consume()
            total = sum(PB_BURSTS) + 1
            assert obj.globals["pb_seq"] == total
            reported = sum(n for _c, n in lost)
            assert all(c == cpu for c, _n in lost)
            assert reported > 0, "the ring never filled: the test would not test that"
            assert len(samples) + reported == total
            # the kernel's lost count matches the program's refused outputs
            assert reported == obj.globals["pb_fail"]
            check_perf(samples, cpu, total)
            # 48-byte records in a 4 KiB ring: many were split across its end
            assert len(samples) * 48 > 10 * 4096


def test_perfbuf_concurrent_producer(producer_obj: Path, no_fd_leak: None) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    bursts = [3000] * 40
    with load(producer_obj) as obj:
        samples: List[Tuple[int, bytes]] = []
        lost = [0]

        def on_lost(cpu: int, count: int) -> None:
            lost[0] += count

        pb = (PerfBufferBuilder(obj.maps["pb"]).pages(4)
              .sample_cb(lambda c, d: samples.append((c, d))).lost_cb(on_lost).build())
        with pb:
            errors: List[BaseException] = []

            def produce() -> None:
                try:
                    with Pinned(cpus[0]):
                        for burst in bursts:
                            run(obj, "emit_pb", burst)
                        run(obj, "emit_pb", 1)
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=produce)
            with Pinned(cpus[-1]):
                thread.start()
                while thread.is_alive():
                    pb.poll(timeout_ms=50)
                thread.join()
                pb.consume()
            # the ring is empty now: one more sample surely fits, and the
            # kernel writes any pending lost count before it
            with Pinned(cpus[0]):
                run(obj, "emit_pb", 1)
            pb.consume()
            assert not errors
            total = sum(bursts) + 2
            assert len(samples) + lost[0] == total
            assert lost[0] == obj.globals["pb_fail"]
            check_perf(samples, cpus[0], total)


def test_perfbuf_callback_raises_then_continues(producer_obj: Path) -> None:
    class Boom(Exception):
        pass

    cpu = first_cpu()
    with load(producer_obj) as obj, PerfBuffer(obj.maps["pb"], pages=2) as pb:
        with Pinned(cpu):
            run(obj, "emit_pb", 10)
        seen: List[int] = []

        def callback(sample: PerfSample) -> None:
            seen.append(seq_of(sample.data))
            if seq_of(sample.data) == 6:
                raise Boom("sample 6")

        with pytest.raises(Boom):
            pb.consume(callback=callback)
        assert seen == list(range(7))
        assert [seq_of(s.data) for s in pb.consume(callback=callback)] == [7, 8, 9]
        assert seen == list(range(10))
        # a non-zero int stops after that record
        with Pinned(cpu):
            run(obj, "emit_pb", 4)
        assert [seq_of(s.data) for s in pb.consume(callback=lambda s: 1)] == [10]
        assert [seq_of(s.data) for s in pb.consume_batch()] == [11, 12, 13]


def test_perfbuf_iter_batch_and_data_validity(producer_obj: Path) -> None:
    cpu = first_cpu()
    with load(producer_obj) as obj, PerfBuffer(obj.maps["pb"], pages=1) as pb:
        kept: List[bytes] = []
        with Pinned(cpu):
            for _ in range(6):
                run(obj, "emit_pb", 80)  # 80 * 48 bytes: most of the ring each round
                for sample in pb.iter(timeout=0):
                    kept.append(sample.data)
            assert [seq_of(d) for d in kept] == list(range(480))
            assert all(type(d) is bytes and d[:32] == record(seq_of(d)) for d in kept)
            run(obj, "emit_pb", 10)
            taken = []
            for sample in pb.iter(timeout_ms=0):
                taken.append(seq_of(sample.data))
                if len(taken) == 4:
                    break
            assert taken == [480, 481, 482, 483]
            batch = pb.consume_batch(limit=3)
            assert [(s.cpu, seq_of(s.data)) for s in batch] == [(cpu, 484), (cpu, 485), (cpu, 486)]
            assert [seq_of(s.data) for s in pb.consume_cpu(cpu)] == [487, 488, 489]
            assert pb.poll(timeout_ms=0) == []
            assert pb.wait(timeout=0) is False


# -- busy and discard bits, on a hand-made copy of the ring layout ---------------


def fake_ring(ring_map: Any) -> "tuple[RingBuffer, bytearray, bytearray]":
    """A reader whose two mappings are replaced by writable buffers of the same layout.

    The kernel maps the data area read-only and never leaves a record busy
    for long, so the busy bit is exercised here by writing headers directly:
    consumer page (consumer_pos), producer page (producer_pos), data area.
    """
    rb = RingBuffer(ring_map)
    page = rb._page
    consumer = bytearray(page)
    producer = bytearray(page + 2 * rb.size)
    rb.close()
    rb._consumer, rb._producer = consumer, producer  # type: ignore[assignment]
    return rb, consumer, producer


def put(producer: bytearray, page: int, size: int, pos: int, length: int, payload: bytes) -> None:
    """Write a record header + payload at ring position ``pos`` (both copies of the area)."""
    blob = struct.pack("=II", length, 0) + payload
    for base in (page, page + size):
        at = base + (pos % size)
        end = min(len(producer), at + len(blob))
        producer[at:end] = blob[:end - at]


def test_busy_bit_stops_and_discard_bit_skips(producer_obj: Path) -> None:
    from purebpf.maps.ringbuf import BUSY_BIT, DISCARD_BIT

    with load(producer_obj) as obj:
        rb, consumer, producer = fake_ring(obj.maps["rb"])
        page, size = rb._page, rb.size
        payload = [bytes([i]) * 16 for i in range(6)]
        # six 16-byte records (24 bytes each): #1 discarded, #3 still busy
        for i in range(6):
            flags = DISCARD_BIT if i == 1 else BUSY_BIT if i == 3 else 0
            put(producer, page, size, 24 * i, 16 | flags, payload[i])
        struct.pack_into("=Q", producer, 0, 6 * 24)
        assert rb.consume() == [payload[0], payload[2]]
        assert struct.unpack_from("=Q", consumer)[0] == 3 * 24  # stopped at the busy one
        assert rb.consume() == []
        put(producer, page, size, 24 * 3, 16, payload[3])  # committed now
        assert rb.consume() == [payload[3], payload[4], payload[5]]
        assert struct.unpack_from("=Q", consumer)[0] == 6 * 24
        # same-size records with a busy one in the middle (the fast path's check)
        start = 6 * 24
        for i in range(5):
            put(producer, page, size, start + 24 * i, 16 | (BUSY_BIT if i == 2 else 0), payload[i])
        struct.pack_into("=Q", producer, 0, start + 5 * 24)
        assert rb.consume_batch() == payload[:2]
        put(producer, page, size, start + 48, 16, payload[2])
        assert rb.consume_batch() == payload[2:5]
        # a record crossing the end of the area comes out whole
        pos = size - 8
        struct.pack_into("=Q", consumer, 0, pos)
        put(producer, page, size, pos, 32, b"W" * 32)
        struct.pack_into("=Q", producer, 0, pos + 40)
        assert rb.consume() == [b"W" * 32]
        rb._consumer = rb._producer = None


def test_poller_callback_raises_then_continues(producer_obj: Path, no_fd_leak: None) -> None:
    class Boom(Exception):
        pass

    seen: List[int] = []

    def callback(data: bytes) -> None:
        seen.append(seq_of(data))
        if seq_of(data) == 1:
            raise Boom("record 1")

    with load(producer_obj) as obj, RingBufferPoller() as poller:
        poller.add(obj.maps["rb"], callback)
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 4)
        with pytest.raises(Boom):
            poller.poll(timeout=1.0)
        assert seen == [0, 1]
        assert poller.poll(timeout=1.0) == 2
        assert seen == [0, 1, 2, 3]


# -- batch reads: one RecordBatch per read, no object per record -----------------


def ring_batches_until_empty(rb: RingBuffer) -> List[Any]:
    batches = []
    while True:
        batch = rb.read_batch()
        if not batch:
            return batches
        batches.append(batch)


@pytest.mark.parametrize("var_size", [False, True])
def test_ringbuf_read_batch_fills_wraps_and_loses_nothing(producer_obj: Path, var_size: bool,
                                                          no_fd_leak: None) -> None:
    with load(producer_obj, var_size=var_size) as obj, RingBuffer(obj.maps["rb"]) as rb:
        kept: List[Any] = []
        with Pinned(first_cpu()):
            for burst in RB_BURSTS:
                run(obj, "emit_rb", burst)
                kept += ring_batches_until_empty(rb)
                assert rb.pending() == 0
        total = sum(RB_BURSTS)
        failed = obj.globals["rb_fail"]
        assert failed > 0, "the ring never filled: the test would not test that"
        # the batches were kept while the kernel reused the ring many times over
        records = [r for batch in kept for r in batch]
        check_ring_records(records, total, failed, var_size)
        assert sum(8 + len(r) for r in records) > 20 * 4096
        if var_size:
            assert all(batch.stride is None for batch in kept if len(batch) > 1)
        else:
            # fixed-size records come evenly spaced: 8-byte header + 32 bytes
            assert all(batch.stride == 40 and batch.record_size == 32 for batch in kept)
            words = [w for batch in kept for w in batch.unpack("=4Q")]
            assert [struct.pack("=4Q", *w) for w in words] == records
            assert b"".join(batch.payloads() for batch in kept) == b"".join(records)


def test_ringbuf_read_batch_limit_discard_and_poll(producer_obj: Path) -> None:
    with load(producer_obj) as obj, RingBuffer(obj.maps["rb"]) as rb:
        with Pinned(first_cpu()):
            run(obj, "emit_rb", 20)
            first = rb.read_batch(limit=5)
            assert [seq_of(r) for r in first] == [0, 1, 2, 3, 4]
            assert [seq_of(r) for r in rb.read_batch()] == list(range(5, 20))
            assert len(rb.read_batch()) == 0
            run(obj, "emit_rb_discard", 30)
            batch = rb.read_batch()
            assert [seq_of(r) for r in batch] == list(range(20, 50, 2))
            assert batch.stride is None and batch.record_size == 32
            assert rb.pending() == 0
            # only discarded records left: nothing to hand out, the space is freed
            run(obj, "emit_rb_discard", 1)  # seq 50: kept
            run(obj, "emit_rb_discard", 1)  # seq 51: discarded
            assert [seq_of(r) for r in rb.read_batch()] == [50]
            assert len(rb.read_batch()) == 0 and rb.pending() == 0
        assert len(rb.poll_batch(timeout=0)) == 0
        thread = threading.Thread(target=run, args=(obj, "emit_rb", 3))
        thread.start()
        got = rb.poll_batch(timeout=5.0)
        thread.join()
        got_seqs = [seq_of(r) for r in got] + [seq_of(r) for r in rb.read_batch()]
        assert got_seqs == [52, 53, 54]
    with pytest.raises(StateError):
        rb.read_batch()


def test_ringbuf_read_batch_concurrent_producer(producer_obj: Path, no_fd_leak: None) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    bursts = [2000] * 60
    with load(producer_obj, ring_size=16384) as obj, RingBuffer(obj.maps["rb"]) as rb:
        thread = threading.Thread(target=lambda: [run(obj, "emit_rb", b) for b in bursts])
        kept: List[Any] = []
        with Pinned(cpus[-1]):
            thread.start()
            while thread.is_alive():
                kept.append(rb.poll_batch(timeout=0.05))
            thread.join()
            kept += ring_batches_until_empty(rb)
        records = [r for batch in kept for r in batch]
        check_ring_records(records, sum(bursts), obj.globals["rb_fail"], var_size=False)


def test_ringbuf_read_batch_busy_bit(producer_obj: Path) -> None:
    from purebpf.maps.ringbuf import BUSY_BIT, DISCARD_BIT

    with load(producer_obj) as obj:
        rb, consumer, producer = fake_ring(obj.maps["rb"])
        page, size = rb._page, rb.size
        payload = [bytes([i]) * 16 for i in range(6)]
        # same-size records, #2 busy: the batch ends before it
        for i in range(6):
            put(producer, page, size, 24 * i, 16 | (BUSY_BIT if i == 2 else 0), payload[i])
        struct.pack_into("=Q", producer, 0, 6 * 24)
        batch = rb.read_batch()
        assert batch.records() == payload[:2]
        assert struct.unpack_from("=Q", consumer)[0] == 2 * 24
        assert len(rb.read_batch()) == 0
        put(producer, page, size, 24 * 2, 16 | DISCARD_BIT, payload[2])  # then discarded
        assert rb.read_batch().records() == payload[3:6]
        assert struct.unpack_from("=Q", consumer)[0] == 6 * 24
        # a record crossing the end of the area
        pos = size - 16
        struct.pack_into("=Q", consumer, 0, pos)
        for i in range(3):
            put(producer, page, size, pos + 40 * i, 32, bytes([0x41 + i]) * 32)
        struct.pack_into("=Q", producer, 0, pos + 120)
        batch = rb.read_batch()
        assert batch.stride == 40 and batch.records() == [b"A" * 32, b"B" * 32, b"C" * 32]
        assert batch.payloads() == b"A" * 32 + b"B" * 32 + b"C" * 32
        rb._consumer = rb._producer = None


def test_perfbuf_read_batches_count_lost(producer_obj: Path, no_fd_leak: None) -> None:
    cpu = first_cpu()
    with load(producer_obj) as obj, PerfBuffer(obj.maps["pb"], pages=1) as pb:
        kept: List[Any] = []
        with Pinned(cpu):
            for burst in PB_BURSTS:
                run(obj, "emit_pb", burst)
                kept += pb.read_batches()
            run(obj, "emit_pb", 1)  # the kernel writes a pending lost count before it
            kept += pb.read_batches()
        total = sum(PB_BURSTS) + 1
        assert all(batch.cpu == cpu for batch in kept)
        lost = sum(batch.lost for batch in kept)
        assert lost > 0, "the ring never filled: the test would not test that"
        assert lost == obj.globals["pb_fail"]
        samples = [(batch.cpu, r) for batch in kept for r in batch]
        assert len(samples) + lost == total
        check_perf(samples, cpu, total)
        # records cut by the end of the 4 KiB ring come out whole
        assert len(samples) * 48 > 10 * 4096
        even = [batch for batch in kept if batch.stride is not None]
        assert even and all(batch.stride == 48 and batch.record_size == 36 for batch in even)
        for batch in kept:
            assert list(batch.unpack("=4Q")) == [struct.unpack("=4Q", r[:32]) for r in batch]


def test_perfbuf_read_batches_limit_and_poll(producer_obj: Path) -> None:
    cpu = first_cpu()
    with load(producer_obj) as obj, PerfBuffer(obj.maps["pb"], pages=2) as pb:
        with Pinned(cpu):
            run(obj, "emit_pb", 10)
        first = pb.read_batches(limit=4)
        assert len(first) == 1 and [seq_of(r) for r in first[0]] == [0, 1, 2, 3]
        rest = pb.read_batches()
        assert [seq_of(r) for r in rest[0]] == list(range(4, 10))
        assert pb.read_batches() == [] and pb.poll_batches(timeout=0) == []
        thread = threading.Thread(target=run, args=(obj, "emit_pb", 3))
        thread.start()
        got = pb.poll_batches(timeout=5.0)
        thread.join()
        seqs = [seq_of(r) for batch in got + pb.read_batches() for r in batch]
        assert seqs == [10, 11, 12]
    with pytest.raises(StateError):
        pb.read_batches()


def test_poller_batch_callbacks(producer_obj: Path, no_fd_leak: None) -> None:
    """A ring added with batch=True gets one RecordBatch per drain, beside a per-record ring."""
    with load(producer_obj) as a, load(producer_obj, var_size=True) as b:
        batches: List[Any] = []
        got_b: List[bytes] = []
        with RingBufferBuilder().add(a.maps["rb"], batches.append, batch=True).add(
                b.maps["rb"], got_b.append).build() as poller:
            with Pinned(first_cpu()):
                for _ in range(10):
                    run(a, "emit_rb", 60)
                    run(b, "emit_rb", 50)
                    assert poller.poll(timeout=1.0) > 0
                    while poller.consume():
                        pass
            assert all(len(batch) > 0 for batch in batches)
            got_a = [r for batch in batches for r in batch]
            check_ring_records(got_a, 600, a.globals["rb_fail"], var_size=False)
            check_ring_records(got_b, 500, b.globals["rb_fail"], var_size=True)
            # a batch callback returning 1 stops the poll after its batch
            stop_batches: List[Any] = []
            with RingBufferPoller() as stopper:
                stopper.add(a.maps["rb"], lambda batch: stop_batches.append(batch) or 1,
                            batch=True)
                stopper.add(b.maps["rb"], got_b.append)
                with Pinned(first_cpu()):
                    run(a, "emit_rb", 5)
                    run(b, "emit_rb", 2)
                assert stopper.consume() == 5
                assert [seq_of(r) for r in stop_batches[0]] == list(range(600, 605))
                assert stopper.consume() == 2
