"""``SEC("perf_event")`` programs: run on each sample of a perf event.

A sampling event (by default the software ``PERF_COUNT_SW_CPU_CLOCK`` every
``sample_period`` ns, or ``sample_freq`` times a second) is opened on one
CPU for all processes, and the program attached to it.  Sampling a whole
machine takes one event -- one Link -- per CPU.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, List, Optional

from purebpf.errors import KernelError
from purebpf.link._common import attach_perf_fd, check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_perf_event", "attach_perf_event_all_cpus", "online_cpus"]


def online_cpus() -> List[int]:
    """CPUs listed in /sys/devices/system/cpu/online (``"0-3,5"``)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: List[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def attach_perf_event(program: "Program", *, cpu: int, event_type: int = 1, config: int = 0,
                      sample_period: Optional[int] = None, sample_freq: Optional[int] = None,
                      pid: int = -1, cookie: int = 0) -> Link:
    """Attach to a sampling perf event on ``cpu`` (``event_type``/``config``:
    ``perf_event_attr.type``/``config``; default software CPU clock,
    ``sample_period`` 1,000,000 ns when neither period nor frequency is given)."""
    target = f"cpu {cpu}"
    check_type(program, (ProgType.PERF_EVENT,), "perf_event", target)
    from purebpf.syscall.perf import PerfEventAttr, perf_event_open

    attr = PerfEventAttr()
    attr.type = event_type
    attr.config = config
    if sample_freq is not None:
        attr.freq = 1
        attr.sample_freq = sample_freq
    else:
        attr.sample_period = sample_period if sample_period is not None else 1_000_000
    try:
        perf_fd = perf_event_open(attr, pid, cpu)
    except KernelError as exc:
        hint = f"no CPU {cpu}" if exc.errno == errno.ENODEV else None
        raise attach_error(exc, target, hint=hint, detail="perf_event_open of a sampling event") from exc
    return attach_perf_fd(program, perf_fd, kind="perf_event", target=target, cookie=cookie)


def attach_perf_event_all_cpus(program: "Program", **kwargs: int) -> List[Link]:
    """:func:`attach_perf_event` on every online CPU (all or nothing)."""
    links: List[Link] = []
    try:
        for cpu in online_cpus():
            links.append(attach_perf_event(program, cpu=cpu, **kwargs))
    except BaseException:
        for link in links:
            link.close()
        raise
    return links
