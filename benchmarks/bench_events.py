"""Benchmark: records per second consumed from a ring buffer and a perf buffer.

    python3 benchmarks/bench_events.py [--records N] [--repeat R]      (root)

One producer, one run, two consumers:

* the producer is the XDP object of tests/test_events_producer.py (built with
  clang-19, loaded by purebpf): BPF_PROG_TEST_RUN ``repeat=N`` makes it emit
  N numbered 32-byte records into the ring buffer (``emit_rb``) or the perf
  buffer (``emit_pb``), pinned to one CPU;
* purebpf's :class:`~purebpf.maps.RingBuffer` / :class:`~purebpf.maps.PerfBuffer`
  in five forms:

  - ``callback``: a Python callback per record (``consume_count(callback)``);
  - ``iter``: the iterator form, one ``bytes`` per record;
  - ``list``: ``consume_batch()``, every record as ``bytes`` in one list;
  - ``unpack``: ``read_batch()`` / ``read_batches()`` and
    ``RecordBatch.unpack("=QQQQ")``, one tuple per record parsed in C and a
    Python loop over them;
  - ``batch``: ``read_batch()`` / ``read_batches()`` alone -- one copy, the
    record headers checked in C, no object per record (what a consumer
    handing the batch to numpy/ctypes or counting pays);
* benchmarks/bench_events_consumer.c (built here with ``gcc -O2 ... -lbpf``
  into benchmarks/build/): libbpf's ``ring_buffer__consume`` /
  ``perf_buffer__consume`` with a C callback that counts, on the same map
  (opened by map id).

Two measurements, medians over ``--repeat`` samples, ratios purebpf / libbpf:

* **drain**: the buffer is filled first (sized so that nothing is dropped:
  the producer's fail counters are checked), then only the consumer
  draining the N records is timed -- the consumer's own top speed;
* **live**: the producer runs (one BPF_PROG_TEST_RUN, repeat=N, on its own
  CPU; the call releases the GIL) while the consumer polls on the other
  CPU, with small buffers (``--live-ring-kb``, ``--live-perf-pages``): what
  a reader keeps of a producer going flat out.  Delivered records per second
  (first poll to last record) and the share the kernel had to drop
  (program's fail counters) are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "benchmarks" / "build"
sys.path.insert(0, str(ROOT / "tests"))

from test_events_producer import build_producer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402

from purebpf.maps import PerfBuffer, RingBuffer  # noqa: E402
from purebpf.object import open_object  # noqa: E402

PACKET = bytes(64)
#: the CPUs this process may use, read before it pins itself
CPUS = sorted(os.sched_getaffinity(0))


def build_consumer() -> Path:
    exe = BUILD / "bench_events_consumer"
    src = ROOT / "benchmarks" / "bench_events_consumer.c"
    BUILD.mkdir(parents=True, exist_ok=True)
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        gcc = shutil.which("gcc")
        if gcc is None:
            sys.exit("gcc is needed to build the libbpf consumer")
        subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(src), "-lbpf"], check=True)
    return exe


class Bench:
    def __init__(self, obj: Any, consumer: Path, records: int, pages: int,
                 live_pages: int) -> None:
        self.obj = obj
        self.live_pages = live_pages
        self.consumer = consumer
        self.records = records
        self.pages = pages
        self.producer_cpu = CPUS[0]
        self.consumer_cpu = CPUS[-1]

    def fill(self, prog: str, fail_var: str) -> None:
        """N records into the buffer from one CPU; none may be refused."""
        before = self.obj.globals[fail_var]
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.producer_cpu})
        try:
            self.obj.programs[prog].test_run(PACKET, repeat=self.records)
        finally:
            os.sched_setaffinity(0, saved)
        if self.obj.globals[fail_var] != before:
            sys.exit(f"{prog}: the buffer overflowed; use fewer --records or a larger buffer")

    # -- purebpf -------------------------------------------------------------

    def ring_python(self, mode: str) -> float:
        with RingBuffer(self.obj.maps["rb"]) as rb:
            self.fill("emit_rb", "rb_fail")
            got = 0
            t0 = time.perf_counter_ns()
            if mode == "callback":
                seen = [0]

                def callback(data: bytes) -> None:
                    seen[0] += 1

                while seen[0] < self.records:
                    rb.consume_count(callback)
                got = seen[0]
            elif mode == "list":
                while got < self.records:
                    got += len(rb.consume_batch())
            elif mode == "batch":
                while got < self.records:
                    got += len(rb.read_batch())
            elif mode == "unpack":
                while got < self.records:
                    for _rec in rb.read_batch().unpack("=QQQQ"):
                        got += 1
            else:
                for _data in rb.iter(timeout=1.0):
                    got += 1
                    if got == self.records:
                        break
            t1 = time.perf_counter_ns()
        assert got == self.records, (got, self.records)
        return got / ((t1 - t0) / 1e9)

    def perf_python(self, mode: str) -> float:
        seen = [0]

        def sample_cb(cpu: int, data: bytes) -> None:
            seen[0] += 1

        with PerfBuffer(self.obj.maps["pb"], pages=self.pages, sample_cb=sample_cb) as pb:
            self.fill("emit_pb", "pb_fail")
            got = 0
            t0 = time.perf_counter_ns()
            if mode == "callback":
                while seen[0] < self.records:
                    pb.consume_count()
                got = seen[0]
            elif mode == "list":
                while got < self.records:
                    got += len(pb.consume_batch())
            elif mode == "batch":
                while got < self.records:
                    got += sum(len(b) for b in pb.read_batches())
            elif mode == "unpack":
                while got < self.records:
                    for batch in pb.read_batches():
                        for _rec in batch.unpack("=QQQQ"):
                            got += 1
            else:
                for _sample in pb.iter(timeout=1.0):
                    got += 1
                    if got == self.records:
                        break
            t1 = time.perf_counter_ns()
        assert got == self.records, (got, self.records)
        return got / ((t1 - t0) / 1e9)

    def live_python(self, kind: str, mode: str) -> "tuple[float, float]":
        """(delivered records/s, dropped share) with the producer running alongside."""
        prog, fail_var = ("emit_rb", "rb_fail") if kind == "ring" else ("emit_pb", "pb_fail")
        seen = [0]

        def count(*_args: object) -> None:
            seen[0] += 1

        reader: Any
        if kind == "ring":
            reader = RingBuffer(self.obj.maps["rb"])
        else:
            reader = PerfBuffer(self.obj.maps["pb"], pages=self.live_pages, sample_cb=count)
        with reader:
            before = self.obj.globals[fail_var]
            thread = threading.Thread(target=self.produce, args=(prog,))
            t0 = last = time.perf_counter_ns()
            thread.start()
            idle = 0
            while idle < 3:
                reader.wait(timeout=0.1)
                if mode == "batch":
                    if kind == "ring":
                        n = len(reader.read_batch())
                        seen[0] += n
                    else:
                        batches = reader.read_batches()
                        n = sum(len(b) + bool(b.lost) for b in batches)
                        seen[0] += sum(len(b) for b in batches)
                elif kind == "ring":
                    n = reader.consume_count(count)
                else:
                    n = reader.consume_count()
                if n:
                    last, idle = time.perf_counter_ns(), 0
                elif not thread.is_alive():
                    idle += 1
            thread.join()
            failed = self.obj.globals[fail_var] - before
        if seen[0] + failed != self.records:
            sys.exit(f"{kind} {mode}: {seen[0]} delivered + {failed} dropped != {self.records}")
        return seen[0] / ((last - t0) / 1e9), failed / self.records

    def produce(self, prog: str) -> None:
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.producer_cpu})
        try:
            self.obj.programs[prog].test_run(PACKET, repeat=self.records)
        finally:
            os.sched_setaffinity(0, saved)

    # -- libbpf ----------------------------------------------------------------

    def live_libbpf(self, kind: str) -> "tuple[float, float]":
        prog, fail_var = ("emit_rb", "rb_fail") if kind == "ring" else ("emit_pb", "pb_fail")
        m = self.obj.maps["rb" if kind == "ring" else "pb"]
        args = [str(self.consumer), kind, str(m.id)]
        if kind == "perf":
            args.append(str(self.live_pages))
        args += [str(self.records), "live"]
        cpu = self.consumer_cpu
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        try:
            assert proc.stdout is not None and proc.stdin is not None
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"libbpf consumer ({kind}) failed to start")
            before = self.obj.globals[fail_var]
            proc.stdin.write("go\n")
            proc.stdin.flush()
            self.produce(prog)
            samples, _lost, ns = (int(x) for x in proc.stdout.readline().split())
            failed = self.obj.globals[fail_var] - before
        finally:
            proc.communicate()
        if samples + failed != self.records:
            sys.exit(f"libbpf {kind} live: {samples} delivered + {failed} dropped != {self.records}")
        return samples / (ns / 1e9), failed / self.records

    def libbpf(self, kind: str) -> float:
        m = self.obj.maps["rb" if kind == "ring" else "pb"]
        args = [str(self.consumer), kind, str(m.id)]
        if kind == "perf":
            args.append(str(self.pages))
        args.append(str(self.records))
        cpu = self.consumer_cpu
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        try:
            assert proc.stdout is not None and proc.stdin is not None
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"libbpf consumer ({kind}) failed to start")
            if kind == "ring":
                self.fill("emit_rb", "rb_fail")
            else:
                self.fill("emit_pb", "pb_fail")
            proc.stdin.write("go\n")
            proc.stdin.flush()
            samples, lost, ns = (int(x) for x in proc.stdout.readline().split())
        finally:
            proc.communicate()
        if samples != self.records or lost:
            sys.exit(f"libbpf consumer ({kind}): {samples} samples, {lost} lost")
        return samples / (ns / 1e9)


def median_rate(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=400_000,
                    help="records per sample (default 400000)")
    ap.add_argument("--repeat", type=int, default=5, help="samples per figure (median)")
    ap.add_argument("--ring-mb", type=int, default=64, help="ring buffer size, MiB (power of 2)")
    ap.add_argument("--perf-pages", type=int, default=8192,
                    help="perf ring pages per CPU (power of 2)")
    ap.add_argument("--live-ring-kb", type=int, default=256, help="ring buffer size in live mode")
    ap.add_argument("--live-perf-pages", type=int, default=64, help="perf pages per CPU in live mode")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root")
    producer = build_producer(BUILD / "events")
    consumer = build_consumer()
    rates: Dict[str, float] = {}
    live: Dict[str, "tuple[float, float]"] = {}
    for ring_size, phase in ((args.ring_mb << 20, "drain"), (args.live_ring_kb << 10, "live")):
        with open_object(str(producer)) as spec:
            spec.maps["rb"].max_entries = ring_size
            obj = spec.load()
        with obj:
            bench = Bench(obj, consumer, args.records, args.perf_pages, args.live_perf_pages)
            os.sched_setaffinity(0, {bench.consumer_cpu})
            for kind in ("ring", "perf"):
                if phase == "drain":
                    py = bench.ring_python if kind == "ring" else bench.perf_python
                    rates[f"{kind} libbpf (C callback)"] = median_rate(
                        lambda: bench.libbpf(kind), args.repeat)
                    for mode in ("callback", "iter", "list", "unpack", "batch"):
                        rates[f"{kind} purebpf {mode}"] = median_rate(lambda: py(mode), args.repeat)
                else:
                    live[f"{kind} libbpf (C callback)"] = median_pair(
                        lambda: bench.live_libbpf(kind), args.repeat)
                    for mode in ("callback", "batch"):
                        live[f"{kind} purebpf {mode}"] = median_pair(
                            lambda: bench.live_python(kind, mode), args.repeat)
    print(f"{args.records} records of 32 bytes per sample, median of {args.repeat}; "
          f"producer CPU {bench.producer_cpu}, consumer CPU {bench.consumer_cpu}")
    print(f"\ndrain (buffer filled first: ring {args.ring_mb} MiB, perf {args.perf_pages} pages/CPU)")
    print(f"{'consumer':34} {'records/s':>14} {'vs libbpf':>10}")
    for kind in ("ring", "perf"):
        base = rates[f"{kind} libbpf (C callback)"]
        for name, rate in rates.items():
            if name.startswith(kind):
                print(f"{name:34} {rate:14,.0f} {rate / base:10.3f}")
    print(f"\nlive (producer running: ring {args.live_ring_kb} KiB, "
          f"perf {args.live_perf_pages} pages/CPU)")
    print("(a reader that falls behind makes the kernel drop records, which also spares the\n"
          " producer its wakeups: read delivered/s together with the dropped column)")
    print(f"{'consumer':34} {'delivered/s':>14} {'vs libbpf':>10} {'dropped':>8}")
    for kind in ("ring", "perf"):
        base = live[f"{kind} libbpf (C callback)"][0]
        for name, (rate, dropped) in live.items():
            if name.startswith(kind):
                print(f"{name:34} {rate:14,.0f} {rate / base:10.3f} {dropped:8.1%}")


def median_pair(fn: Callable[[], "tuple[float, float]"], repeat: int) -> "tuple[float, float]":
    """The sample with the median rate (and its dropped share)."""
    samples = sorted(fn() for _ in range(repeat))
    return samples[len(samples) // 2]


if __name__ == "__main__":
    main(sys.argv[1:])
