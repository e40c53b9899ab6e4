"""Turning Python keys and values into the exact bytes a map expects.

The kernel copies ``key_size`` bytes for a key and ``value_size`` bytes for a
value (``struct bpf_attr`` of BPF_MAP_*_ELEM carries only pointers), so a
buffer of the wrong length is a silent bug in C.  Here every key and value is
converted and size-checked first:

* bytes-like objects (``bytes``, ``bytearray``, ``memoryview``, ``array``)
  must have exactly the expected size;
* an ``int`` is packed in host byte order to the expected size (signed when
  negative), which is what a C ``__u32 key`` looks like in memory;
* a ctypes object (``ctypes.c_uint32(7)``, a ``ctypes.Structure``) is taken
  as its raw memory;
* an object with ``fileno()`` (a :class:`~purebpf.maps.Map`, a program, an
  ``FD``) stands for its file descriptor: the value user space writes into a
  prog array or a map-in-map slot.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

__all__ = ["to_bytes", "round_up", "KeyLike", "ValueLike"]

#: Anything :func:`to_bytes` accepts.
KeyLike = Any
ValueLike = Any


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (the kernel's ``round_up``)."""
    return (value + multiple - 1) // multiple * multiple


def to_bytes(obj: Any, size: int, what: str) -> bytes:
    """``obj`` as exactly ``size`` bytes; ``what`` names it in error messages.

    Raises ``ValueError`` for a wrong size, ``OverflowError`` for an integer
    that does not fit and ``TypeError`` for an unsupported object.
    """
    if isinstance(obj, bool):
        obj = int(obj)
    if isinstance(obj, int):
        if size == 0:
            raise ValueError(f"{what} must be empty (size 0), got the integer {obj}")
        try:
            return obj.to_bytes(size, sys.byteorder, signed=obj < 0)
        except OverflowError:
            raise OverflowError(f"{what} {obj} does not fit in {size} bytes") from None
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    elif isinstance(obj, (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)):
        data = bytes(memoryview(obj).cast("B"))
    elif hasattr(obj, "fileno"):
        fd = int(obj.fileno())
        return to_bytes(fd, size, what)
    else:
        try:
            data = bytes(memoryview(obj).cast("B"))
        except TypeError:
            raise TypeError(f"{what} must be bytes-like, an int, a ctypes object or an object "
                            f"with fileno(); got {type(obj).__name__}") from None
    if len(data) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(data)}")
    return data
