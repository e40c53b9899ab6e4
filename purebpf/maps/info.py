"""``struct bpf_map_info``, decoded: what the kernel says about a live map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from purebpf.uapi import MapType

__all__ = ["MapInfo"]


@dataclass(frozen=True)
class MapInfo:
    """The answer of BPF_OBJ_GET_INFO_BY_FD for a map (``struct bpf_map_info``).

    ``type`` is a :class:`~purebpf.uapi.MapType` when known to purebpf, else
    the raw number; ``name`` is the (at most 15 character) kernel name.
    """

    type: "Union[MapType, int]"
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    ifindex: int = 0
    btf_vmlinux_value_type_id: int = 0
    netns_dev: int = 0
    netns_ino: int = 0
    btf_id: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    map_extra: int = 0
