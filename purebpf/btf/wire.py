"""The BTF and ``.BTF.ext`` wire formats, declared with Construct.

This is the readable, declarative description of the bytes, one schema per
structure of include/uapi/linux/btf.h (and tools/lib/bpf/libbpf_internal.h
for ``.BTF.ext``), each with the C declaration quoted beside it.  The fast
reader (:mod:`purebpf.btf.btf`, :mod:`purebpf.btf._offsets`) does not use it
on the load path -- Construct costs tens of microseconds per record -- but the
test suite checks that both agree on every type of every fixture, and dumpers
may use it to show a record field by field.

Everything is parametrised by byte order: ``wire_format("little")`` or
``wire_format("big")`` (objects built with ``clang -target bpfeb``).
Importing this module imports Construct; import it only when needed.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

from construct import (  # type: ignore[import-untyped]
    Array,
    BitsInteger,
    BitStruct,
    ByteSwapped,
    Construct,
    Flag,
    Int16ub,
    Int16ul,
    Int32sb,
    Int32sl,
    Int32ub,
    Int32ul,
    Int8ub,
    Padding,
    Pass,
    Struct,
    Switch,
    this,
)

__all__ = ["WireFormat", "wire_format", "KIND_TRAILERS"]

#: Name of the trailer schema for each ``BTF_KIND_*`` value (``None``: no trailer).
KIND_TRAILERS: Dict[int, str] = {
    1: "btf_int", 3: "btf_array", 4: "btf_member", 5: "btf_member", 6: "btf_enum",
    13: "btf_param", 14: "btf_var", 15: "btf_var_secinfo", 17: "btf_decl_tag",
    19: "btf_enum64",
}


class WireFormat:
    """The Construct schemas for one byte order (attributes named after the C structs)."""

    btf_header: Construct
    btf_type_info: Construct
    btf_type: Construct
    btf_int: Construct
    btf_array: Construct
    btf_member: Construct
    btf_enum: Construct
    btf_enum64: Construct
    btf_param: Construct
    btf_var: Construct
    btf_var_secinfo: Construct
    btf_decl_tag: Construct
    btf_type_record: Construct
    btf_ext_header: Construct
    btf_ext_info_sec: Construct
    bpf_func_info: Construct
    bpf_line_info: Construct
    bpf_core_relo: Construct

    def __init__(self, byteorder: str) -> None:
        if byteorder not in ("little", "big"):
            raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")
        little = byteorder == "little"
        u16 = Int16ul if little else Int16ub
        u32 = Int32ul if little else Int32ub
        s32 = Int32sl if little else Int32sb

        def u32_bits(bits: Construct) -> Construct:
            """A u32 split into bit fields, most significant field first."""
            return ByteSwapped(bits) if little else bits

        # struct btf_header {
        #     __u16   magic;
        #     __u8    version;
        #     __u8    flags;
        #     __u32   hdr_len;
        #     /* All offsets are in bytes relative to the end of this header */
        #     __u32   type_off;       /* offset of type section   */
        #     __u32   type_len;       /* length of type section   */
        #     __u32   str_off;        /* offset of string section */
        #     __u32   str_len;        /* length of string section */
        # };
        self.btf_header = Struct(
            "magic" / u16,
            "version" / Int8ub,
            "flags" / Int8ub,
            "hdr_len" / u32,
            "type_off" / u32,
            "type_len" / u32,
            "str_off" / u32,
            "str_len" / u32,
        )

        # /* "info" bits arrangement
        #  * bits  0-15: vlen (e.g. # of struct's members)
        #  * bits 16-23: unused
        #  * bits 24-28: kind (e.g. int, ptr, array...etc)
        #  * bits 29-30: unused
        #  * bit     31: kind_flag, currently used by
        #  *             struct, union, enum, fwd, enum64,
        #  *             decl_tag and type_tag
        #  */
        self.btf_type_info = u32_bits(BitStruct(
            "kind_flag" / Flag,
            Padding(2),
            "kind" / BitsInteger(5),
            Padding(8),
            "vlen" / BitsInteger(16),
        ))

        # struct btf_type {
        #     __u32 name_off;
        #     __u32 info;
        #     union {
        #         __u32 size;     /* INT, ENUM, STRUCT, UNION, DATASEC, FLOAT, ENUM64 */
        #         __u32 type;     /* PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC,
        #                            FUNC_PROTO, VAR, DECL_TAG, TYPE_TAG */
        #     };
        # };
        self.btf_type = Struct(
            "name_off" / u32,
            "info" / self.btf_type_info,
            "size_or_type" / u32,
        )

        # BTF_KIND_INT is followed by a u32:
        # #define BTF_INT_ENCODING(VAL)   (((VAL) & 0x0f000000) >> 24)
        # #define BTF_INT_OFFSET(VAL)     (((VAL) & 0x00ff0000) >> 16)
        # #define BTF_INT_BITS(VAL)       ((VAL)  & 0x000000ff)
        self.btf_int = u32_bits(BitStruct(
            Padding(4),
            "encoding" / BitsInteger(4),
            "offset" / BitsInteger(8),
            Padding(8),
            "bits" / BitsInteger(8),
        ))

        # struct btf_array {
        #     __u32   type;
        #     __u32   index_type;
        #     __u32   nelems;
        # };
        self.btf_array = Struct("type" / u32, "index_type" / u32, "nelems" / u32)

        # struct btf_member {
        #     __u32   name_off;
        #     __u32   type;
        #     /* If the type info kind_flag is set, the btf_member offset
        #      * contains both member bitfield size and bit offset. The
        #      * bitfield size is set for bitfield members. If the type
        #      * info kind_flag is not set, the offset contains only bit
        #      * offset.
        #      */
        #     __u32   offset;
        # };
        self.btf_member = Struct("name_off" / u32, "type" / u32, "offset" / u32)

        # struct btf_enum {
        #     __u32   name_off;
        #     __s32   val;
        # };
        # (read as u32 here: the enum's kind_flag says whether it is signed)
        self.btf_enum = Struct("name_off" / u32, "val" / u32)

        # struct btf_enum64 {
        #     __u32   name_off;
        #     __u32   val_lo32;
        #     __u32   val_hi32;
        # };
        self.btf_enum64 = Struct("name_off" / u32, "val_lo32" / u32, "val_hi32" / u32)

        # struct btf_param {
        #     __u32   name_off;
        #     __u32   type;
        # };
        self.btf_param = Struct("name_off" / u32, "type" / u32)

        # struct btf_var {
        #     __u32   linkage;
        # };
        self.btf_var = Struct("linkage" / u32)

        # struct btf_var_secinfo {
        #     __u32   type;
        #     __u32   offset;
        #     __u32   size;
        # };
        self.btf_var_secinfo = Struct("type" / u32, "offset" / u32, "size" / u32)

        # struct btf_decl_tag {
        #     __s32   component_idx;
        # };
        self.btf_decl_tag = Struct("component_idx" / s32)

        vlen = this.header.info.vlen
        # One whole type: struct btf_type and the trailer its kind calls for.
        self.btf_type_record = Struct(
            "header" / self.btf_type,
            "trailer" / Switch(this.header.info.kind, {
                1: self.btf_int,
                3: self.btf_array,
                4: Array(vlen, self.btf_member),
                5: Array(vlen, self.btf_member),
                6: Array(vlen, self.btf_enum),
                13: Array(vlen, self.btf_param),
                14: self.btf_var,
                15: Array(vlen, self.btf_var_secinfo),
                17: self.btf_decl_tag,
                19: Array(vlen, self.btf_enum64),
            }, default=Pass),
        )

        # struct btf_ext_header {
        #     __u16   magic;
        #     __u8    version;
        #     __u8    flags;
        #     __u32   hdr_len;
        #     /* All offsets are in bytes relative to the end of this header */
        #     __u32   func_info_off;
        #     __u32   func_info_len;
        #     __u32   line_info_off;
        #     __u32   line_info_len;
        #     /* optional part of .BTF.ext header */
        #     __u32   core_relo_off;
        #     __u32   core_relo_len;
        # };
        # (the optional part is present when hdr_len >= 32; parse the first
        # 24 bytes with btf_ext_header_base when it is not)
        self.btf_ext_header_base = Struct(
            "magic" / u16,
            "version" / Int8ub,
            "flags" / Int8ub,
            "hdr_len" / u32,
            "func_info_off" / u32,
            "func_info_len" / u32,
            "line_info_off" / u32,
            "line_info_len" / u32,
        )
        self.btf_ext_header = Struct(
            *self.btf_ext_header_base.subcons,
            "core_relo_off" / u32,
            "core_relo_len" / u32,
        )

        # struct btf_ext_info_sec {
        #     __u32   sec_name_off; /* offset to section name */
        #     __u32   num_info;
        #     /* Followed by num_info * record_size number of bytes */
        #     __u8    data[];
        # };
        # (each info section -- func_info, line_info, core_relo -- starts with
        # a __u32 record_size, then btf_ext_info_sec blocks until its end)
        self.btf_ext_info_sec = Struct("sec_name_off" / u32, "num_info" / u32)

        # struct bpf_func_info {
        #     __u32   insn_off;
        #     __u32   type_id;
        # };
        self.bpf_func_info = Struct("insn_off" / u32, "type_id" / u32)

        # struct bpf_line_info {
        #     __u32   insn_off;
        #     __u32   file_name_off;
        #     __u32   line_off;
        #     __u32   line_col;
        # };
        # #define BPF_LINE_INFO_LINE_NUM(line_col)    ((line_col) >> 10)
        # #define BPF_LINE_INFO_LINE_COL(line_col)    ((line_col) & 0x3ff)
        self.bpf_line_info = Struct(
            "insn_off" / u32,
            "file_name_off" / u32,
            "line_off" / u32,
            "line_col" / u32_bits(BitStruct("line" / BitsInteger(22), "column" / BitsInteger(10))),
        )

        # struct bpf_core_relo {
        #     __u32   insn_off;
        #     __u32   type_id;
        #     __u32   access_str_off;
        #     enum bpf_core_relo_kind kind;
        # };
        self.bpf_core_relo = Struct(
            "insn_off" / u32,
            "type_id" / u32,
            "access_str_off" / u32,
            "kind" / u32,
        )


@functools.lru_cache(maxsize=None)
def wire_format(byteorder: str) -> WireFormat:
    """The schemas for ``byteorder`` ("little" or "big"), built once."""
    return WireFormat(byteorder)


def parse_type(fmt: WireFormat, data: bytes, offset: int) -> Any:
    """Parse one ``btf_type_record`` at ``offset`` of ``data`` (a convenience for dumps)."""
    return fmt.btf_type_record.parse(data[offset:])
