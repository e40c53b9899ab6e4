r"""JSON dump of BTF, the same document as ``bpftool -j btf dump file F``.

The document is ``{"types": [ {...}, ... ]}`` with one object per type, in id
order, keys in bpftool's order::

    {"id": 1, "kind": "INT", "name": "int", "size": 4, "bits_offset": 0,
     "nr_bits": 32, "encoding": "SIGNED"}

Per kind, after ``id``/``kind``/``name`` (``"(anon)"`` when name_off is 0):

=============================  ===============================================
INT                            size, bits_offset, nr_bits, encoding
PTR TYPEDEF TYPE_TAG           type_id
CONST VOLATILE RESTRICT        type_id
ARRAY                          type_id, index_type_id, nr_elems
STRUCT UNION                   size, vlen, members: [{name, type_id,
                               bits_offset[, bitfield_size]}]
ENUM ENUM64                    encoding, size, vlen, values: [{name, val}]
FWD                            fwd_kind
FUNC                           type_id, linkage
FUNC_PROTO                     ret_type_id, vlen, params: [{name, type_id}]
VAR                            type_id, linkage
DATASEC                        size, vlen, vars: [{type_id, offset, size}]
FLOAT                          size
DECL_TAG                       type_id, component_idx
=============================  ===============================================

bpftool 7.1 has two quirks in this output.  With ``bpftool_compat=True`` (the
default) they are reproduced, so that the two documents compare equal; with
``bpftool_compat=False`` the values are the ones in the BTF:

* an unsigned 32-bit ENUM value is read through ``struct btf_enum``'s signed
  ``__s32 val`` and widened to 64 bits, so an unsigned enumerator 0xffffffff
  appears as 18446744073709551615 (the text dump prints 4294967295);
* its JSON writer escapes a backslash in a name as ``\n``, so ``a\b``
  reads back as ``a``, newline, ``b``.  (Names are C identifiers in practice;
  tag values are the only place a backslash is ever seen.)

Reference: ``dump_btf_type()`` in tools/bpf/bpftool/btf.c (bpftool 7.1).
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from purebpf.btf.dump_raw import (_ARRAY, _DATASEC, _DECL_TAG, _ENUM, _ENUM64, _FLOAT,
                                  _FUNC, _FUNC_PROTO, _FWD, _INT, _LINKAGE, _REF_KINDS,
                                  _STRUCT, _UNION, _VAR, KIND_NAMES, TYPE_HEADER_SIZE,
                                  WireTypes, int_encoding_name)

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    from purebpf.btf.btf import Btf

__all__ = ["dump_json", "json_types", "iter_json_types"]

_U64 = (1 << 64) - 1

JsonObject = Dict[str, Any]


class _JsonNames(Dict[int, str]):
    """``name_off`` -> the name as a JSON string literal, quotes included.

    With ``compat`` a backslash first becomes a newline, as bpftool's JSON
    writer does (see the module doc).  Filled on first use (``__missing__``).
    """

    def __init__(self, wire: WireTypes, compat: bool) -> None:
        super().__init__()
        self._names = wire.names
        self._compat = compat

    def __missing__(self, off: int) -> str:
        text = self._names[off]
        if self._compat:
            text = text.replace("\\", "\n")
        if text.isprintable() and '"' not in text and "\\" not in text:
            literal = f'"{text}"'      # the common case: nothing to escape
        else:
            literal = json.dumps(text, ensure_ascii=False)
        self[off] = literal
        return literal


def iter_json_types(btf: "Btf", *, bpftool_compat: bool = True,
                    wire: Optional[WireTypes] = None) -> Iterator[str]:
    """Yield each type's JSON object as compact text, in id order (own types only).

    The text is written directly, key by key in bpftool's order, instead of
    building dicts for ``json.dumps``: for vmlinux that is about twice as fast.
    """
    w = wire if wire is not None else WireTypes(btf)
    data = w.data
    e = w.endian
    u32x3 = struct.Struct(e + "III")
    u32 = struct.Struct(e + "I")
    i32 = struct.Struct(e + "i")
    enum32 = struct.Struct(e + "Ii")   # struct btf_enum { __u32 name_off; __s32 val; }
    pair = struct.Struct(e + "II")     # struct btf_param { __u32 name_off; __u32 type; }
    names = _JsonNames(w, bpftool_compat)
    enum_mask = _U64 if bpftool_compat else 0xFFFFFFFF
    kind_names = KIND_NAMES
    linkage_names = _LINKAGE

    type_id = w.start_id
    # Branches are ordered by how common each kind is in vmlinux (FUNC first).
    for off in w.offsets:
        name_off, info, size_or_type = u32x3.unpack_from(data, off)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        head = f'{{"id":{type_id},"kind":"{kind_names[kind]}","name":{names[name_off]}'
        t = off + TYPE_HEADER_SIZE
        type_id += 1
        if kind == _FUNC:
            yield (f'{head},"type_id":{size_or_type},'
                   f'"linkage":"{linkage_names.get(vlen, "(unknown)")}"}}')
        elif kind == _FUNC_PROTO:
            params = ",".join([f'{{"name":{names[p_name]},"type_id":{p_type}}}'
                               for p_name, p_type in pair.iter_unpack(data[t:t + 8 * vlen])])
            yield f'{head},"ret_type_id":{size_or_type},"vlen":{vlen},"params":[{params}]}}'
        elif kind in _REF_KINDS:
            yield f'{head},"type_id":{size_or_type}}}'
        elif kind == _STRUCT or kind == _UNION:
            parts = []
            if info >> 31:  # kind_flag: bitfield size in the top 8 bits of offset
                for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                    bits = f',"bitfield_size":{m_off >> 24}' if m_off >> 24 else ""
                    parts.append(f'{{"name":{names[m_name]},"type_id":{m_type},'
                                 f'"bits_offset":{m_off & 0xFFFFFF}{bits}}}')
            else:
                for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                    parts.append(f'{{"name":{names[m_name]},"type_id":{m_type},'
                                 f'"bits_offset":{m_off}}}')
            yield (f'{head},"size":{size_or_type},"vlen":{vlen},'
                   f'"members":[{",".join(parts)}]}}')
        elif kind == _ARRAY:
            elem, index, nelems = u32x3.unpack_from(data, t)
            yield f'{head},"type_id":{elem},"index_type_id":{index},"nr_elems":{nelems}}}'
        elif kind == _ENUM:
            signed = info >> 31
            # Signed: the __s32 as is.  Unsigned: the __u32, or with bpftool_compat
            # the __s32 widened to __u64 (see the module doc).
            values = ",".join([
                f'{{"name":{names[v_name]},"val":{val if signed else val & enum_mask}}}'
                for v_name, val in enum32.iter_unpack(data[t:t + 8 * vlen])])
            yield (f'{head},"encoding":"{"SIGNED" if signed else "UNSIGNED"}",'
                   f'"size":{size_or_type},"vlen":{vlen},"values":[{values}]}}')
        elif kind == _VAR:
            linkage = linkage_names.get(u32.unpack_from(data, t)[0], "(unknown)")
            yield f'{head},"type_id":{size_or_type},"linkage":"{linkage}"}}'
        elif kind == _INT:
            v = u32.unpack_from(data, t)[0]
            yield (f'{head},"size":{size_or_type},"bits_offset":{(v >> 16) & 0xFF},'
                   f'"nr_bits":{v & 0xFF},"encoding":"{int_encoding_name((v >> 24) & 0x0F)}"}}')
        elif kind == _DECL_TAG:
            idx = i32.unpack_from(data, t)[0]
            yield f'{head},"type_id":{size_or_type},"component_idx":{idx}}}'
        elif kind == _FWD:
            yield f'{head},"fwd_kind":"{"union" if info >> 31 else "struct"}"}}'
        elif kind == _ENUM64:
            signed = info >> 31
            parts = []
            for v_name, lo, hi in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                val = (hi << 32) | lo
                if signed and val >= 1 << 63:
                    val -= 1 << 64
                parts.append(f'{{"name":{names[v_name]},"val":{val}}}')
            yield (f'{head},"encoding":"{"SIGNED" if signed else "UNSIGNED"}",'
                   f'"size":{size_or_type},"vlen":{vlen},"values":[{",".join(parts)}]}}')
        elif kind == _DATASEC:
            secinfo = ",".join([f'{{"type_id":{v_type},"offset":{v_off},"size":{v_size}}}'
                                for v_type, v_off, v_size
                                in u32x3.iter_unpack(data[t:t + 12 * vlen])])
            yield f'{head},"size":{size_or_type},"vlen":{vlen},"vars":[{secinfo}]}}'
        elif kind == _FLOAT:
            yield f'{head},"size":{size_or_type}}}'
        else:  # pragma: no cover - WireTypes rejects unknown kinds while scanning
            yield head + "}"


def dump_json(btf: "Btf", *, bpftool_compat: bool = True) -> str:
    """The JSON document as compact text with a final newline, like ``bpftool -j``.

    With ``bpftool_compat`` (the default) parsing it gives exactly the object
    bpftool's output parses to, and for ordinary names the text itself is
    bpftool's too (same key order, no spaces, non-ASCII kept as is).
    """
    return '{"types":[' + ",".join(iter_json_types(btf, bpftool_compat=bpftool_compat)) + "]}\n"


def json_types(btf: "Btf", *, bpftool_compat: bool = True) -> List[JsonObject]:
    """The ``"types"`` list of :func:`dump_json` as Python objects (one dict per type)."""
    types: List[JsonObject] = json.loads(dump_json(btf, bpftool_compat=bpftool_compat))["types"]
    return types
