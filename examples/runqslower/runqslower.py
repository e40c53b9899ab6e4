#!/usr/bin/env python3
"""runqslower: trace high run-queue latency, with purebpf only.

Prints every time a task waited longer than ``min_us`` microseconds between
being woken up and getting a CPU (its *run-queue latency*)::

    # python3 examples/runqslower/runqslower.py 1000
    Tracing run queue latency higher than 1000 us
    TIME     COMM             TID           LAT(us)
    12:30:01 kworker/0:1      51               1520

usage: runqslower.py [-h] [-p PID] [-t TID] [-P] [--duration SECONDS] [min_us]

The work is done by runqslower.bpf.o (built from runqslower.bpf.c by
build.sh): three tp_btf programs on sched_wakeup, sched_wakeup_new and
sched_switch, and a perf event array to send events.  This script is the
whole user-space side, in the same steps as the libbpf-rs example:

1. open the object (``purebpf.open_object``) and set its read-only globals
   (``min_us``, ``targ_pid``, ``targ_tgid``) before loading, so the verifier
   sees them as constants;
2. load it (maps created, CO-RE relocations applied against the running
   kernel's BTF, programs verified);
3. attach the three programs to their BTF tracepoints;
4. read ``struct event`` records from the ``events`` map with a
   :class:`purebpf.PerfBuffer` and print them until Ctrl-C (or
   ``--duration``).
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import sys
import time
from types import FrameType
from typing import Any, List, Optional, Sequence

import purebpf
from purebpf.errors import PurebpfError

HERE = os.path.dirname(os.path.abspath(__file__))
OBJECT = os.path.join(HERE, "runqslower.bpf.o")

#: ``struct event`` of runqslower.h: task comm, prev comm, pid, prev pid, delta_us.
EVENT = struct.Struct("=16s16sIIQ")

HEADER = f"{'TIME':<8} {'COMM':<16} {'TID':<6} {'LAT(us)':>14}"
HEADER_PREV = f"{HEADER} {'PREV COMM':<16} {'PREV TID':<6}"


class Stop(Exception):
    """Raised by the SIGTERM handler so the main loop unwinds cleanly."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runqslower",
        description="Trace high run queue latency.",
        epilog="examples:\n"
               "  runqslower         # trace latency higher than 10000 us (default)\n"
               "  runqslower 1000    # trace latency higher than 1000 us\n"
               "  runqslower -p 123  # trace pid 123\n"
               "  runqslower -t 123  # trace tid 123 (use for threads only)\n"
               "  runqslower -P      # also show previous task name and TID",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", "--pid", type=_positive, default=0, metavar="PID",
                        help="process ID to trace")
    parser.add_argument("-t", "--tid", type=_positive, default=0, metavar="TID",
                        help="thread ID to trace")
    parser.add_argument("-P", "--previous", action="store_true",
                        help="also show previous task name and TID")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("min_us", nargs="?", type=_non_negative, default=10000,
                        help="minimum run queue latency to trace, in us (default 10000)")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0 or value >= 1 << 31:
        raise argparse.ArgumentTypeError(f"out of range: {text!r}")
    return value


def attach(program: Any) -> Any:
    """Attach a tp_btf program; returns what keeps it attached (has ``close()``).

    ``Program.attach()`` picks the mechanism from the section name.  Where
    the library has no attach API, a tp_btf program is attached directly
    with BPF_RAW_TRACEPOINT_OPEN and no name: its target tracepoint is the
    BTF id it was loaded with.
    """
    if hasattr(program, "attach"):
        return program.attach()
    from purebpf.syscall.commands import raw_tracepoint_open

    return raw_tracepoint_open(None, program.fd)


def format_event(data: bytes, previous: bool) -> str:
    task, prev_task, pid, prev_pid, delta_us = EVENT.unpack_from(data)
    comm = task.split(b"\0", 1)[0].decode("utf-8", "replace")
    line = f"{time.strftime('%H:%M:%S'):<8} {comm:<16} {pid:<6} {delta_us:>14}"
    if previous:
        prev_comm = prev_task.split(b"\0", 1)[0].decode("utf-8", "replace")
        line += f" {prev_comm:<16} {prev_pid:<6}"
    return line


def run(args: argparse.Namespace) -> int:
    """Open, configure, load, attach, then print events until told to stop."""
    links: List[Any] = []
    perf: Optional[purebpf.PerfBuffer] = None
    with purebpf.open_object(OBJECT) as opened:
        opened.rodata["min_us"] = args.min_us
        opened.rodata["targ_pid"] = args.tid
        opened.rodata["targ_tgid"] = args.pid
        with opened.load() as obj:
            try:
                for name in ("handle_sched_wakeup", "handle_sched_wakeup_new",
                             "handle_sched_switch"):
                    links.append(attach(obj.programs[name]))
                perf = purebpf.PerfBuffer(obj.maps["events"], pages=64)
                print(f"Tracing run queue latency higher than {args.min_us} us", flush=True)
                print(HEADER_PREV if args.previous else HEADER, flush=True)
                _loop(perf, args)
            finally:
                if perf is not None:
                    perf.close()
                for link in reversed(links):
                    link.close()
    return 0


def _loop(perf: "purebpf.PerfBuffer", args: argparse.Namespace) -> None:
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while True:
        timeout = 0.1
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            timeout = min(timeout, left)
        for sample in perf.poll(timeout):
            if sample.lost:
                print(f"lost {sample.lost} events on CPU #{sample.cpu}",
                      file=sys.stderr, flush=True)
            elif len(sample.data) >= EVENT.size:
                print(format_event(sample.data, args.previous), flush=True)


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(args)
    except (KeyboardInterrupt, Stop):
        return 0
    except PurebpfError as exc:
        print(f"runqslower: {exc}", file=sys.stderr)
        if os.geteuid() != 0:
            print("runqslower: tracing needs root (CAP_BPF and CAP_PERFMON)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
