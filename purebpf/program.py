"""Live programs: one BPF program loaded into the kernel.

A :class:`Program` owns the file descriptor BPF_PROG_LOAD returned.  It can
describe itself through ``BPF_OBJ_GET_INFO_BY_FD`` (``struct bpf_prog_info``:
id, tag, translated and JITed instructions, map ids, run statistics), be pinned
on bpffs (``BPF_OBJ_PIN``) and be run on test input with
``BPF_PROG_TEST_RUN`` -- which lets programs be unit-tested without attaching
them anywhere.

Programs are normally made by :meth:`purebpf.object.OpenObject.load`;
:meth:`Program.from_fd`, :meth:`Program.from_pin` and :meth:`Program.from_id`
wrap programs loaded by someone else.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

from purebpf.errors import StateError
from purebpf.uapi import ProgType

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.insn import Instruction
    from purebpf.link import Link
    from purebpf.spec import ProgramSpec
    from purebpf.syscall import FD

__all__ = ["Program", "ProgramInfo", "TestRunResult"]

#: BPF_TAG_SIZE from <linux/bpf.h>: the program tag is 8 bytes (a SHA-1 prefix).
_TAG_SIZE = 8


@dataclass(frozen=True)
class ProgramInfo:
    """The decoded ``struct bpf_prog_info`` of a loaded program.

    ``xlated`` is the program as the verifier rewrote it (``xlated_prog_insns``:
    what the kernel runs, before JIT), ``jited_size`` the machine code size,
    ``map_ids`` the maps the program uses, ``run_time_ns``/``run_cnt`` the
    statistics kept while ``BPF_ENABLE_STATS`` is on.
    """

    id: int
    name: str
    prog_type: Union[ProgType, int]
    tag: str
    xlated: bytes
    jited_size: int
    map_ids: Tuple[int, ...]
    btf_id: int
    run_time_ns: int
    run_cnt: int
    verified_insns: int
    load_time: int
    created_by_uid: int

    @property
    def xlated_insn_count(self) -> int:
        """Number of 8-byte slots in the translated program."""
        return len(self.xlated) // 8


@dataclass(frozen=True)
class TestRunResult:
    """What ``BPF_PROG_TEST_RUN`` returned: the program's return value, the
    average run time in ns over ``repeat`` runs, and the output data/context."""

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes

    __test__ = False  # not a pytest test class


def _syscall() -> Any:
    from purebpf.syscall import commands

    return commands


def prog_info(fd: int, *, want_xlated: bool = True, want_map_ids: bool = True) -> ProgramInfo:
    """``BPF_OBJ_GET_INFO_BY_FD`` for a program fd, decoded.

    Array fields (translated instructions, map ids) come from
    :func:`purebpf.syscall.commands.prog_info_with_arrays`.
    """
    arrays = []
    if want_xlated:
        arrays.append(("xlated_prog_len", "xlated_prog_insns", 1))
    if want_map_ids:
        arrays.append(("nr_map_ids", "map_ids", 4))
    info, data = _syscall().prog_info_with_arrays(fd, arrays)
    xlated = data.get("xlated_prog_insns", b"")
    raw_ids = data.get("map_ids", b"")
    map_ids = tuple((ctypes.c_uint32 * (len(raw_ids) // 4)).from_buffer_copy(raw_ids))
    raw_name = bytes(info.name)
    name = raw_name.split(b"\0", 1)[0].decode("utf-8", "replace")
    tag = bytes(info.tag)[:_TAG_SIZE].hex()
    try:
        ptype: Union[ProgType, int] = ProgType(int(info.type))
    except ValueError:
        ptype = int(info.type)
    return ProgramInfo(
        id=int(info.id),
        name=name,
        prog_type=ptype,
        tag=tag,
        xlated=xlated,
        jited_size=int(info.jited_prog_len),
        map_ids=map_ids,
        btf_id=int(getattr(info, "btf_id", 0)),
        run_time_ns=int(getattr(info, "run_time_ns", 0)),
        run_cnt=int(getattr(info, "run_cnt", 0)),
        verified_insns=int(getattr(info, "verified_insns", 0)),
        load_time=int(getattr(info, "load_time", 0)),
        created_by_uid=int(getattr(info, "created_by_uid", 0)),
    )


class Program:
    """A program loaded into the kernel; owns one fd.

    ``name`` is the program's function name (the kernel keeps only 15
    characters of it), ``prog_type`` the type it was loaded with, ``spec``
    the :class:`~purebpf.spec.ProgramSpec` it came from (None for a program
    opened by fd, pin or id).
    """

    def __init__(self, name: str, fd: "FD", prog_type: Union[ProgType, int], *,
                 spec: "Optional[ProgramSpec]" = None,
                 expected_attach_type: Optional[int] = None,
                 attach_target: Optional[str] = None,
                 line_info: bytes = b"", line_info_rec_size: int = 16) -> None:
        self.name = name
        self._fd: "Optional[FD]" = fd
        self.prog_type = prog_type
        self.spec = spec
        self.expected_attach_type = expected_attach_type
        self.attach_target = attach_target
        self._line_info = line_info
        self._line_info_rec_size = line_info_rec_size
        self._pinned: List[str] = []
        self._id: Optional[int] = None
        #: the verifier log of the load, when one was asked for (``load(log_level=...)``)
        self.log: str = ""

    # -- construction from existing kernel objects --------------------------

    @classmethod
    def from_fd(cls, fd: "FD", *, name: Optional[str] = None) -> "Program":
        """Wrap a program fd (ownership passes to the Program)."""
        info = prog_info(fd.fileno(), want_xlated=False, want_map_ids=False)
        prog = cls(name or info.name, fd, info.prog_type)
        prog._id = info.id
        return prog

    @classmethod
    def from_pin(cls, path: str) -> "Program":
        """Open a program pinned on bpffs (``BPF_OBJ_GET``)."""
        return cls.from_fd(_syscall().obj_get(path))

    @classmethod
    def from_id(cls, prog_id: int) -> "Program":
        """Open a loaded program by its kernel id (``BPF_PROG_GET_FD_BY_ID``; needs root)."""
        return cls.from_fd(_syscall().prog_get_fd_by_id(prog_id))

    # -- state ---------------------------------------------------------------

    @property
    def fd(self) -> "FD":
        """The owned fd; raises StateError once the program is closed."""
        if self._fd is None or self._fd.closed:
            raise StateError(f"program {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None or self._fd.closed

    def fileno(self) -> int:
        return self.fd.fileno()

    @property
    def id(self) -> int:
        """The kernel's id of this program (stable while it lives)."""
        if self._id is None:
            self._id = self.info(xlated=False).id
        return self._id

    @property
    def tag(self) -> str:
        """The kernel's program tag (hex SHA-1 prefix of the instructions)."""
        return self.info(xlated=False).tag

    def info(self, *, xlated: bool = True) -> ProgramInfo:
        """``BPF_OBJ_GET_INFO_BY_FD``: id, tag, translated instructions, map ids, stats."""
        return prog_info(self.fd.fileno(), want_xlated=xlated)

    def xlated_instructions(self) -> "List[Instruction]":
        """The program as the kernel translated it, decoded."""
        from purebpf.insn import decode

        return list(decode(self.info().xlated))

    # -- pinning -------------------------------------------------------------

    def pin(self, path: str) -> None:
        """Pin on bpffs (``BPF_OBJ_PIN``); the program then outlives its fds."""
        _syscall().obj_pin(self.fd.fileno(), path)
        self._pinned.append(path)

    def unpin(self, path: Optional[str] = None) -> None:
        """Remove a pin made by :meth:`pin` (the last one if ``path`` is None)."""
        if path is None:
            if not self._pinned:
                raise StateError(f"program {self.name!r} is not pinned")
            path = self._pinned[-1]
        os.unlink(path)
        if path in self._pinned:
            self._pinned.remove(path)

    # -- running ---------------------------------------------------------------

    def test_run(self, data_in: bytes = b"", *, ctx_in: Optional[bytes] = None,
                 data_size_out: Optional[int] = None, ctx_size_out: Optional[int] = None,
                 repeat: int = 1, flags: int = 0, cpu: int = 0) -> TestRunResult:
        """Run the program once (or ``repeat`` times) on ``data_in`` with
        ``BPF_PROG_TEST_RUN``.

        ``data_size_out`` defaults to room for the input plus 256 bytes (XDP
        programs may grow the packet); ``ctx_size_out`` defaults to the size of
        ``ctx_in``.  Which of data/context a program type accepts is the
        kernel's rule (``bpf_prog_test_run_*`` in net/bpf/test_run.c).
        """
        if data_size_out is None:
            data_size_out = len(data_in) + 256 if data_in else 0
        ctx = b"" if ctx_in is None else bytes(ctx_in)
        if int(self.prog_type) == int(ProgType.SYSCALL):
            # bpf_prog_test_run_syscall refuses repeat, data and ctx_out: the
            # program runs once on ctx_in (which the kernel updates in place)
            repeat = 0 if repeat == 1 else repeat
            if ctx_size_out is None:
                ctx_size_out = 0
        if ctx_size_out is None:
            ctx_size_out = len(ctx)
        res = _syscall().prog_test_run(self.fd.fileno(), data_in=bytes(data_in), data_size_out=data_size_out,
                                       ctx_in=ctx, ctx_size_out=ctx_size_out, repeat=repeat,
                                       flags=flags, cpu=cpu)
        return TestRunResult(retval=int(res.retval), duration_ns=int(res.duration_ns),
                             data_out=bytes(res.data_out), ctx_out=bytes(res.ctx_out))

    # -- attaching -------------------------------------------------------------

    def attach(self, **kwargs: Any) -> "Link":
        """Attach where the section name says, or as ``kwargs`` say
        (:func:`purebpf.link.attach_program`); returns the live :class:`~purebpf.link.Link`."""
        from purebpf.link import attach_program

        return attach_program(self, **kwargs)

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        """Close the fd (idempotent).  A pinned program lives on in the kernel."""
        if self._fd is not None:
            self._fd.close()

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd.fileno() if self._fd else -1}"
        ptype = self.prog_type.name if isinstance(self.prog_type, ProgType) else self.prog_type
        return f"<Program {self.name!r} type={ptype} {state}>"
