"""Network attachments through BPF links: XDP on a device, tcx
ingress/egress, and cgroup hooks.

* XDP: ``BPF_LINK_CREATE(prog, ifindex, BPF_XDP, flags)`` (Linux 5.9), flags
  choosing the mode (``XDP_FLAGS_SKB_MODE`` = 2 generic, ``DRV_MODE`` = 4,
  ``HW_MODE`` = 8).
* tcx: ``BPF_LINK_CREATE(prog, ifindex, BPF_TCX_INGRESS/EGRESS)`` (Linux 6.6).
* cgroup: ``BPF_LINK_CREATE(prog, cgroup_dir_fd, attach_type)`` (Linux 5.7),
  the cgroup given by its cgroupfs directory.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Optional, Union

from purebpf.errors import AttachError, KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_xdp", "attach_tcx", "attach_cgroup", "ifindex_of"]


def ifindex_of(interface: Union[str, int]) -> int:
    """An interface index from a name (``"lo"``) or an index."""
    if isinstance(interface, int):
        return interface
    try:
        return socket.if_nametoindex(interface)
    except OSError as exc:
        raise AttachError(errno.ENODEV, "if_nametoindex", interface, hint="no such network interface") from exc


def attach_xdp(program: "Program", interface: Union[str, int], *, flags: int = 0) -> Link:
    """Attach an XDP program to ``interface`` (name or ifindex)."""
    target = f"xdp on {interface}"
    check_type(program, (ProgType.XDP,), "xdp", target)
    ifindex = ifindex_of(interface)
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, ifindex, AttachType.XDP, flags=flags)
    except KernelError as exc:
        raise attach_error(exc, target, detail=f"xdp program {program.name!r}") from exc
    return Link(fd, kind="xdp", target=target, program=program)


def attach_tcx(program: "Program", interface: Union[str, int], *, egress: Optional[bool] = None) -> Link:
    """Attach a tcx program (``SEC("tcx/ingress")``...) to ``interface``."""
    if egress is None:
        eat = program.expected_attach_type
        egress = eat is not None and int(eat) == int(AttachType.TCX_EGRESS)
    direction = "egress" if egress else "ingress"
    target = f"tcx/{direction} on {interface}"
    check_type(program, (ProgType.SCHED_CLS,), "tcx", target)
    ifindex = ifindex_of(interface)
    from purebpf.syscall import commands

    at = AttachType.TCX_EGRESS if egress else AttachType.TCX_INGRESS
    try:
        fd = commands.link_create(program.fd, ifindex, at)
    except KernelError as exc:
        raise attach_error(exc, target, detail=f"tcx program {program.name!r}") from exc
    return Link(fd, kind="tcx", target=target, program=program)


def attach_cgroup(program: "Program", cgroup: str, *, attach_type: Optional[int] = None) -> Link:
    """Attach a cgroup program to the cgroup directory ``cgroup``
    (``attach_type`` defaults to the program's expected attach type)."""
    if attach_type is None:
        attach_type = program.expected_attach_type
    if attach_type is None:
        raise AttachError(errno.EINVAL, "attach", cgroup,
                          detail=f"program {program.name!r}: no cgroup attach type known; pass attach_type=")
    try:
        dfd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise AttachError(exc.errno or errno.ENOENT, "open", cgroup, hint="no such cgroup directory") from exc
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, dfd, attach_type)
    except KernelError as exc:
        raise attach_error(exc, cgroup, detail=f"cgroup program {program.name!r}") from exc
    finally:
        os.close(dfd)
    return Link(fd, kind="cgroup", target=cgroup, program=program)
