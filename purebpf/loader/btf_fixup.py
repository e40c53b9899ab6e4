"""The object's BTF as it is sent to the kernel with BPF_BTF_LOAD.

clang's ``.BTF`` is not quite loadable as is.  libbpf repairs it in three
steps, reproduced here byte for byte on a copy of the raw section:

1. **Externs** (``bpf_object__collect_externs``): every variable of the
   ``.ksyms`` DATASEC becomes a 4-byte ``int`` VAR with ``BTF_VAR_GLOBAL_ALLOCATED``
   linkage at offset ``4 * i``; every kfunc FUNC in it is replaced by a
   ``dummy_ksym`` VAR (appended to the BTF), the FUNC gets global linkage and
   its unnamed parameters borrow the ``dummy_ksym`` name.  ``.kconfig``
   VARs get allocated linkage and their offsets in the ``.kconfig`` map.
2. **Data sections** (``btf_fixup_datasec``): a DATASEC of size 0 gets the
   ELF section's size and its global variables the offsets of their ELF
   symbols; a global variable with hidden/internal visibility becomes
   static; the entries are sorted by offset.  Global subprograms with hidden
   visibility get a static FUNC (``bpf_object__sanitize_and_load_btf``).
3. **Sanitising** (``bpf_object__sanitize_btf``) -- only for kinds the
   running kernel lacks, as described by :class:`BtfFeatures`: VAR and
   DECL_TAG become a 1-byte INT, DATASEC a STRUCT (dots in its name turned to
   underscores), FUNC_PROTO an ENUM and FUNC a TYPEDEF, global FUNCs static,
   FLOAT an anonymous empty STRUCT, TYPE_TAG a CONST, ENUM64 a UNION of
   ``enum64_placeholder`` ints (and ENUM's kind_flag is cleared).

The BTF wire format (``include/uapi/linux/btf.h``)::

    struct btf_header { __u16 magic; __u8 version; __u8 flags; __u32 hdr_len;
                        __u32 type_off; __u32 type_len; __u32 str_off; __u32 str_len; };
    struct btf_type   { __u32 name_off; __u32 info; union { __u32 size; __u32 type; }; };
    /* info: vlen in bits 0-15, kind in bits 24-28, kind_flag in bit 31 */

followed by a per-kind trailer.  This module patches those words directly:
no type is decoded into objects, which keeps it exact and fast.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from purebpf.errors import BtfError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from purebpf.spec import ObjectSpec

__all__ = ["BtfFeatures", "kernel_btf_bytes", "RawBtf"]

# BTF kinds (enum in include/uapi/linux/btf.h)
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19

_VAR_STATIC = 0
_VAR_GLOBAL_ALLOCATED = 1
_VAR_GLOBAL_EXTERN = 2
_FUNC_STATIC = 0
_FUNC_GLOBAL = 1

_KCONFIG_SEC = ".kconfig"
_KSYMS_SEC = ".ksyms"


def _trailer_size(kind: int, vlen: int) -> int:
    """Bytes after the 12-byte ``struct btf_type`` for one kind."""
    if kind in (_INT, _VAR, _DECL_TAG):
        return 4
    if kind == _ARRAY:
        return 12
    if kind in (_STRUCT, _UNION, _DATASEC, _ENUM64):
        return 12 * vlen
    if kind in (_ENUM, _FUNC_PROTO):
        return 8 * vlen
    if kind in (_PTR, _FWD, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _FUNC, _FLOAT, _TYPE_TAG):
        return 0
    raise BtfError(f"unknown BTF kind {kind}", section="types")


def _info(kind: int, vlen: int, kflag: bool = False) -> int:
    """``BTF_INFO_ENC(kind, kind_flag, vlen)``."""
    return (int(kflag) << 31) | ((kind & 0x1F) << 24) | (vlen & 0xFFFF)


@dataclass(frozen=True)
class BtfFeatures:
    """Which BTF features the target kernel accepts (all, by default).

    Each field mirrors one of libbpf's ``FEAT_BTF_*`` probes.  Build one from
    the running kernel with :meth:`probe`.
    """

    func: bool = True          #: BTF_KIND_FUNC / FUNC_PROTO (Linux 5.0)
    func_global: bool = True   #: BTF_FUNC_GLOBAL linkage (5.6)
    datasec: bool = True       #: BTF_KIND_VAR / DATASEC (5.2)
    float: bool = True         #: BTF_KIND_FLOAT (5.13)
    decl_tag: bool = True      #: BTF_KIND_DECL_TAG (5.16)
    type_tag: bool = True      #: BTF_KIND_TYPE_TAG (5.17)
    enum64: bool = True        #: BTF_KIND_ENUM64 (6.0)

    @property
    def needs_sanitizing(self) -> bool:
        """libbpf ``btf_needs_sanitization``: is any kind missing?"""
        return not (self.func and self.func_global and self.datasec and self.float
                    and self.decl_tag and self.type_tag and self.enum64)

    @classmethod
    def probe(cls) -> "BtfFeatures":
        """Ask the running kernel (through :mod:`purebpf.syscall.features`)."""
        from purebpf.syscall import features as f  # the kernel side, imported on demand

        return cls(func=f.has_btf_func(), func_global=_call(f, "has_btf_func_global", True),
                   datasec=f.has_btf_datasec(), float=f.has_btf_float(),
                   decl_tag=f.has_btf_decl_tag(), type_tag=f.has_btf_type_tag(),
                   enum64=f.has_btf_enum64())


def _call(module: object, name: str, default: bool) -> bool:
    fn = getattr(module, name, None)
    return bool(fn()) if callable(fn) else default


class RawBtf:
    """A mutable copy of raw BTF: types and strings as byte arrays plus an
    offset table, with the few editing operations libbpf's fix-ups need."""

    def __init__(self, data: bytes, *, byteorder: str = "little") -> None:
        self.e = "<" if byteorder == "little" else ">"
        if len(data) < 24:
            raise BtfError("BTF shorter than its header", section="header", offset=0)
        magic, _ver, _flags, hdr_len = struct.unpack_from(self.e + "HBBI", data, 0)
        if magic != 0xEB9F:
            raise BtfError(f"bad BTF magic {magic:#06x}", section="header", offset=0)
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfError(f"bad header length {hdr_len}", section="header", offset=4)
        type_off, type_len, str_off, str_len = struct.unpack_from(self.e + "IIII", data, 8)
        t0, s0 = hdr_len + type_off, hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise BtfError("type or string section outside the data", section="header", offset=8)
        self.header = bytearray(data[:hdr_len])
        self.types = bytearray(data[t0:t0 + type_len])
        self.strs = bytearray(data[s0:s0 + str_len])
        #: offsets[i] = byte offset in ``types`` of type id i + 1
        self.offsets: List[int] = []
        pos = 0
        while pos < len(self.types):
            if pos + 12 > len(self.types):
                raise BtfError("truncated type", section="types", offset=pos)
            info = self.u32(pos + 4)
            end = pos + 12 + _trailer_size((info >> 24) & 0x1F, info & 0xFFFF)
            if end > len(self.types):
                raise BtfError("truncated type trailer", section="types", offset=pos)
            self.offsets.append(pos)
            pos = end

    # -- words ---------------------------------------------------------------
    def u32(self, off: int) -> int:
        return int(struct.unpack_from(self.e + "I", self.types, off)[0])

    def set_u32(self, off: int, value: int) -> None:
        struct.pack_into(self.e + "I", self.types, off, value & 0xFFFFFFFF)

    def off_of(self, type_id: int) -> int:
        if not 1 <= type_id <= len(self.offsets):
            raise BtfError(f"type id {type_id} out of range (1..{len(self.offsets)})",
                           section="types")
        return self.offsets[type_id - 1]

    def kind(self, type_id: int) -> int:
        return (self.u32(self.off_of(type_id) + 4) >> 24) & 0x1F

    def vlen(self, type_id: int) -> int:
        return self.u32(self.off_of(type_id) + 4) & 0xFFFF

    def name(self, type_id: int) -> str:
        return self.string(self.u32(self.off_of(type_id)))

    def string(self, off: int) -> str:
        if off >= len(self.strs):
            raise BtfError(f"string offset {off} outside the string section", section="strings")
        end = self.strs.find(b"\0", off)
        return bytes(self.strs[off:end if end >= 0 else len(self.strs)]).decode("utf-8", "replace")

    def find(self, name: str, kind: int) -> Optional[int]:
        for tid in range(1, len(self.offsets) + 1):
            if self.kind(tid) == kind and self.name(tid) == name:
                return tid
        return None

    # -- appending (libbpf btf__add_str / btf__add_var / btf__add_int) ---------
    def add_str(self, s: str) -> int:
        """Offset of ``s``: an existing string if one starts a string-table
        entry (libbpf's strset dedup), else appended."""
        want = s.encode()
        off = 0
        while off < len(self.strs):
            end = self.strs.find(b"\0", off)
            if end < 0:
                break
            if self.strs[off:end] == want:
                return off
            off = end + 1
        off = len(self.strs)
        self.strs += want + b"\0"
        return off

    def _add_type(self, raw: bytes) -> int:
        self.offsets.append(len(self.types))
        self.types += raw
        return len(self.offsets)

    def add_var(self, name: str, linkage: int, type_id: int) -> int:
        name_off = self.add_str(name)
        return self._add_type(struct.pack(self.e + "IIII", name_off, _info(_VAR, 0), type_id,
                                          linkage))

    def add_int(self, name: str, size: int, encoding: int) -> int:
        name_off = self.add_str(name)
        return self._add_type(struct.pack(self.e + "IIII", name_off, _info(_INT, 0), size,
                                          (encoding << 24) | (size * 8)))

    def to_bytes(self) -> bytes:
        """Header (same length, offsets renewed), types, then strings."""
        header = bytearray(self.header)
        struct.pack_into(self.e + "IIII", header, 8, 0, len(self.types), len(self.types),
                         len(self.strs))
        return bytes(header) + bytes(self.types) + bytes(self.strs)


# --------------------------------------------------------------------------- steps


def _find_int32(btf: RawBtf) -> int:
    """libbpf ``find_int_btf_id``: the first INT of 32 bits, or 0."""
    for tid in range(1, len(btf.offsets) + 1):
        if btf.kind(tid) == _INT and btf.u32(btf.off_of(tid) + 12) & 0xFF == 32:
            return tid
    return 0


def _secinfos(btf: RawBtf, sec_id: int) -> List[int]:
    base = btf.off_of(sec_id) + 12
    return [base + 12 * i for i in range(btf.vlen(sec_id))]


def _fix_externs(btf: RawBtf, spec: "ObjectSpec") -> None:
    """``.ksyms`` and ``.kconfig`` DATASECs as ``bpf_object__collect_externs`` leaves them."""
    externs = {e.name: e for e in spec.externs}
    ksyms = btf.find(_KSYMS_SEC, _DATASEC)
    if ksyms is not None:
        has_func = any(btf.kind(btf.u32(vs)) == _FUNC for vs in _secinfos(btf, ksyms))
        dummy = 0
        if has_func:  # add_dummy_ksym_var
            dummy = btf.add_var("dummy_ksym", _VAR_GLOBAL_ALLOCATED, _find_int32(btf))
        int_id = _find_int32(btf)
        dummy_name = btf.u32(btf.off_of(dummy)) if dummy else 0
        off = 0
        for vs in _secinfos(btf, ksyms):
            vt = btf.u32(vs)
            name = btf.name(vt)
            if name not in externs:
                raise NotFoundError("extern", name, detail="a .ksyms BTF entry without ELF symbol")
            vt_off = btf.off_of(vt)
            if btf.kind(vt) not in (_FUNC, _VAR):
                raise BtfError(f".ksyms entry {name!r} (type {vt}) is neither VAR nor FUNC",
                               section="types", offset=vt_off)
            if btf.kind(vt) == _FUNC:
                proto = btf.u32(vt_off + 8)
                p_off = btf.off_of(proto)
                if btf.kind(proto) != _FUNC_PROTO:
                    raise BtfError(f"kfunc {name!r}: type {proto} is not a FUNC_PROTO",
                                   section="types", offset=vt_off)
                for j in range(btf.vlen(proto)):
                    param = p_off + 12 + 8 * j
                    if btf.u32(param + 4) and not btf.u32(param):
                        btf.set_u32(param, dummy_name)
                btf.set_u32(vs, dummy)
                info = btf.u32(vt_off + 4)
                btf.set_u32(vt_off + 4, (info & ~0xFFFF) | _FUNC_GLOBAL)
            else:
                btf.set_u32(vt_off + 12, _VAR_GLOBAL_ALLOCATED)
                btf.set_u32(vt_off + 8, int_id)
            btf.set_u32(vs + 4, off)
            btf.set_u32(vs + 8, 4)
            off += 4
        btf.set_u32(btf.off_of(ksyms) + 8, off)

    kconfig = btf.find(_KCONFIG_SEC, _DATASEC)
    if kconfig is not None:
        size = 0
        for e in spec.externs:
            if e.kind == "kconfig":
                size = max(size, e.offset + e.size)
        btf.set_u32(btf.off_of(kconfig) + 8, size)
        for vs in _secinfos(btf, kconfig):
            vt = btf.u32(vs)
            if btf.kind(vt) != _VAR:
                raise BtfError(f".kconfig entry (type {vt}) is not a VAR", section="types",
                               offset=vs)
            ext = externs.get(btf.name(vt))
            if ext is None:
                raise NotFoundError("extern", btf.name(vt), detail="a .kconfig BTF entry")
            btf.set_u32(btf.off_of(vt) + 12, _VAR_GLOBAL_ALLOCATED)
            btf.set_u32(vs + 4, ext.offset)


def _fix_datasecs(btf: RawBtf, spec: "ObjectSpec") -> None:
    """libbpf ``btf_fixup_datasec`` for every DATASEC."""
    sec_sizes = {s.name: s.size for s in spec.sections}
    var_syms: Dict[str, Tuple[int, str]] = {}
    for sym in spec.symbols:  # find_elf_var_sym: the first global/weak STT_OBJECT of that name
        if sym.type == "STT_OBJECT" and sym.bind in ("STB_GLOBAL", "STB_WEAK"):
            var_syms.setdefault(sym.name, (sym.value, sym.visibility))
    for sec_id in range(1, len(btf.offsets) + 1):
        if btf.kind(sec_id) != _DATASEC:
            continue
        sec_name = btf.name(sec_id)
        entries = _secinfos(btf, sec_id)
        if sec_name not in (_KCONFIG_SEC, _KSYMS_SEC):
            sec_off = btf.off_of(sec_id)
            fixup_offsets = False
            if btf.u32(sec_off + 8) == 0:
                size = sec_sizes.get(sec_name, 0)
                if not size:
                    raise NotFoundError("ELF section", sec_name,
                                        detail="needed for the size of its BTF DATASEC")
                btf.set_u32(sec_off + 8, size)
                fixup_offsets = True
            for vs in entries:
                vt = btf.u32(vs)
                if btf.kind(vt) != _VAR:
                    raise BtfError(f"DATASEC {sec_name} entry {vt} is not a VAR", section="types",
                                   offset=vs)
                vt_off = btf.off_of(vt)
                linkage = btf.u32(vt_off + 12)
                if linkage in (_VAR_STATIC, _VAR_GLOBAL_EXTERN):
                    continue
                var_name = btf.name(vt)
                found = var_syms.get(var_name)
                if found is None:
                    raise NotFoundError("ELF symbol", var_name,
                                        detail=f"variable of DATASEC {sec_name}")
                value, visibility = found
                if fixup_offsets:
                    btf.set_u32(vs + 4, value)
                if visibility in ("STV_HIDDEN", "STV_INTERNAL"):
                    btf.set_u32(vt_off + 12, _VAR_STATIC)
        # sort_vars: entries ordered by offset (a stable sort)
        records = [bytes(btf.types[vs:vs + 12]) for vs in entries]
        records.sort(key=lambda r: struct.unpack_from(btf.e + "I", r, 4)[0])
        if entries:
            start = entries[0]
            btf.types[start:start + 12 * len(records)] = b"".join(records)


def _mark_hidden_funcs_static(btf: RawBtf, spec: "ObjectSpec") -> None:
    """Global subprograms with hidden/internal visibility get a static FUNC."""
    hidden = set()
    subprogs = {p.name for p in spec.subprograms}
    for sym in spec.symbols:
        if (sym.type == "STT_FUNC" and sym.bind != "STB_LOCAL" and sym.name in subprogs
                and sym.visibility in ("STV_HIDDEN", "STV_INTERNAL")):
            hidden.add(sym.name)
    if not hidden:
        return
    for name in sorted(hidden):
        for tid in range(1, len(btf.offsets) + 1):
            off = btf.off_of(tid)
            info = btf.u32(off + 4)
            if (info >> 24) & 0x1F == _FUNC and info & 0xFFFF == _FUNC_GLOBAL \
                    and btf.name(tid) == name:
                btf.set_u32(off + 4, _info(_FUNC, _FUNC_STATIC))
                break


def _sanitize(btf: RawBtf, f: BtfFeatures) -> None:
    """libbpf ``bpf_object__sanitize_btf``: replace kinds the kernel lacks."""
    placeholder = 0
    tid = 1
    while tid <= len(btf.offsets):
        off = btf.off_of(tid)
        info = btf.u32(off + 4)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if (not f.datasec and kind == _VAR) or (not f.decl_tag and kind == _DECL_TAG):
            btf.set_u32(off + 4, _info(_INT, 0))
            btf.set_u32(off + 8, 1)
            btf.set_u32(off + 12, 8)  # BTF_INT_ENC(0, 0, 8)
        elif not f.datasec and kind == _DATASEC:
            name_off = btf.u32(off)
            end = btf.strs.find(b"\0", name_off)
            for i in range(name_off, end if end >= 0 else len(btf.strs)):
                if btf.strs[i] == ord("."):
                    btf.strs[i] = ord("_")
            btf.set_u32(off + 4, _info(_STRUCT, vlen))
            for j in range(vlen):
                rec = off + 12 + 12 * j
                v_type, v_off = btf.u32(rec), btf.u32(rec + 4)
                # struct btf_member { name_off; type; offset (bits) }
                btf.set_u32(rec + 8, v_off * 8)
                btf.set_u32(rec + 4, v_type)
                btf.set_u32(rec, btf.u32(btf.off_of(v_type)) if v_type else 0)
        elif not f.func and kind == _FUNC_PROTO:
            btf.set_u32(off + 4, _info(_ENUM, vlen))
            btf.set_u32(off + 8, 4)
        elif not f.func and kind == _FUNC:
            btf.set_u32(off + 4, _info(_TYPEDEF, 0))
        elif not f.func_global and kind == _FUNC:
            btf.set_u32(off + 4, _info(_FUNC, 0))
        elif not f.float and kind == _FLOAT:
            btf.set_u32(off, 0)
            btf.set_u32(off + 4, _info(_STRUCT, 0))
        elif not f.type_tag and kind == _TYPE_TAG:
            btf.set_u32(off, 0)
            btf.set_u32(off + 4, _info(_CONST, 0))
        elif not f.enum64 and kind == _ENUM:
            btf.set_u32(off + 4, _info(_ENUM, vlen))
        elif not f.enum64 and kind == _ENUM64:
            if placeholder == 0:
                placeholder = btf.add_int("enum64_placeholder", 1, 0)
                off = btf.off_of(tid)
            btf.set_u32(off + 4, _info(_UNION, vlen))
            for j in range(vlen):
                rec = off + 12 + 12 * j
                btf.set_u32(rec + 4, placeholder)
                btf.set_u32(rec + 8, 0)
        tid += 1


def kernel_btf_bytes(spec: "ObjectSpec", features: Optional[BtfFeatures] = None) -> bytes:
    """The BTF of ``spec`` exactly as libbpf hands it to BPF_BTF_LOAD.

    ``features`` describes the target kernel (default: every kind supported,
    so nothing is sanitised).  Raises :class:`~purebpf.errors.BtfError` for
    malformed BTF and NotFoundError when the ELF lacks a section or symbol
    the fix-ups need; ``spec`` is not changed.  An object without BTF gives
    ``b""``.
    """
    raw = spec.btf_raw or (spec.btf.raw if spec.btf is not None else b"")
    if not raw:
        return b""
    btf = RawBtf(raw, byteorder=spec.byteorder)
    _fix_externs(btf, spec)
    _fix_datasecs(btf, spec)
    _mark_hidden_funcs_static(btf, spec)
    if features is not None and features.needs_sanitizing:
        _sanitize(btf, features)
    return btf.to_bytes()
