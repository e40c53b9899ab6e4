r"""JSON dump of BTF, the same document as ``bpftool -j btf dump file F``.

The document is ``{"types": [ {...}, ... ]}`` with one object per type, in id
order, keys in bpftool's order::

    {"id": 1, "kind": "INT", "name": "int", "size": 4, "bits_offset": 0,
     "nr_bits": 32, "encoding": "SIGNED"}

Per kind, after ``id``/``kind``/``name`` (``"(anon)"`` when name_off is 0):

=============================  ===============================================
INT                            size, bits_offset, nr_bits, encoding
PTR CONST VOLATILE RESTRICT    type_id
TYPEDEF TYPE_TAG
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
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from purebpf.btf.dump_raw import (_ARRAY, _DATASEC, _DECL_TAG, _ENUM, _ENUM64, _FLOAT,
                                  _FUNC, _FUNC_PROTO, _FWD, _INT, _LINKAGE, _REF_KINDS,
                                  _STRUCT, _UNION, _VAR, KIND_NAMES, TYPE_HEADER_SIZE,
                                  WireTypes, int_encoding_name)

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    from purebpf.btf.btf import Btf

__all__ = ["dump_json", "json_types"]

_U64 = (1 << 64) - 1

JsonObject = Dict[str, Any]


class _CompatNames(Dict[int, str]):
    """``name_off`` -> name as bpftool's JSON writer renders it (backslash -> newline)."""

    def __init__(self, wire: WireTypes) -> None:
        super().__init__()
        self._names = wire.names

    def __missing__(self, off: int) -> str:
        text = self._names[off].replace("\\", "\n")
        self[off] = text
        return text


def json_types(btf: "Btf", *, bpftool_compat: bool = True,
               wire: Optional[WireTypes] = None) -> List[JsonObject]:
    """One dict per type this BTF owns (split BTF: not the base's), in id order.

    ``bpftool_compat`` reproduces bpftool 7.1's two quirks (see the module doc).
    """
    w = wire if wire is not None else WireTypes(btf)
    data = w.data
    e = w.endian
    u32x3 = struct.Struct(e + "III")
    u32 = struct.Struct(e + "I")
    i32 = struct.Struct(e + "i")
    enum32 = struct.Struct(e + "Ii")   # struct btf_enum { __u32 name_off; __s32 val; }
    pair = struct.Struct(e + "II")     # struct btf_param { __u32 name_off; __u32 type; }
    names: Dict[int, str] = _CompatNames(w) if bpftool_compat else w.names
    enum_mask = _U64 if bpftool_compat else 0xFFFFFFFF
    kind_names = KIND_NAMES
    linkage_names = _LINKAGE
    out: List[JsonObject] = []
    append = out.append

    type_id = w.start_id
    # Branches are ordered by how common each kind is in vmlinux (FUNC first).
    for off in w.offsets:
        name_off, info, size_or_type = u32x3.unpack_from(data, off)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        obj: JsonObject = {"id": type_id, "kind": kind_names[kind], "name": names[name_off]}
        t = off + TYPE_HEADER_SIZE
        type_id += 1
        append(obj)
        if kind == _FUNC:
            obj["type_id"] = size_or_type
            obj["linkage"] = linkage_names.get(vlen, "(unknown)")
        elif kind == _FUNC_PROTO:
            obj["ret_type_id"] = size_or_type
            obj["vlen"] = vlen
            obj["params"] = [{"name": names[p_name], "type_id": p_type}
                             for p_name, p_type in pair.iter_unpack(data[t:t + 8 * vlen])]
        elif kind in _REF_KINDS:
            obj["type_id"] = size_or_type
        elif kind == _STRUCT or kind == _UNION:
            obj["size"] = size_or_type
            obj["vlen"] = vlen
            members: List[JsonObject] = []
            if info >> 31:  # kind_flag: bitfield size in the top 8 bits of offset
                for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                    member: JsonObject = {"name": names[m_name], "type_id": m_type,
                                          "bits_offset": m_off & 0xFFFFFF}
                    if m_off >> 24:
                        member["bitfield_size"] = m_off >> 24
                    members.append(member)
            else:
                members = [{"name": names[m_name], "type_id": m_type, "bits_offset": m_off}
                           for m_name, m_type, m_off in u32x3.iter_unpack(data[t:t + 12 * vlen])]
            obj["members"] = members
        elif kind == _ARRAY:
            elem, index, nelems = u32x3.unpack_from(data, t)
            obj["type_id"] = elem
            obj["index_type_id"] = index
            obj["nr_elems"] = nelems
        elif kind == _ENUM:
            signed = info >> 31
            obj["encoding"] = "SIGNED" if signed else "UNSIGNED"
            obj["size"] = size_or_type
            obj["vlen"] = vlen
            # Signed: the __s32 as is.  Unsigned: the __u32, or with bpftool_compat
            # the __s32 widened to __u64 (see the module doc).
            obj["values"] = [{"name": names[v_name], "val": val if signed else val & enum_mask}
                             for v_name, val in enum32.iter_unpack(data[t:t + 8 * vlen])]
        elif kind == _VAR:
            obj["type_id"] = size_or_type
            obj["linkage"] = linkage_names.get(u32.unpack_from(data, t)[0], "(unknown)")
        elif kind == _INT:
            v = u32.unpack_from(data, t)[0]
            obj["size"] = size_or_type
            obj["bits_offset"] = (v >> 16) & 0xFF
            obj["nr_bits"] = v & 0xFF
            obj["encoding"] = int_encoding_name((v >> 24) & 0x0F)
        elif kind == _DECL_TAG:
            obj["type_id"] = size_or_type
            obj["component_idx"] = i32.unpack_from(data, t)[0]
        elif kind == _FWD:
            obj["fwd_kind"] = "union" if info >> 31 else "struct"
        elif kind == _ENUM64:
            signed = info >> 31
            values = []
            for v_name, lo, hi in u32x3.iter_unpack(data[t:t + 12 * vlen]):
                val = (hi << 32) | lo
                if signed and val >= 1 << 63:
                    val -= 1 << 64
                values.append({"name": names[v_name], "val": val})
            obj["encoding"] = "SIGNED" if signed else "UNSIGNED"
            obj["size"] = size_or_type
            obj["vlen"] = vlen
            obj["values"] = values
        elif kind == _DATASEC:
            obj["size"] = size_or_type
            obj["vlen"] = vlen
            obj["vars"] = [{"type_id": v_type, "offset": v_off, "size": v_size}
                           for v_type, v_off, v_size in u32x3.iter_unpack(data[t:t + 12 * vlen])]
        elif kind == _FLOAT:
            obj["size"] = size_or_type
    return out


def dump_json(btf: "Btf", *, bpftool_compat: bool = True) -> str:
    """The JSON document as compact text with a final newline, like ``bpftool -j``.

    With ``bpftool_compat`` (the default) parsing it gives exactly the object
    bpftool's output parses to, and for ordinary names the text itself is
    bpftool's too (same key order, no spaces, non-ASCII kept as is).
    """
    doc = {"types": json_types(btf, bpftool_compat=bpftool_compat)}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n"
