"""BPF iterators: ``SEC("iter/task")``, ``SEC("iter/bpf_map_elem")``...

An iterator program is linked with ``BPF_LINK_CREATE(BPF_TRACE_ITER)``;
each ``BPF_ITER_CREATE`` on the link then gives a readable fd whose content
is what the program writes with ``bpf_seq_printf``/``bpf_seq_write`` while
the kernel walks the objects (:meth:`Link.read_iter`).  ``union
bpf_iter_link_info`` narrows the walk: a map (``map_fd``) for map-element
iterators, a task (``tid``/``pid``/``pid_fd``) for task iterators.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Optional

from purebpf.errors import KernelError
from purebpf.link._common import check_type
from purebpf.link._link import Link, attach_error
from purebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program

__all__ = ["attach_iter"]

#: sizeof(union bpf_iter_link_info): the largest member is the cgroup one
#: (``__u32 order; __u32 cgroup_fd; __u64 cgroup_id``)
_ITER_INFO_SIZE = 16


def attach_iter(program: "Program", *, map_fd: Optional[Any] = None, tid: int = 0, pid: int = 0,
                pid_fd: int = 0) -> Link:
    """Link an iterator program; read its output with :meth:`Link.read_iter`.

    ``map_fd`` (an fd or a :class:`~purebpf.maps.Map`) is the map a
    ``bpf_map_elem`` iterator walks; ``tid``/``pid``/``pid_fd`` narrow a task
    iterator to one thread or process (Linux 6.1).
    """
    target = program.attach_target or program.name
    check_type(program, (ProgType.TRACING,), "iter", target)
    info = b""
    if map_fd is not None:
        from purebpf.syscall import fd_number

        info = struct.pack("=I", fd_number(map_fd)).ljust(_ITER_INFO_SIZE, b"\0")
    elif tid or pid or pid_fd:
        info = struct.pack("=III", tid, pid, pid_fd).ljust(_ITER_INFO_SIZE, b"\0")
    from purebpf.syscall import commands

    try:
        fd = commands.link_create(program.fd, 0, AttachType.TRACE_ITER, iter_info=info)
    except KernelError as exc:
        raise attach_error(exc, f"iter/{target}", detail=f"iterator program {program.name!r}") from exc
    return Link(fd, kind="iter", target=target, program=program)
