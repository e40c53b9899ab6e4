"""Helpers shared by the attach mechanisms: program type checks and
the perf-event attach path (BPF_LINK_CREATE with ``BPF_PERF_EVENT``, falling
back to ``PERF_EVENT_IOC_SET_BPF``)."""

from __future__ import annotations

import errno
import fcntl
from typing import TYPE_CHECKING, Iterable, Optional, Union

from purebpf.errors import AttachError, KernelError
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program
    from purebpf.syscall import FD

__all__ = ["check_type", "type_name", "attach_perf_fd"]


def type_name(prog_type: Union[ProgType, int]) -> str:
    """``"TRACEPOINT"`` for ``BPF_PROG_TYPE_TRACEPOINT`` (or the number)."""
    try:
        return ProgType(int(prog_type)).name
    except ValueError:
        return str(int(prog_type))


def check_type(program: "Program", allowed: Iterable[ProgType], kind: str, target: str) -> None:
    """Raise AttachError (EINVAL) naming the program type when ``program`` cannot be
    attached as ``kind`` (checked before any syscall, so the message is clear)."""
    allowed = tuple(allowed)
    if int(program.prog_type) not in {int(t) for t in allowed}:
        want = " or ".join(t.name for t in allowed)
        raise AttachError(errno.EINVAL, "attach", target,
                          detail=f"program {program.name!r} has type {type_name(program.prog_type)}; "
                                 f"a {kind} attachment needs {want}")


def attach_perf_fd(program: "Program", perf_fd: "FD", *, kind: str, target: str,
                   cookie: int = 0) -> Link:
    """Attach ``program`` to an open perf event; the returned Link owns ``perf_fd``.

    First ``BPF_LINK_CREATE(prog, perf_fd, BPF_PERF_EVENT)`` (Linux 5.15); when
    the kernel does not know perf links (EINVAL/EOPNOTSUPP and no cookie asked
    for), ``ioctl(PERF_EVENT_IOC_SET_BPF)`` then ``PERF_EVENT_IOC_ENABLE``.
    On failure ``perf_fd`` is closed.
    """
    from purebpf.syscall import commands
    from purebpf.syscall.perf import PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF

    try:
        try:
            fd = commands.link_create(program.fd, perf_fd.fileno(), AttachType.PERF_EVENT,
                                      perf_cookie=cookie)
            return Link(fd, kind=kind, target=target, program=program, perf_fd=perf_fd)
        except KernelError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP) or cookie:
                raise attach_error(exc, target, detail=f"{kind} program {program.name!r}") from exc
            first: Optional[KernelError] = exc
        try:
            fcntl.ioctl(perf_fd.fileno(), PERF_EVENT_IOC_SET_BPF, program.fd.fileno())
            fcntl.ioctl(perf_fd.fileno(), PERF_EVENT_IOC_ENABLE, 0)
        except OSError as exc2:
            err = exc2.errno or errno.EINVAL
            raise AttachError(err, "PERF_EVENT_IOC_SET_BPF", target,
                              detail=f"{kind} program {program.name!r} (BPF_LINK_CREATE said: {first})") from exc2
        return Link(None, kind=kind, target=target, program=program, perf_fd=perf_fd)
    except BaseException:
        perf_fd.close()
        raise
