"""Tracepoints: ``SEC("tp/CATEGORY/NAME")`` / ``SEC("tracepoint/...")``.

The tracepoint's id is read from tracefs (``events/CATEGORY/NAME/id``), a
``PERF_TYPE_TRACEPOINT`` perf event with that id as ``config`` is opened,
and the program attached to it (a perf link, or ``PERF_EVENT_IOC_SET_BPF``).
The Link owns the perf event fd too.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional, Tuple

from purebpf.errors import AttachError, KernelError, NotFoundError
from purebpf.link._common import attach_perf_fd, check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_tracepoint", "split_tracepoint"]


def split_tracepoint(text: str) -> Tuple[str, str]:
    """``"syscalls/sys_enter_getpid"`` (or ``"syscalls:sys_enter_getpid"``) -> its two parts."""
    for sep in ("/", ":"):
        if sep in text:
            category, _, name = text.partition(sep)
            if category and name:
                return category, name
    raise AttachError(errno.EINVAL, "attach", text, detail="a tracepoint is named CATEGORY/NAME")


def attach_tracepoint(program: "Program", category: Optional[str] = None, name: Optional[str] = None, *,
                      cookie: int = 0) -> Link:
    """Attach to tracepoint ``category/name`` (default: from the section name)."""
    if category is not None and name is None:
        category, name = split_tracepoint(category)
    elif category is None:
        if not program.attach_target:
            raise AttachError(errno.EINVAL, "attach", "tracepoint",
                              detail=f"program {program.name!r}: no tracepoint given")
        category, name = split_tracepoint(program.attach_target)
    assert name is not None
    target = f"{category}/{name}"
    check_type(program, (ProgType.TRACEPOINT,), "tracepoint", target)
    from purebpf.syscall.perf import PerfEventAttr, PerfType, perf_event_open, tracepoint_id

    try:
        tp_id = tracepoint_id(category, name)
    except NotFoundError as exc:
        raise AttachError(errno.ENOENT, "tracefs", target, hint="no such tracepoint in tracefs events/",
                          detail=f"tracepoint program {program.name!r}") from exc
    attr = PerfEventAttr()
    attr.type = PerfType.TRACEPOINT
    attr.config = tp_id
    attr.sample_period = 1
    attr.wakeup_events = 1
    try:
        perf_fd = perf_event_open(attr, -1, 0)
    except KernelError as exc:
        raise attach_error(exc, target, detail=f"perf_event_open of tracepoint id {tp_id}") from exc
    return attach_perf_fd(program, perf_fd, kind="tracepoint", target=target, cookie=cookie)
