"""The fast pass over the BTF type section: where does each type start?

The type section (include/uapi/linux/btf.h) is a packed sequence of
``struct btf_type`` headers (three u32 words: ``name_off``, ``info``,
``size``/``type``), each followed by a trailer whose length depends only on
the kind and ``vlen`` found in ``info``::

    info bits  0-15: vlen        bits 24-28: kind        bit 31: kind_flag

So the only way to find type N is to walk types 1..N-1.  This module does
that walk as cheaply as CPython allows: the section is viewed as an array of
u32 words (already in host order), and the step from one header to the next
is looked up in a small dict keyed by the whole ``info`` word.  Real BTF has
only a few hundred distinct ``info`` values (vmlinux: ~300 for ~127,000
types), so the loop body is one index, one dict lookup and one add.

The result is an ``array('I')`` of word indexes (one per type, in id order).
When the fast loop fails (unknown kind, truncated header, trailer running past
the section) a careful second walk finds the first bad type and raises a
:class:`~purebpf.errors.BtfError` naming its offset.
"""

from __future__ import annotations

from array import array
from typing import Dict, List, Sequence, Tuple

from purebpf.errors import BtfError

__all__ = ["HEADER_WORDS", "FIXED_WORDS", "PER_VLEN_WORDS", "MAX_KIND", "type_offsets", "trailer_words"]

#: ``struct btf_type`` is three u32 words.
HEADER_WORDS = 3

#: Highest kind this reader knows (``BTF_KIND_ENUM64``).
MAX_KIND = 19

# Words after the header that do not depend on vlen, per kind.
#   INT: u32 encoding/offset/bits; ARRAY: struct btf_array (3 words);
#   VAR: struct btf_var (1 word); DECL_TAG: struct btf_decl_tag (1 word).
FIXED_WORDS: Tuple[int, ...] = (
    0,  # UNKN (invalid)
    1,  # INT
    0,  # PTR
    3,  # ARRAY
    0,  # STRUCT
    0,  # UNION
    0,  # ENUM
    0,  # FWD
    0,  # TYPEDEF
    0,  # VOLATILE
    0,  # CONST
    0,  # RESTRICT
    0,  # FUNC
    0,  # FUNC_PROTO
    1,  # VAR
    0,  # DATASEC
    0,  # FLOAT
    1,  # DECL_TAG
    0,  # TYPE_TAG
    0,  # ENUM64
)

# Words per vlen entry, per kind.
#   STRUCT/UNION: struct btf_member (3); ENUM: struct btf_enum (2);
#   FUNC_PROTO: struct btf_param (2); DATASEC: struct btf_var_secinfo (3);
#   ENUM64: struct btf_enum64 (3).  FUNC keeps its linkage in vlen: no trailer.
PER_VLEN_WORDS: Tuple[int, ...] = (
    0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3,
)

# An impossible step: makes the fast loop leave the section at once.
_POISON = 1 << 40


def trailer_words(kind: int, vlen: int) -> int:
    """Number of u32 words following the header of a type of ``kind``."""
    return FIXED_WORDS[kind] + PER_VLEN_WORDS[kind] * vlen


def _step_for(info: int) -> int:
    kind = (info >> 24) & 0x1F
    if kind == 0 or kind > MAX_KIND:
        return _POISON
    return HEADER_WORDS + trailer_words(kind, info & 0xFFFF)


def type_offsets(words: Sequence[int], *, file: str, base_offset: int,
                 first_id: int = 1) -> "array[int]":
    """Return the word index of every type in ``words`` (the type section).

    ``base_offset`` is the byte offset of the type section inside the BTF
    blob; it is only used to report errors.
    """
    steps: Dict[int, int] = {}
    offsets: List[int] = []
    append = offsets.append
    n = len(words)
    i = 0
    try:
        while True:
            try:
                while i < n:
                    append(i)
                    i += steps[words[i + 1]]
                break
            except KeyError:
                info = words[i + 1]
                step = steps[info] = _step_for(info)
                i += step
    except IndexError:
        pass  # a header cut short by the end of the section: diagnosed below
    if i != n:
        _diagnose(words, file=file, base_offset=base_offset, first_id=first_id)
        # _diagnose always raises when the sequence is inconsistent; if it
        # did not, the fast loop and the careful walk disagree.
        raise BtfError("inconsistent type section", file=file, section="types",
                       offset=base_offset)  # pragma: no cover
    return array("I", offsets)


def _diagnose(words: Sequence[int], *, file: str, base_offset: int, first_id: int) -> None:
    """Walk the section carefully and raise on the first malformed type."""
    n = len(words)
    i = 0
    type_id = first_id - 1
    while i < n:
        type_id += 1
        where = base_offset + 4 * i
        if n - i < HEADER_WORDS:
            raise BtfError(f"type #{type_id}: struct btf_type cut short ({4 * (n - i)} of 12 bytes)",
                           file=file, section="types", offset=where)
        info = words[i + 1]
        kind = (info >> 24) & 0x1F
        if kind == 0 or kind > MAX_KIND:
            raise BtfError(f"type #{type_id}: unknown BTF kind {kind}",
                           file=file, section="types", offset=where)
        end = i + HEADER_WORDS + trailer_words(kind, info & 0xFFFF)
        if end > n:
            raise BtfError(
                f"type #{type_id}: kind {kind} with vlen {info & 0xFFFF} needs "
                f"{4 * (end - i)} bytes, only {4 * (n - i)} left in the type section",
                file=file, section="types", offset=where)
        i = end
