#!/usr/bin/env python3
"""runqslower: trace high run-queue latency, with purebpf only.

Prints every time a task waited longer than ``min_us`` microseconds between
being woken up and getting a CPU (its *run-queue latency*)::

    # python3 examples/runqslower/runqslower.py 1000
    Tracing run queue latency higher than 1000 us
    TIME     COMM             TID           LAT(us)
    12:30:01 kworker/0:1      51               1520

usage: runqslower.py [-h] [-p PID] [-t TID] [-P] [-v] [--duration SECONDS] [min_us]

The work is done by runqslower.bpf.o (built from runqslower.bpf.c by
build.sh): three tp_btf programs on sched_wakeup, sched_wakeup_new and
sched_switch, and a perf event array to send events.  This script is the
whole user-space side, in the same steps as the libbpf-rs example:

1. open the object (``purebpf.open_object``) and set its read-only globals
   (``min_us``, ``targ_pid``, ``targ_tgid``) before loading, so the verifier
   sees them as constants;
2. load it (maps created, CO-RE relocations applied against the running
   kernel's BTF, programs verified);
3. attach the three programs to their BTF tracepoints
   (``Object.attach_all()``, libbpf's skeleton attach);
4. read ``struct event`` records from the ``events`` map with a
   :class:`purebpf.PerfBuffer` (built like libbpf-rs's ``PerfBufferBuilder``:
   ``sample_cb(cpu, data)``, ``lost_cb(cpu, count)``) and print them until
   Ctrl-C (or ``--duration``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import struct
import sys
import time
from types import FrameType
from typing import Optional, Sequence

from purebpf.errors import PurebpfError, StateError
from purebpf.maps import PerfBuffer, PerfBufferBuilder
from purebpf.object import open_object

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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show purebpf's debug log messages")
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


def format_event(data: bytes, previous: bool) -> str:
    task, prev_task, pid, prev_pid, delta_us = EVENT.unpack_from(data)
    comm = task.split(b"\0", 1)[0].decode("utf-8", "replace")
    line = f"{time.strftime('%H:%M:%S'):<8} {comm:<16} {pid:<6} {delta_us:>14}"
    if previous:
        prev_comm = prev_task.split(b"\0", 1)[0].decode("utf-8", "replace")
        line += f" {prev_comm:<16} {prev_pid:<6}"
    return line


def print_event(data: bytes, previous: bool) -> None:
    """sample_cb: one ``struct event`` from the BPF program."""
    if len(data) >= EVENT.size:
        print(format_event(data, previous), flush=True)


def print_lost(cpu: int, count: int) -> None:
    """lost_cb: the kernel dropped ``count`` events because CPU ``cpu``'s ring was full."""
    print(f"lost {count} events on CPU #{cpu}", file=sys.stderr, flush=True)


PROGRAMS = ("handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch")


def run(args: argparse.Namespace) -> int:
    """Open, configure, load, attach, then print events until told to stop."""
    with open_object(OBJECT) as opened:
        opened.rodata["min_us"] = args.min_us
        opened.rodata["targ_pid"] = args.tid
        opened.rodata["targ_tgid"] = args.pid
        with opened.load() as obj:
            # Like a libbpf skeleton's attach: each tp_btf/NAME program is
            # attached to the BTF tracepoint it was loaded for.  The links
            # belong to `obj`, which closes them first when it is closed.
            links = obj.attach_all()
            if sorted(links) != sorted(PROGRAMS):
                raise StateError(f"expected links for {sorted(PROGRAMS)}, made {sorted(links)}")
            with (PerfBufferBuilder(obj.maps["events"])
                  .pages(64)
                  .sample_cb(lambda cpu, data: print_event(data, args.previous))
                  .lost_cb(print_lost)
                  .build()) as perf:
                print(f"Tracing run queue latency higher than {args.min_us} us", flush=True)
                print(HEADER_PREV if args.previous else HEADER, flush=True)
                _loop(perf, args)
    return 0


def _loop(perf: PerfBuffer, args: argparse.Namespace) -> None:
    """Poll the perf buffer (its callbacks print) until the duration is over."""
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while True:
        timeout_ms = 100
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            timeout_ms = min(timeout_ms, max(1, int(left * 1000)))
        perf.poll(timeout_ms=timeout_ms)


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(args)
    except (KeyboardInterrupt, Stop):
        return 0
    except BrokenPipeError:
        # The reader went away (`runqslower | head`): stop quietly, and keep
        # the interpreter from complaining while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except PurebpfError as exc:
        print(f"runqslower: {exc}", file=sys.stderr)
        if os.geteuid() != 0:
            print("runqslower: tracing needs root (CAP_BPF and CAP_PERFMON)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
