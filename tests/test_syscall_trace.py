"""Transcript decoding without a kernel: any attribute bytes decode and format
to one line, never raising (pure tests, no root)."""

from __future__ import annotations

import ctypes
import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from purebpf.syscall import attrs
from purebpf.syscall.trace import TraceRecord, decode_attr

VARIANTS = [cls for cls, _prefix in attrs.ATTR_VARIANTS]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VARIANTS), st.binary(min_size=168, max_size=168),
       st.one_of(st.none(), st.integers(0, 1 << 20)), st.one_of(st.none(), st.sampled_from(sorted(errno.errorcode))))
def test_any_attr_bytes_decode_and_format(cls: "type[ctypes.Structure]", raw: bytes, result: object, err: object) -> None:
    attr = cls.from_buffer_copy(raw[: ctypes.sizeof(cls)])
    decoded = decode_attr(attr)
    for key in decoded:
        assert key not in getattr(cls, "_pointers_")  # addresses never shown
    rec = TraceRecord("BPF_X", decoded, result if err is None else None, err, 0)  # type: ignore[arg-type]
    line = rec.format()
    assert "\n" not in line and "\r" not in line  # one record, one line
    assert line.startswith("BPF_X")


def test_flags_and_enums_by_name() -> None:
    a = attrs.MapCreateAttr()
    a.map_type = 1
    a.map_flags = (1 << 0) | (1 << 10) | (1 << 30)
    a.map_name = b"x"
    d = decode_attr(a)
    assert d == {"map_type": "HASH", "map_flags": "NO_PREALLOC|MMAPABLE|0x40000000", "name": "x"}
    a.map_type = 999
    assert decode_attr(a)["map_type"] == "999"  # unknown values print as numbers
    rec = TraceRecord("BPF_MAP_CREATE", decode_attr(a), None, errno.EINVAL, 0)
    assert rec.format() == 'BPF_MAP_CREATE map_type=999 map_flags=NO_PREALLOC|MMAPABLE|0x40000000 name="x" -> error EINVAL'


def test_anonymous_unions_decode_their_first_member() -> None:
    a = attrs.LinkCreateAttr()
    a.prog_fd = 5
    a.target_fd = 7
    a.attach_type = 46
    d = decode_attr(a)
    assert d["prog_fd"] == 5 and d["target_fd"] == 7 and d["attach_type"] == "TCX_INGRESS"


def test_kernel_version_rules_follow_libbpf() -> None:
    from purebpf.syscall.features import kernel_version_from

    # Ubuntu: /proc/version_signature wins over uname -r
    assert kernel_version_from("5.4.0-12-generic", "#13-Ubuntu SMP", "Ubuntu 5.4.0-12.15-generic 5.4.8\n") == \
        (5 << 16) + (4 << 8) + 8
    # Debian: "Debian A.B.C" in uname -v
    assert kernel_version_from("4.19.0-22-amd64", "#1 SMP Debian 4.19.260-1 (2022-09-29)") == \
        (4 << 16) + (19 << 8) + 255  # patch level clamped to 255
    # plain kernels: uname -r
    assert kernel_version_from("6.18.44-fc-v782", "#1 SMP PREEMPT_DYNAMIC @0") == (6 << 16) + (18 << 8) + 44
    # fewer than three numbers: 0, as libbpf
    assert kernel_version_from("6.18-rc1", "#1") == 0
    # a malformed signature falls back to uname
    assert kernel_version_from("6.1.2", "#1", "garbage") == (6 << 16) + (1 << 8) + 2


def test_probe_kind_numbers_match_the_btf_model() -> None:
    from purebpf.btf.types import BtfKind
    from purebpf.syscall import features

    for kind in BtfKind:
        assert getattr(features.BtfKind, kind.name) == int(kind)


def test_link_create_union_is_not_misread() -> None:
    """A perf-event cookie overlaps target_btf_id: the generic decoder must not
    print it as a BTF id (link_create adds the right reading itself)."""
    a = attrs.LinkCreateAttr()
    a.prog_fd = 3
    a.attach_type = 41  # BPF_PERF_EVENT
    a.perf_event.bpf_cookie = 0x1234
    d = decode_attr(a)
    assert "target_btf_id" not in d and d["attach_type"] == "PERF_EVENT"
