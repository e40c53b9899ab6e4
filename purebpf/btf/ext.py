"""Reading ``.BTF.ext``: func_info, line_info and CO-RE relocation records.

clang emits ``.BTF.ext`` beside ``.BTF``.  It starts with ``struct
btf_ext_header`` (see :mod:`purebpf.btf.wire`); each of its three *info
sections* (located by ``*_off``/``*_len``, relative to the end of the header)
has the same shape::

    __u32 record_size;
    struct btf_ext_info_sec {          /* repeated until the end of the section */
        __u32 sec_name_off;            /* ELF section name, in the .BTF strings */
        __u32 num_info;
        __u8  data[num_info * record_size];
    };

``record_size`` comes from the data, so newer compilers may append fields:
the known prefix is read and the rest skipped.  A record smaller than the
known structure, or not a multiple of 4 bytes, is an error (as in libbpf).

``insn_off`` is kept as on the wire, a *byte* offset from the start of the
ELF section; ``insn_index`` gives the 8-byte instruction slot.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple, TypeVar, Union

from purebpf.btf.btf import Btf
from purebpf.errors import BtfError, BtfExtError

__all__ = ["BtfExt", "BtfExtHeader", "CoreReloKind", "FuncInfo", "LineInfo", "CoreRelo"]

_MAGIC = 0xEB9F
_MIN_HEADER = 24  # up to line_info_len
_FULL_HEADER = 32  # with core_relo_off/len
_SEC_HEADER = 8   # struct btf_ext_info_sec without data


class CoreReloKind(enum.IntEnum):
    """``enum bpf_core_relo_kind`` (include/uapi/linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True)
class BtfExtHeader:
    """``struct btf_ext_header``; offsets relative to the end of the header.

    ``core_relo_off``/``core_relo_len`` are 0 when ``hdr_len`` is 24 (old
    headers without the optional part).
    """

    magic: int
    version: int
    flags: int
    hdr_len: int
    func_info_off: int
    func_info_len: int
    line_info_off: int
    line_info_len: int
    core_relo_off: int = 0
    core_relo_len: int = 0


@dataclass(frozen=True)
class FuncInfo:
    """``struct bpf_func_info``: the FUNC type of the function starting at ``insn_off``."""

    insn_off: int
    type_id: int

    @property
    def insn_index(self) -> int:
        return self.insn_off // 8


@dataclass(frozen=True)
class LineInfo:
    """``struct bpf_line_info`` with its strings resolved.

    ``line``/``column`` are unpacked from ``line_col`` (line in the top 22
    bits, column in the low 10).
    """

    insn_off: int
    file_name_off: int
    line_off: int
    line: int
    column: int
    file_name: str
    line_text: str

    @property
    def insn_index(self) -> int:
        return self.insn_off // 8


@dataclass(frozen=True)
class CoreRelo:
    """``struct bpf_core_relo``: one CO-RE relocation of the instruction at ``insn_off``.

    ``kind`` is a :class:`CoreReloKind`, or the raw number when it is not
    one (the CO-RE engine reports that, the reader does not).
    """

    insn_off: int
    type_id: int
    access_str_off: int
    access_str: str
    kind: Union[CoreReloKind, int]

    @property
    def insn_index(self) -> int:
        return self.insn_off // 8


R = TypeVar("R")


class BtfExt:
    """The parsed ``.BTF.ext`` of an object; records grouped by ELF section name."""

    name: str
    header: BtfExtHeader
    func_info: Dict[str, Tuple[FuncInfo, ...]]
    line_info: Dict[str, Tuple[LineInfo, ...]]
    core_relos: Dict[str, Tuple[CoreRelo, ...]]
    func_info_rec_size: int
    line_info_rec_size: int
    core_relo_rec_size: int

    def __init__(self, data: bytes, btf: Btf, *, name: str = "<bytes>") -> None:
        self.name = name
        self.btf = btf
        self._data = data
        self._fmt = "<" if btf.byteorder == "little" else ">"
        self.header = self._parse_header()
        hdr = self.header
        self.func_info, self.func_info_rec_size = self._parse_info(
            "func_info", hdr.func_info_off, hdr.func_info_len, 8, self._func_info)
        self.line_info, self.line_info_rec_size = self._parse_info(
            "line_info", hdr.line_info_off, hdr.line_info_len, 16, self._line_info)
        self.core_relos, self.core_relo_rec_size = self._parse_info(
            "core_relo", hdr.core_relo_off, hdr.core_relo_len, 16, self._core_relo)

    @classmethod
    def from_bytes(cls, data: bytes, btf: Btf, *, name: str = "<bytes>") -> "BtfExt":
        """Parse ``.BTF.ext`` bytes; byte order and strings come from ``btf``."""
        return cls(bytes(data), btf, name=name)

    def __repr__(self) -> str:
        return (f"<BtfExt {self.name!r} func_info {sum(map(len, self.func_info.values()))} "
                f"line_info {sum(map(len, self.line_info.values()))} "
                f"core_relo {sum(map(len, self.core_relos.values()))}>")

    # ---------------------------------------------------------------- parsing

    def _error(self, section: str, offset: int, reason: str) -> BtfExtError:
        return BtfExtError(reason, file=self.name, section=section, offset=offset)

    def _parse_header(self) -> BtfExtHeader:
        data = self._data
        if len(data) < 8:
            raise self._error(".BTF.ext header", 0, f"header cut short: {len(data)} bytes")
        magic, version, flags, hdr_len = struct.unpack_from(self._fmt + "HBBI", data, 0)
        if magic != _MAGIC:
            raise self._error(".BTF.ext header", 0,
                              f"bad magic {magic:#06x} (want 0xeb9f in {self.btf.byteorder}-endian)")
        if version != 1:
            raise self._error(".BTF.ext header", 2, f"unsupported version {version}")
        if flags != 0:
            raise self._error(".BTF.ext header", 3, f"unsupported flags {flags:#x}")
        if hdr_len < _MIN_HEADER:
            raise self._error(".BTF.ext header", 4, f"hdr_len {hdr_len} smaller than {_MIN_HEADER}")
        if hdr_len > len(data):
            raise self._error(".BTF.ext header", 4,
                              f"hdr_len {hdr_len} past the end of the data ({len(data)} bytes)")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(self._fmt + "IIII", data, 8)
        cr_off = cr_len = 0
        if hdr_len >= _FULL_HEADER:
            cr_off, cr_len = struct.unpack_from(self._fmt + "II", data, 24)
        return BtfExtHeader(magic, version, flags, hdr_len, fi_off, fi_len, li_off, li_len,
                            cr_off, cr_len)

    def _parse_info(self, what: str, off: int, length: int, min_size: int,
                    make: Callable[[str, int, int, int], R]) -> Tuple[Dict[str, Tuple[R, ...]], int]:
        section = f".BTF.ext {what}"
        if length == 0:
            return {}, 0
        data = self._data
        start = self.header.hdr_len + off
        end = start + length
        if off % 4:
            raise self._error(section, start, f"{what} offset {off} not 4-byte aligned")
        if end > len(data):
            raise self._error(section, start,
                              f"{what} [{start}, {end}) past the end of the data ({len(data)} bytes)")
        if length < 4:
            raise self._error(section, start, "no record size")
        (rec_size,) = struct.unpack_from(self._fmt + "I", data, start)
        if rec_size < min_size or rec_size % 4:
            raise self._error(section, start,
                              f"record size {rec_size} invalid (at least {min_size}, multiple of 4)")
        result: Dict[str, Tuple[R, ...]] = {}
        pos = start + 4
        while pos < end:
            if end - pos < _SEC_HEADER:
                raise self._error(section, pos, "btf_ext_info_sec header cut short")
            sec_name_off, num_info = struct.unpack_from(self._fmt + "II", data, pos)
            try:
                sec_name = self.btf.string_at(sec_name_off)
            except BtfError as exc:
                raise self._error(section, pos, f"section name: {exc.reason}") from exc
            if num_info == 0:
                raise self._error(section, pos + 4, f"section {sec_name!r}: num_info is 0")
            pos += _SEC_HEADER
            if num_info > (end - pos) // rec_size:
                raise self._error(section, pos - 4,
                                  f"section {sec_name!r}: {num_info} records of {rec_size} bytes "
                                  f"run past the end ({end - pos} bytes left)")
            records: List[R] = []
            for _ in range(num_info):
                records.append(make(section, pos, rec_size, 0))
                pos += rec_size
            result[sec_name] = result.get(sec_name, ()) + tuple(records)
        return result, rec_size

    def _func_info(self, section: str, pos: int, rec_size: int, _: int) -> FuncInfo:
        insn_off, type_id = struct.unpack_from(self._fmt + "II", self._data, pos)
        return FuncInfo(insn_off, type_id)

    def _line_info(self, section: str, pos: int, rec_size: int, _: int) -> LineInfo:
        insn_off, file_off, line_off, line_col = struct.unpack_from(self._fmt + "IIII", self._data, pos)
        file_name = self._string(section, pos + 4, file_off)
        line_text = self._string(section, pos + 8, line_off)
        return LineInfo(insn_off, file_off, line_off, line_col >> 10, line_col & 0x3FF,
                        file_name, line_text)

    def _core_relo(self, section: str, pos: int, rec_size: int, _: int) -> CoreRelo:
        insn_off, type_id, access_off, kind = struct.unpack_from(self._fmt + "IIII", self._data, pos)
        access = self._string(section, pos + 8, access_off)
        kind_value: Union[CoreReloKind, int]
        try:
            kind_value = CoreReloKind(kind)
        except ValueError:
            kind_value = kind
        return CoreRelo(insn_off, type_id, access_off, access, kind_value)

    def _string(self, section: str, pos: int, offset: int) -> str:
        try:
            return self.btf.string_at(offset)
        except BtfError as exc:
            raise self._error(section, pos, exc.reason) from exc
