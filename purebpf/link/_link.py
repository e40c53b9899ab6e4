"""``Link``: one live attachment of a program.

Since Linux 5.7 most attachments are *BPF links*: kernel objects
(``struct bpf_link``) reached through a file descriptor returned by
``BPF_LINK_CREATE`` or ``BPF_RAW_TRACEPOINT_OPEN``.  The attachment lives as
long as some fd or bpffs pin refers to the link; ``BPF_LINK_DETACH`` cuts it
early while the fd stays open (defunct), ``BPF_LINK_UPDATE`` swaps the
program in place, ``BPF_OBJ_GET_INFO_BY_FD`` describes it (``struct
bpf_link_info``).

Attachments made through a perf event (tracepoints, kprobes, uprobes,
sampling events) also own that perf event fd: the link keeps it and closes
it after the link fd.  On kernels without perf links the program is set on
the perf event with ``PERF_EVENT_IOC_SET_BPF``; such a "legacy" Link owns
only the perf event fd, and closing it detaches the program.
"""

from __future__ import annotations

import errno
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Type

from purebpf.errors import AttachError, KernelError, NotSupportedError, StateError
from purebpf.uapi import LinkType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.program import Program
    from purebpf.syscall import FD

__all__ = ["Link", "attach_error"]


def attach_error(exc: KernelError, target: str, *, hint: Optional[str] = None,
                 detail: Optional[str] = None) -> AttachError:
    """Turn a kernel refusal into an :class:`AttachError` naming ``target``."""
    return AttachError(exc.errno or errno.EINVAL, getattr(exc, "command", "BPF_LINK_CREATE"), target,
                       hint=hint or getattr(exc, "hint", None), detail=detail)


#: ``enum bpf_perf_event_type`` (``BPF_PERF_EVENT_*``)
_PERF_EVENT_TYPES = {0: "UNSPEC", 1: "UPROBE", 2: "URETPROBE", 3: "KPROBE", 4: "KRETPROBE",
                     5: "TRACEPOINT", 6: "EVENT"}


def _link_type_name(value: int) -> str:
    try:
        return LinkType(value).name
    except ValueError:
        return str(value)


class Link:
    """A program attached somewhere; owns the link fd (and a perf event fd if any).

    ``target`` says where (``"syscalls/sys_enter_getpid"``,
    ``"/usr/bin/bash:readline"``, ``"cpu 0"``), ``kind`` how (``"tracepoint"``,
    ``"uprobe"``...).  Use as a context manager or call :meth:`close`.
    ``functions`` lists the functions a multi-probe link placed the program
    at (by name, in the order of the link's cookies), empty for other links.
    """

    def __init__(self, fd: "Optional[FD]", *, kind: str, target: str,
                 program: "Optional[Program]" = None, perf_fd: "Optional[FD]" = None,
                 functions: Sequence[str] = ()) -> None:
        if fd is None and perf_fd is None:
            raise ValueError("a Link needs a link fd or a perf event fd")
        self._fd = fd
        self._perf_fd = perf_fd
        self.kind = kind
        self.target = target
        self.program = program
        self.functions: List[str] = list(functions)
        self._pins: List[str] = []
        self._id: Optional[int] = None

    # -- construction ----------------------------------------------------------

    @classmethod
    def from_pin(cls, path: str) -> "Link":
        """Open a link pinned on bpffs (``BPF_OBJ_GET``)."""
        from purebpf.syscall import commands

        try:
            fd = commands.obj_get(path)
        except KernelError as exc:
            raise attach_error(exc, path, detail="cannot open pinned link") from exc
        link = cls(fd, kind="pinned", target=path)
        try:
            info = commands.link_info(fd)
        except BaseException:
            fd.close()
            raise
        if int(info.id) == 0:
            fd.close()
            raise StateError(f"{path} is not a BPF link")
        link.kind = _link_type_name(int(info.type)).lower()
        return link

    # -- state -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        fds = [f for f in (self._fd, self._perf_fd) if f is not None]
        return all(f.closed for f in fds)

    @property
    def legacy(self) -> bool:
        """True for a perf event with the program set by ioctl (no BPF link)."""
        return self._fd is None

    @property
    def fd(self) -> "FD":
        """The BPF link fd (StateError when closed or for a legacy perf attachment)."""
        if self._fd is None:
            raise StateError(f"{self.kind} link to {self.target}: attached by PERF_EVENT_IOC_SET_BPF, "
                             "there is no BPF link fd")
        if self._fd.closed:
            raise StateError(f"{self.kind} link to {self.target} is closed")
        return self._fd

    @property
    def perf_fd(self) -> "Optional[FD]":
        """The perf event fd this attachment goes through, if any."""
        return self._perf_fd

    def fileno(self) -> int:
        return self.fd.fileno()

    @property
    def id(self) -> int:
        """The kernel's link id."""
        if self._id is None:
            from purebpf.syscall import commands

            self._id = int(commands.link_info(self.fd).id)
        return self._id

    def info(self) -> Dict[str, Any]:
        """``struct bpf_link_info`` decoded: ``type`` (``"TRACING"``...),
        ``id``, ``prog_id``, the link type's union member as a nested dict
        under its uapi name (``info()["tracing"]["attach_type"]``; for perf
        links only the member matching ``perf_event_type``), and
        ``target_name`` where the kernel reports one (tracepoint, file, iterator)."""
        from purebpf.syscall import commands

        fd = self.fd
        raw = commands.link_info(fd)
        ltype = int(raw.type)
        out: Dict[str, Any] = {"type": _link_type_name(ltype), "id": int(raw.id), "prog_id": int(raw.prog_id)}
        member = {
            1: "raw_tracepoint", 2: "tracing", 3: "cgroup", 4: "iter", 5: "netns", 6: "xdp",
            7: "perf_event", 8: "kprobe_multi", 9: "struct_ops", 10: "netfilter", 11: "tcx",
            12: "uprobe_multi", 13: "netkit", 14: "sockmap",
        }.get(ltype)
        if member == "perf_event":
            pe = raw.perf_event
            ptype = int(pe.type)
            sub = {1: "uprobe", 2: "uprobe", 3: "kprobe", 4: "kprobe", 5: "tracepoint", 6: "event"}.get(ptype)
            fields: Dict[str, Any] = {"perf_event_type": _PERF_EVENT_TYPES.get(ptype, str(ptype))}
            if sub is not None:
                fields.update(_struct_dict(getattr(pe, sub)))
            out["perf_event"] = fields
        elif member is not None:
            out[member] = _struct_dict(getattr(raw, member))
        try:
            name = commands.link_target_name(fd)
        except KernelError:
            name = ""
        if name:
            out["target_name"] = name
        return out

    # -- operations --------------------------------------------------------------

    def pin(self, path: str) -> None:
        """Pin the link on bpffs (``BPF_OBJ_PIN``): it outlives this process."""
        from purebpf.syscall import commands

        commands.obj_pin(self.fd, path)
        self._pins.append(path)

    def unpin(self, path: Optional[str] = None) -> None:
        """Remove a pin made by :meth:`pin` (the last one when ``path`` is None)."""
        if path is None:
            if not self._pins:
                raise StateError(f"{self.kind} link to {self.target} is not pinned")
            path = self._pins[-1]
        os.unlink(path)
        if path in self._pins:
            self._pins.remove(path)

    def update(self, program: "Program", *, old: "Optional[Program]" = None) -> None:
        """Swap the link's program (``BPF_LINK_UPDATE``); ``old`` makes it
        conditional (``BPF_F_REPLACE``).  Not every link type allows it
        (the kernel says EOPNOTSUPP/EINVAL, raised as AttachError)."""
        from purebpf.syscall import commands

        try:
            commands.link_update(self.fd, program.fd, old_prog_fd=old.fd if old is not None else None)
        except KernelError as exc:
            raise attach_error(exc, self.target, detail=f"cannot replace the program of a {self.kind} link")\
                from exc
        self.program = program

    def detach(self) -> None:
        """Detach now (``BPF_LINK_DETACH``); the fd stays open until :meth:`close`.

        Legacy perf attachments are detached by closing the perf event.
        """
        from purebpf.syscall import commands

        if self._fd is None:
            self.close()
            return
        try:
            commands.link_detach(self.fd)
        except KernelError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                raise NotSupportedError(f"BPF_LINK_DETACH of a {self.kind} link",
                                        detail=os.strerror(exc.errno)) from exc
            raise

    def read_iter(self) -> bytes:
        """Run an iterator link once (``BPF_ITER_CREATE``) and return all it wrote."""
        from purebpf.syscall import commands

        try:
            ifd = commands.iter_create(self.fd)
        except KernelError as exc:
            raise attach_error(exc, self.target, detail="BPF_ITER_CREATE (is this an iter link?)") from exc
        chunks: List[bytes] = []
        with ifd:
            while True:
                try:
                    chunk = os.read(ifd.fileno(), 65536)
                except InterruptedError:  # pragma: no cover - retried by Python itself
                    continue
                except OSError as exc:
                    raise KernelError(exc.errno or errno.EIO, "read(iter)",
                                      detail=f"iterator {self.target}") from exc
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Close the link fd, then the perf event fd (idempotent).  A pinned
        link stays attached until its pin is removed."""
        if self._fd is not None:
            self._fd.close()
        if self._perf_fd is not None:
            self._perf_fd.close()

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("legacy perf" if self._fd is None else f"fd={self._fd.fileno()}")
        return f"<Link {self.kind} {self.target!r} {state}>"


def _struct_dict(struct: Any) -> Dict[str, Any]:
    """Fields of a ctypes structure as a dict (nested structures/unions flattened one level)."""
    out: Dict[str, Any] = {}
    for entry in getattr(struct, "_fields_", []):
        name = entry[0]
        value = getattr(struct, name)
        if hasattr(value, "_fields_"):
            if name.startswith("_"):
                out.update(_struct_dict(value))
            else:
                out[name] = _struct_dict(value)
        else:
            out[name] = int(value) if isinstance(value, int) else value
    return out
