"""An optional on-disk cache of the BTF offset table and name index.

Opening vmlinux BTF (~127,000 types) costs one pass over every type header
plus, on the first name lookup, hashing every type name.  Both results depend
only on the BTF bytes, so they can be kept on disk and reloaded with a few
``array.frombytes`` calls.

* Key: SHA-256 of the BTF bytes, plus the cache format version, the host
  byte order (the arrays are stored in host order) and, for split BTF, the
  base's key.
* Location: ``$PUREBPF_CACHE_DIR``, else ``$XDG_CACHE_HOME/purebpf``, else
  ``~/.cache/purebpf``.  ``PUREBPF_NO_CACHE=1`` disables it.
* Writes are atomic (temporary file + ``os.replace``).  Reads are verified
  (magic, key, lengths, CRC-32 of the payload).  A cache that cannot be
  written, or a file that fails verification, is silently ignored: the cache
  only ever saves time, it never changes a result.  (No logging either:
  importing :mod:`logging` would cost more than the cache saves.)

File layout (host byte order)::

    8s   magic "PBTFIDX1"
    32s  key (SHA-256 of the BTF bytes)
    u32  number of types N
    u32  type_len of the BTF the offsets were computed for
    u32  CRC-32 of the payload
    payload: offsets[N], name_offs[N], name hashes[N], hash order[N]  (u32 each)
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from array import array
from typing import TYPE_CHECKING, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.btf._names import NameIndex

__all__ = ["FORMAT_VERSION", "enabled", "cache_dir", "key_for", "load", "store", "path_for"]

#: Bump when the layout or the meaning of the stored arrays changes.
FORMAT_VERSION = 1
_MAGIC = b"PBTFIDX1"
_HEAD = struct.Struct("=8s32sIII")


def enabled() -> bool:
    """False when ``PUREBPF_NO_CACHE`` is set to a non-empty value other than ``0``."""
    return os.environ.get("PUREBPF_NO_CACHE", "") in ("", "0")


def cache_dir() -> str:
    """The directory holding cache files (not created here)."""
    explicit = os.environ.get("PUREBPF_CACHE_DIR")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(xdg, "purebpf")
    return os.path.join(os.path.expanduser("~"), ".cache", "purebpf")


def key_for(data: bytes, *, base: bytes = b"") -> bytes:
    """The content key of a BTF blob (SHA-256 over version, byte order and bytes).

    ``base`` is the key of the base BTF for split BTF (the name index of a
    split BTF depends on the base's strings), empty otherwise.
    """
    h = hashlib.sha256()
    h.update(f"purebpf-btf-index/{FORMAT_VERSION}/{sys.byteorder}/".encode())
    h.update(base)
    h.update(data)
    return h.digest()


def path_for(key: bytes) -> str:
    return os.path.join(cache_dir(), f"btf-{key.hex()[:40]}.idx")


def load(key: bytes, *, type_len: int
         ) -> "Optional[Tuple[array[int], array[int], NameIndex]]":
    """The cached (offsets, name_offs, name index) for ``key``, or None."""
    from purebpf.btf._names import NameIndex

    try:
        with open(path_for(key), "rb") as f:
            blob = f.read()
    except OSError:
        return None
    if len(blob) < _HEAD.size:
        return None
    magic, stored_key, count, stored_type_len, crc = _HEAD.unpack_from(blob, 0)
    payload = memoryview(blob)[_HEAD.size:]
    if (magic != _MAGIC or stored_key != key or stored_type_len != type_len
            or len(payload) != 16 * count or zlib.crc32(payload) != crc):
        return None  # stale or corrupt: recomputed (and rewritten) by the caller
    columns = []
    for i in range(4):
        column = array("I")
        column.frombytes(payload[4 * count * i:4 * count * (i + 1)])
        columns.append(column)
    offsets, name_offs, hashes, order = columns
    if count and (offsets[0] != 0 or offsets[-1] * 4 >= type_len):
        return None
    return offsets, name_offs, NameIndex(hashes, order)


def store(key: bytes, offsets: "array[int]", name_offs: "array[int]", index: "NameIndex",
          *, type_len: int) -> None:
    """Write the cache file atomically; any OSError is ignored (the cache is optional)."""
    import tempfile  # only needed on the (rare) write path

    payload = b"".join(a.tobytes() for a in (offsets, name_offs, index.hashes, index.indexes))
    head = _HEAD.pack(_MAGIC, key, len(offsets), type_len, zlib.crc32(payload))
    directory = cache_dir()
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".btf-", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(payload)
        os.replace(tmp, path_for(key))
        tmp = None
    except OSError:
        pass  # read-only home, full disk...: run without a cache
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
