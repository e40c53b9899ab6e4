"""Many ring or perf buffer records in one object: :class:`RecordBatch`.

A reader that builds one Python object per record pays for it on every
record (creating a ``bytes``, calling a callback): that is where nearly all
of a Python consumer's time goes.  A :class:`RecordBatch` is what a reader
copied out of the shared mapping in one ``memcpy``: the bytes as they lay in
the ring, record headers included, and where each record's payload is.
When every record has the same size -- the usual fixed event struct -- the
positions are ``offset + i * stride`` and no per-record object exists until
one is asked for.

Ways to read a batch, fastest first:

* ``len(batch)``, ``batch.cpu`` (perf buffers), ``batch.lost`` (samples the
  kernel dropped, perf buffers);
* ``batch.buffer`` / ``batch.offset`` / ``batch.stride`` / ``batch.record_size``:
  hand the buffer to something that understands strides, e.g.
  ``numpy.ndarray((len(batch),), dtype, batch.buffer, batch.offset,
  (batch.stride,))`` -- no copy at all;
* :meth:`RecordBatch.unpack` -- one tuple per record through
  ``struct.iter_unpack``, parsed in C;
* :meth:`RecordBatch.payloads` -- the payloads back to back with the
  headers removed, for ``struct.iter_unpack``, ``ctypes`` arrays
  (``(Event * len(batch)).from_buffer_copy(...)``) or ``numpy.frombuffer``;
* ``batch[i]``, iteration, :meth:`RecordBatch.records` -- ``bytes`` per
  record, like the per-record readers hand out.

The buffer is a private copy: a batch stays valid after the reader has
given the space back to the kernel.
"""

from __future__ import annotations

import array
import itertools
import math
import struct
from typing import (Any, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Union,
                    overload)

__all__ = ["RecordBatch"]

#: array typecode of each unsigned item size, for the strided payload copy
_TYPECODES: Dict[int, Literal["Q", "I", "H", "B"]] = {8: "Q", 4: "I", 2: "H", 1: "B"}


class RecordBatch(Sequence[bytes]):
    """Records copied out of a ring in one piece (a read-only sequence of ``bytes``).

    ``stride`` is set when the records are evenly spaced (record ``i`` is
    ``buffer[offset + i*stride : offset + i*stride + record_size]``);
    otherwise each record has its own offset and size.  ``record_size`` is
    the size every record shares, or ``None`` when sizes vary.
    """

    __slots__ = ("buffer", "offset", "stride", "record_size", "cpu", "lost",
                 "_count", "_offsets", "_sizes")

    buffer: bytes
    offset: int
    stride: Optional[int]
    record_size: Optional[int]
    cpu: Optional[int]
    lost: int

    def __init__(self, buffer: bytes = b"", *, count: int = 0, offset: int = 0,
                 stride: Optional[int] = None, record_size: Optional[int] = None,
                 offsets: Optional[List[int]] = None, sizes: Optional[List[int]] = None,
                 cpu: Optional[int] = None, lost: int = 0) -> None:
        self.buffer = buffer
        self.cpu = cpu
        self.lost = lost
        if offsets is not None:
            if sizes is None or len(sizes) != len(offsets):
                raise ValueError("offsets and sizes must have the same length")
            self._offsets: Optional[List[int]] = offsets
            self._sizes: Optional[List[int]] = sizes
            self._count = len(offsets)
            self.offset = offsets[0] if offsets else 0
            self.stride = None
            self.record_size = sizes[0] if sizes and sizes.count(sizes[0]) == len(sizes) else None
            if not sizes:
                self.record_size = record_size
            return
        if count and (stride is None or record_size is None):
            raise ValueError("evenly spaced records need a stride and a record size")
        if count and offset + (count - 1) * (stride or 0) + (record_size or 0) > len(buffer):
            raise ValueError(f"{count} records of {record_size} bytes every {stride} bytes "
                             f"from offset {offset} do not fit in {len(buffer)} bytes")
        self._offsets = self._sizes = None
        self._count = count
        self.offset = offset
        self.stride = stride
        self.record_size = record_size

    # -- the sequence ------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def _bounds(self, i: int) -> Tuple[int, int]:
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(f"record {i} out of range of a batch of {self._count}")
        if self._offsets is not None:
            assert self._sizes is not None
            start = self._offsets[i]
            return start, start + self._sizes[i]
        assert self.stride is not None and self.record_size is not None
        start = self.offset + i * self.stride
        return start, start + self.record_size

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> "RecordBatch": ...

    def __getitem__(self, i: Union[int, slice]) -> Union[bytes, "RecordBatch"]:
        """``bytes`` of one record; a slice is a batch sharing this buffer."""
        if isinstance(i, slice):
            picked = range(self._count)[i]
            if self._offsets is not None or picked.step < 0:
                bounds = [self._bounds(k) for k in picked]
                return RecordBatch(self.buffer, offsets=[a for a, _b in bounds],
                                   sizes=[b - a for a, b in bounds],
                                   record_size=self.record_size, cpu=self.cpu)
            assert self.stride is not None
            return RecordBatch(self.buffer, count=len(picked),
                               offset=self.offset + picked.start * self.stride,
                               stride=self.stride * picked.step, record_size=self.record_size,
                               cpu=self.cpu)
        start, end = self._bounds(i)
        return self.buffer[start:end]

    def _slices(self) -> Iterator[slice]:
        if not self._count:
            return iter(())
        if self._offsets is not None:
            assert self._sizes is not None
            return map(slice, self._offsets, map(int.__add__, self._offsets, self._sizes))
        assert self.stride is not None and self.record_size is not None
        first, step, size = self.offset, self.stride, self.record_size
        stop = first + self._count * step
        return map(slice, range(first, stop, step), range(first + size, stop + size, step))

    def __iter__(self) -> Iterator[bytes]:
        """``bytes`` per record, oldest first."""
        if self._offsets is not None or not self._count:
            return map(self.buffer.__getitem__, self._slices())
        assert self.stride is not None and self.record_size is not None
        buf, size = self.buffer, self.record_size
        return (buf[i:i + size] for i in range(self.offset, self.offset + self._count * self.stride,
                                                 self.stride))

    def records(self) -> List[bytes]:
        """Every record as ``bytes``, in one list."""
        if self._offsets is not None or not self._count:
            return list(self)
        assert self.stride is not None and self.record_size is not None
        buf, size = self.buffer, self.record_size
        return [buf[i:i + size] for i in range(self.offset, self.offset + self._count * self.stride,
                                                self.stride)]

    def __eq__(self, other: object) -> bool:
        """Equal to another batch or list/tuple holding the same records in order."""
        if isinstance(other, (RecordBatch, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        size = (f"of {self.record_size} bytes" if self.record_size is not None
                else "of varying size")
        where = f", cpu {self.cpu}" if self.cpu is not None else ""
        lost = f", {self.lost} lost" if self.lost else ""
        return f"<RecordBatch {self._count} records {size}{where}{lost}>"

    # -- whole-batch views ---------------------------------------------------------

    def payloads(self) -> bytes:
        """The records back to back, headers and padding removed.

        Evenly spaced records are gathered with strided ``array`` copies
        (one per word of the record, each in C); others are joined.
        """
        if not self._count:
            return b""
        if self.stride is None:
            return b"".join(self)
        assert self.record_size is not None
        size, stride = self.record_size, self.stride
        if stride == size:
            return self.buffer[self.offset:self.offset + self._count * size]
        unit = math.gcd(math.gcd(self.offset, stride), math.gcd(size, 8))
        code = _TYPECODES[unit]
        span = self.buffer[self.offset:self.offset + (self._count - 1) * stride + size]
        src = array.array(code, span)
        words, step = size // unit, stride // unit
        out = array.array(code, bytes(self._count * size))
        for j in range(words):
            out[j::words] = src[j::step]
        return out.tobytes()

    def unpack(self, fmt: Union[str, bytes, struct.Struct]) -> Iterator[Tuple[Any, ...]]:
        """One tuple per record, ``fmt`` (a ``struct`` format) read at each record's start.

        For evenly spaced records this is one ``struct.iter_unpack`` over the
        buffer with a format that skips the gap between records, so the
        parsing runs in C.  ``fmt`` may be shorter than a record (trailing
        padding is ignored) but not longer.
        """
        layout = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        size = layout.size
        if self.record_size is not None and size > self.record_size:
            raise ValueError(f"format {layout.format!r} needs {size} bytes; "
                             f"the records have {self.record_size}")
        if self.stride is None or self._count < 2:
            if self._sizes is not None and any(n < size for n in self._sizes):
                short = min(self._sizes)
                raise ValueError(f"format {layout.format!r} needs {size} bytes; "
                                 f"a record has only {short}")
            return map(layout.unpack_from, itertools.repeat(self.buffer),
                       (s.start for s in self._slices()))
        spec = str(layout.format)
        order, body = (spec[0], spec[1:]) if spec[:1] in "@=<>!" else ("@", spec)
        step = struct.Struct(f"{order}{body}{self.stride - size}x")
        if step.size != self.stride:  # native alignment grew it: read record by record
            return map(layout.unpack_from, itertools.repeat(self.buffer),
                       range(self.offset, self.offset + self._count * self.stride, self.stride))
        last = self.offset + (self._count - 1) * self.stride
        view = memoryview(self.buffer)[self.offset:last]
        return itertools.chain(step.iter_unpack(view), (layout.unpack_from(self.buffer, last),))


def same_at_stride(buffer: Any, start: int, count: int, stride: int, item: bytes) -> bool:
    """True when ``buffer`` holds ``item`` at ``start + i * stride`` for every ``i < count``.

    Used to check a run of record headers at once: two memoryviews of the
    same item format compare item by item in C (``memcmp`` per item), with
    no Python object per record.  ``item`` is 4 or 8 bytes long and
    ``stride`` a multiple of that; ``buffer`` may be a shared ``mmap``.
    """
    if count <= 0:
        return True
    size = len(item)
    code = _TYPECODES[size]
    end = start + (count - 1) * stride + size
    with memoryview(buffer) as whole, whole[start:end] as span, span.cast(code) as items, \
            items[::stride // size] as picked, memoryview(item * count) as repeated, \
            repeated.cast(code) as expected:
        return bool(picked == expected)
