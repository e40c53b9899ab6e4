"""Finding types by name in a :class:`~purebpf.btf.Btf` without decoding them.

Two strategies, same answers:

* :func:`scan_lookup` needs no index at all.  It finds every offset in the
  string section holding exactly the wanted name (``bytes.find`` of
  ``name + b"\0"``, in C over the whole section), then finds those offsets in
  the column of type ``name_off`` words (again ``bytes.find``, 4 bytes per
  type).  A lookup in vmlinux costs one to three milliseconds and opening a
  BTF pays nothing up front: the right choice for the few dozen lookups of a
  CO-RE load.

* :class:`NameIndex` is built in one go, without decoding any type: each
  type's ``name_off`` (the first word of its ``struct btf_type``) is hashed
  through the string section, and the (hash, index) pairs are kept sorted in
  two flat ``array('I')`` columns.  A lookup hashes the wanted name,
  binary-searches the hash column and checks the few candidates byte for
  byte.  Flat arrays keep the index small (8 bytes per type) and let
  :mod:`purebpf.btf.cache` store and reload it with a single ``frombytes``.
  :class:`~purebpf.btf.Btf` builds it after many scanning lookups, or loads
  it from the cache.

The hash is CRC-32 (``zlib.crc32``): cheap, in C, and collisions only cost a
string comparison.
"""

from __future__ import annotations

import itertools
import zlib
from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Dict, List, Optional, Set, cast

from purebpf.errors import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf.btf import Btf

__all__ = ["NameIndex", "scan_lookup"]


def _string_offsets(btf: "Btf", name: bytes) -> List[int]:
    """Every offset (in ``btf``'s string space, base included) whose string is ``name``."""
    found: List[int] = []
    if btf.base is not None:
        found.extend(_string_offsets(btf.base, name))
    raw = btf.raw
    start, end = btf._str_start, btf._str_end
    pattern = name + b"\0"
    shift = btf._base_str_total - start
    p = raw.find(pattern, start, end)
    while p >= 0:
        found.append(p + shift)
        p = raw.find(pattern, p + 1, end)
    return found


def scan_lookup(btf: "Btf", name: bytes, column: bytes, used: Set[int]) -> List[int]:
    """Own-type indexes (0-based, ascending) named ``name``, found by scanning.

    ``column`` is the ``name_off`` column as host-order bytes (4 per type) and
    ``used`` the set of its values: short names ("file", "page") also end many
    longer strings, and the set drops those offsets before any column scan.
    """
    found: List[int] = []
    if not name:
        # The empty name: every type whose name_off points at a NUL byte.
        for i, off in enumerate(array("I", column)):
            try:
                if btf._raw_string(off) == b"":
                    found.append(i)
            except ParseError:
                pass
        return found
    for off in _string_offsets(btf, name):
        if off not in used:
            continue
        pattern = array("I", (off,)).tobytes()
        p = column.find(pattern)
        while p >= 0:
            if p % 4 == 0:
                found.append(p // 4)
            p = column.find(pattern, p + 1)
    found.sort()
    return found


class NameIndex:
    """Sorted CRC-32 hashes of type names with the matching type indexes."""

    __slots__ = ("hashes", "indexes")

    def __init__(self, hashes: "array[int]", indexes: "array[int]") -> None:
        self.hashes = hashes
        self.indexes = indexes

    @classmethod
    def build(cls, name_offs: "array[int]", btf: "Btf") -> "NameIndex":
        """Index every type of ``btf`` (own types only) by name."""
        raw = btf.raw
        start = btf._str_start
        end = btf._str_end
        base_total = btf._base_str_total
        # Hash every string of the section at once: split on NUL, and compute
        # each string's offset as the running sum of (length + 1).
        parts = raw[start:end].split(b"\0")
        offsets = itertools.accumulate(map((1).__add__, map(len, parts)), initial=base_total)
        by_offset: Dict[int, int] = dict(zip(offsets, map(zlib.crc32, parts)))
        hashes: List[Optional[int]] = list(map(by_offset.get, name_offs))
        # name_off values that do not start a string (a suffix of another
        # string, or a string of the base BTF) are hashed one by one.
        if None in hashes:
            for i, h in enumerate(hashes):
                if h is None:
                    try:
                        hashes[i] = zlib.crc32(btf._raw_string(name_offs[i]))
                    except ParseError:
                        hashes[i] = 0  # a bad name: never matches (checked on lookup)
        done = cast(List[int], hashes)
        order = sorted(range(len(done)), key=done.__getitem__)
        return cls(array("I", map(done.__getitem__, order)), array("I", order))

    def lookup(self, name: bytes, btf: "Btf", name_offs: "array[int]") -> List[int]:
        """Own-type indexes (0-based, ascending) whose name is exactly ``name``."""
        h = zlib.crc32(name)
        hashes = self.hashes
        j = bisect_left(hashes, h)
        found: List[int] = []
        n = len(hashes)
        while j < n and hashes[j] == h:
            i = self.indexes[j]
            try:
                if btf._raw_string(name_offs[i]) == name:
                    found.append(i)
            except (ParseError, IndexError):
                pass  # a bad name never matches
            j += 1
        found.sort()
        return found
