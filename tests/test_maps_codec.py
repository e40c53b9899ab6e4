"""Key/value conversion and global-variable encoding: properties checked
against the struct module (no kernel needed)."""

from __future__ import annotations

import ctypes
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from purebpf.maps import GlobalData
from purebpf.maps._codec import round_up, to_bytes
from purebpf.maps._sys import parse_cpu_list
from purebpf.spec import ObjectSpec

OBJ = Path(__file__).resolve().parent.parent / "fixtures" / "obj" / "globals.bpf.o"
SPEC = ObjectSpec.from_file(OBJ)
ORDER = "<" if sys.byteorder == "little" else ">"


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_int_keys_pack_like_c_u32(value: int) -> None:
    assert to_bytes(value, 4, "key") == struct.pack("=I", value)
    assert to_bytes(ctypes.c_uint32(value), 4, "key") == struct.pack("=I", value)


@given(st.integers(min_value=-2**63, max_value=-1))
def test_negative_ints_pack_like_c_s64(value: int) -> None:
    assert to_bytes(value, 8, "value") == struct.pack("=q", value)


@given(st.binary(max_size=20), st.integers(min_value=1, max_value=20))
def test_bytes_must_have_the_exact_size(data: bytes, size: int) -> None:
    if len(data) == size:
        assert to_bytes(data, size, "key") == data
        assert to_bytes(bytearray(data), size, "key") == data
        assert to_bytes(memoryview(data), size, "key") == data
    else:
        with pytest.raises(ValueError, match=f"must be {size} bytes"):
            to_bytes(data, size, "key")


def test_bad_objects() -> None:
    with pytest.raises(OverflowError):
        to_bytes(256, 1, "key")
    with pytest.raises(TypeError):
        to_bytes(1.5, 8, "value")
    with pytest.raises(ValueError):
        to_bytes(1, 0, "key")
    assert round_up(13, 8) == 16 and round_up(16, 8) == 16


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("0") == [0]


@given(st.integers(min_value=-2**15, max_value=2**15 - 1),
       st.integers(min_value=0, max_value=2**64 - 1),
       st.integers(min_value=-2**31, max_value=2**31 - 1))
def test_global_ints_roundtrip_through_struct(small: int, big: int, signed: int) -> None:
    data = GlobalData(SPEC.data_section(".data"), SPEC.btf)
    data["data_small"] = small
    data["packets_seen"] = big
    raw = bytes(data.raw)
    assert struct.unpack_from(ORDER + "h", raw, data.variable("data_small").offset)[0] == small
    assert struct.unpack_from(ORDER + "Q", raw, data.variable("packets_seen").offset)[0] == big
    assert data["data_small"] == small and data["packets_seen"] == big
    ro = GlobalData(SPEC.data_section(".rodata"), SPEC.btf)
    ro["cfg_static_bias"] = signed
    assert ro["cfg_static_bias"] == signed


def test_without_btf_values_are_bytes() -> None:
    view = GlobalData(SPEC.data_section(".data"), None)
    assert view["packets_seen"] == struct.pack(ORDER + "Q", 1000)
    view["packets_seen"] = struct.pack(ORDER + "Q", 5)
    with pytest.raises(ValueError):
        view["packets_seen"] = b"\x01"


def test_big_endian_object_decodes_in_its_byte_order() -> None:
    be = ObjectSpec.from_file(OBJ.with_name("globals.bpfeb.o"))
    view = GlobalData(be.data_section(".data"), be.btf, byteorder=be.byteorder)
    assert view["packets_seen"] == 1000
    assert view["data_small"] == -2
