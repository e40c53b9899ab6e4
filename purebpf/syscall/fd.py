"""``FD``: exactly one owned file descriptor.

Every kernel object purebpf creates (a map, a program, a BTF object, a link,
a perf event) is reached through a file descriptor; the object lives as long
as some descriptor or pin refers to it.  :class:`FD` owns one such
descriptor: it closes it exactly once, can hand it over explicitly with
:meth:`FD.detach`, and warns with :class:`ResourceWarning` when it is
garbage-collected while still open (closing it then, as :mod:`io` does).
"""

from __future__ import annotations

import os
import warnings
from types import TracebackType
from typing import Optional, Type, Union

from purebpf.errors import StateError

__all__ = ["FD", "FdLike", "fd_number"]


class FD:
    """An owned file descriptor.

    ``int(fd)`` and :meth:`fileno` give the number; using a closed FD raises
    :class:`~purebpf.errors.StateError`.  ``what`` is a short description
    (``"map 'flows'"``, ``"prog"``) used in messages.
    """

    __slots__ = ("_fd", "what", "__weakref__")

    def __init__(self, fd: int, what: str = "bpf object") -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd: Optional[int] = fd
        self.what = what

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`detach` was called."""
        return self._fd is None

    def fileno(self) -> int:
        """The descriptor number (raises StateError when closed)."""
        fd = self._fd
        if fd is None:
            raise StateError(f"{self.what}: file descriptor already closed")
        return fd

    def __int__(self) -> int:
        return self.fileno()

    def __index__(self) -> int:
        return self.fileno()

    def close(self) -> None:
        """Close the descriptor; calling it again does nothing."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        os.close(fd)

    def detach(self) -> int:
        """Give up ownership: return the number, which this FD no longer closes."""
        fd = self.fileno()
        self._fd = None
        return fd

    def dup(self) -> "FD":
        """A new FD (``F_DUPFD_CLOEXEC``) referring to the same kernel object."""
        import fcntl

        return FD(fcntl.fcntl(self.fileno(), fcntl.F_DUPFD_CLOEXEC, 0), self.what)

    def __enter__(self) -> "FD":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is None:
            return
        self._fd = None
        try:
            warnings.warn(f"unclosed {self.what} fd {fd}", ResourceWarning, stacklevel=2, source=self)
        finally:
            # close even when the warning is turned into an error (-W error)
            # or the interpreter is shutting down
            try:
                os.close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else str(self._fd)
        return f"<FD {state} {self.what}>"


#: What purebpf accepts wherever a descriptor is expected: an FD, a plain
#: int, or anything with ``fileno()``.
FdLike = Union[FD, int]


def fd_number(fd: object) -> int:
    """The descriptor number of an :class:`FD`, an ``int`` or an object with ``fileno()``."""
    if isinstance(fd, FD):
        return fd.fileno()
    if isinstance(fd, int) and not isinstance(fd, bool):
        return fd
    fileno = getattr(fd, "fileno", None)
    if callable(fileno):
        n = fileno()
        if isinstance(n, int):
            return n
    raise TypeError(f"expected a file descriptor (FD, int or object with fileno()), got {type(fd).__name__}")
