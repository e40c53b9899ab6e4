"""Benchmark: records per second consumed from a ring buffer and a perf buffer.

    python3 benchmarks/bench_events.py [--records N] [--repeat R]      (root)

One producer, one run, two consumers:

* the producer is the XDP object of tests/test_events_producer.py (built with
  clang-19, loaded by purebpf): BPF_PROG_TEST_RUN ``repeat=N`` makes it emit
  N numbered 32-byte records into the ring buffer (``emit_rb``) or the perf
  buffer (``emit_pb``), pinned to one CPU;
* purebpf's :class:`~purebpf.maps.RingBuffer` / :class:`~purebpf.maps.PerfBuffer`
  with a Python callback per record (``consume(callback=...)``), the batch
  form (``consume_batch()``) and the iterator form;
* benchmarks/bench_events_consumer.c (built here with ``gcc -O2 ... -lbpf``
  into benchmarks/build/): libbpf's ``ring_buffer__consume`` /
  ``perf_buffer__consume`` with a C callback that counts, on the same map
  (opened by map id).

Each sample fills the buffer first (sized so that nothing is dropped: the
producer's fail counters are checked), then times only the consumer draining
the N records -- the consumer's own rate, not the producer's.  Medians over
``--repeat`` samples; ratios purebpf / libbpf are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "benchmarks" / "build"
sys.path.insert(0, str(ROOT / "tests"))

from test_events_producer import build_producer  # noqa: E402

from purebpf.maps import PerfBuffer, RingBuffer  # noqa: E402
from purebpf.object import open_object  # noqa: E402

PACKET = bytes(64)


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
    def __init__(self, obj: Any, consumer: Path, records: int, pages: int) -> None:
        self.obj = obj
        self.consumer = consumer
        self.records = records
        self.pages = pages
        cpus = sorted(os.sched_getaffinity(0))
        self.producer_cpu = cpus[0]
        self.consumer_cpu = cpus[-1]

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
            elif mode == "batch":
                while got < self.records:
                    got += len(rb.consume_batch())
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
            elif mode == "batch":
                while got < self.records:
                    got += len(pb.consume_batch())
            else:
                for _sample in pb.iter(timeout=1.0):
                    got += 1
                    if got == self.records:
                        break
            t1 = time.perf_counter_ns()
        assert got == self.records, (got, self.records)
        return got / ((t1 - t0) / 1e9)

    # -- libbpf ----------------------------------------------------------------

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
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root")
    producer = build_producer(BUILD / "events")
    consumer = build_consumer()
    with open_object(str(producer)) as spec:
        spec.maps["rb"].max_entries = args.ring_mb << 20
        obj = spec.load()
    with obj:
        bench = Bench(obj, consumer, args.records, args.perf_pages)
        os.sched_setaffinity(0, {bench.consumer_cpu})
        rates: Dict[str, float] = {}
        for kind, py in (("ring", bench.ring_python), ("perf", bench.perf_python)):
            rates[f"{kind} libbpf (C callback)"] = median_rate(lambda: bench.libbpf(kind), args.repeat)
            for mode in ("callback", "batch", "iter"):
                rates[f"{kind} purebpf {mode}"] = median_rate(lambda: py(mode), args.repeat)
    print(f"{args.records} records of 32 bytes per sample, median of {args.repeat}; "
          f"producer CPU {bench.producer_cpu}, consumer CPU {bench.consumer_cpu}")
    print(f"{'consumer':34} {'records/s':>14} {'vs libbpf':>10}")
    for kind in ("ring", "perf"):
        base = rates[f"{kind} libbpf (C callback)"]
        for name, rate in rates.items():
            if name.startswith(kind):
                print(f"{name:34} {rate:14,.0f} {rate / base:10.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
