"""``union bpf_attr`` variants as ctypes structures, one per command family.

The second argument of ``bpf(2)`` is a pointer to ``union bpf_attr``
(include/uapi/linux/bpf.h) together with its size.  Each command reads only
its own member of that union, so purebpf declares one
:class:`ctypes.Structure` per member, passes a pointer to it and its
``sizeof`` as the size.  The kernel copies ``size`` bytes into a zeroed
``union bpf_attr`` (``bpf_check_uarg_tail_zero`` only checks that bytes it
does not know are zero), so a variant shorter than the whole union is fine
and fields added by newer kernels are simply zero on older ones when left
unset.

Every class quotes the uapi struct it mirrors (Linux 6.18).  Field names are
the uapi names; members of anonymous unions are reachable directly (ctypes
``_anonymous_``), named unions keep their uapi name.

Pointers are ``__u64`` (``__aligned_u64``) in the uapi: purebpf stores
``ctypes.addressof(buffer)`` there.  The class attribute ``_pointers_`` lists
them, so that the transcript (:mod:`purebpf.syscall.trace`) does not print
addresses; ``_enums_`` names the fields whose value is a uapi enum or flag
set.
"""

from __future__ import annotations

import ctypes
from typing import ClassVar, Dict, FrozenSet, Tuple, Type

from purebpf.uapi import (
    AttachFlags,
    AttachType,
    MapFlags,
    MapType,
    MapUpdateFlags,
    ProgFlags,
    ProgType,
    StatsType,
)

__all__ = [
    "AttrBase",
    "MapCreateAttr",
    "MapElemAttr",
    "MapBatchAttr",
    "ProgLoadAttr",
    "ObjPinAttr",
    "ProgAttachAttr",
    "TestRunAttr",
    "GetIdAttr",
    "InfoAttr",
    "QueryAttr",
    "RawTracepointAttr",
    "BtfLoadAttr",
    "TaskFdQueryAttr",
    "LinkCreateAttr",
    "LinkUpdateAttr",
    "LinkDetachAttr",
    "EnableStatsAttr",
    "IterCreateAttr",
    "ProgBindMapAttr",
    "ATTR_VARIANTS",
]

u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64


class AttrBase(ctypes.Structure):
    """Common base: metadata used by the transcript decoder."""

    #: fields holding user-space addresses (never printed)
    _pointers_: ClassVar[FrozenSet[str]] = frozenset()
    #: field name -> enum / flag class used to print the value by name
    _enums_: ClassVar[Dict[str, type]] = {}
    #: field name -> name used in the transcript
    _renames_: ClassVar[Dict[str, str]] = {}
    #: fields that are file descriptors
    _fds_: ClassVar[FrozenSet[str]] = frozenset()
    #: unions whose meaning depends on another field: not decoded generically
    _opaque_: ClassVar[FrozenSet[str]] = frozenset()


class MapCreateAttr(AttrBase):
    """BPF_MAP_CREATE::

        struct { /* anonymous struct used by BPF_MAP_CREATE command */
            __u32 map_type; __u32 key_size; __u32 value_size; __u32 max_entries;
            __u32 map_flags; __u32 inner_map_fd; __u32 numa_node;
            char  map_name[BPF_OBJ_NAME_LEN];
            __u32 map_ifindex; __u32 btf_fd; __u32 btf_key_type_id;
            __u32 btf_value_type_id; __u32 btf_vmlinux_value_type_id;
            __u64 map_extra;
            __s32 value_type_btf_obj_fd; __s32 map_token_fd;
            __aligned_u64 excl_prog_hash; __u32 excl_prog_hash_size;
        };
    """

    _fields_ = [
        ("map_type", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("inner_map_fd", u32),
        ("numa_node", u32),
        ("map_name", ctypes.c_char * 16),
        ("map_ifindex", u32),
        ("btf_fd", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("map_extra", u64),
        ("value_type_btf_obj_fd", s32),
        ("map_token_fd", s32),
        ("excl_prog_hash", u64),
        ("excl_prog_hash_size", u32),
    ]
    _pointers_ = frozenset({"excl_prog_hash"})
    _enums_ = {"map_type": MapType, "map_flags": MapFlags}
    _renames_ = {"map_name": "name"}


class _ValueOrNextKey(ctypes.Union):
    _fields_ = [("value", u64), ("next_key", u64)]


class MapElemAttr(AttrBase):
    """BPF_MAP_*_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_FREEZE::

        struct { /* anonymous struct used by BPF_MAP_*_ELEM and BPF_MAP_FREEZE commands */
            __u32 map_fd;
            __aligned_u64 key;
            union { __aligned_u64 value; __aligned_u64 next_key; };
            __u64 flags;
        };
    """

    _anonymous_ = ("_u",)
    _fields_ = [
        ("map_fd", u32),
        ("key", u64),
        ("_u", _ValueOrNextKey),
        ("flags", u64),
    ]
    _pointers_ = frozenset({"key", "value", "next_key"})
    _enums_ = {"flags": MapUpdateFlags}
    _fds_ = frozenset({"map_fd"})


class MapBatchAttr(AttrBase):
    """BPF_MAP_*_BATCH::

        struct { /* struct used by BPF_MAP_*_BATCH commands */
            __aligned_u64 in_batch; __aligned_u64 out_batch;
            __aligned_u64 keys; __aligned_u64 values;
            __u32 count; __u32 map_fd;
            __u64 elem_flags; __u64 flags;
        } batch;
    """

    _fields_ = [
        ("in_batch", u64),
        ("out_batch", u64),
        ("keys", u64),
        ("values", u64),
        ("count", u32),
        ("map_fd", u32),
        ("elem_flags", u64),
        ("flags", u64),
    ]
    _pointers_ = frozenset({"in_batch", "out_batch", "keys", "values"})
    _enums_ = {"elem_flags": MapUpdateFlags}
    _fds_ = frozenset({"map_fd"})


class _AttachProgOrBtfObj(ctypes.Union):
    _fields_ = [("attach_prog_fd", u32), ("attach_btf_obj_fd", u32)]


class ProgLoadAttr(AttrBase):
    """BPF_PROG_LOAD::

        struct { /* anonymous struct used by BPF_PROG_LOAD command */
            __u32 prog_type; __u32 insn_cnt;
            __aligned_u64 insns; __aligned_u64 license;
            __u32 log_level; __u32 log_size; __aligned_u64 log_buf;
            __u32 kern_version; __u32 prog_flags;
            char prog_name[BPF_OBJ_NAME_LEN];
            __u32 prog_ifindex; __u32 expected_attach_type;
            __u32 prog_btf_fd; __u32 func_info_rec_size; __aligned_u64 func_info;
            __u32 func_info_cnt; __u32 line_info_rec_size; __aligned_u64 line_info;
            __u32 line_info_cnt; __u32 attach_btf_id;
            union { __u32 attach_prog_fd; __u32 attach_btf_obj_fd; };
            __u32 core_relo_cnt; __aligned_u64 fd_array; __aligned_u64 core_relos;
            __u32 core_relo_rec_size; __u32 log_true_size; __s32 prog_token_fd;
            __u32 fd_array_cnt; __aligned_u64 signature; __u32 signature_size;
            __s32 keyring_id;
        };
    """

    _anonymous_ = ("_u",)
    _fields_ = [
        ("prog_type", u32),
        ("insn_cnt", u32),
        ("insns", u64),
        ("license", u64),
        ("log_level", u32),
        ("log_size", u32),
        ("log_buf", u64),
        ("kern_version", u32),
        ("prog_flags", u32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", u32),
        ("expected_attach_type", u32),
        ("prog_btf_fd", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("func_info_cnt", u32),
        ("line_info_rec_size", u32),
        ("line_info", u64),
        ("line_info_cnt", u32),
        ("attach_btf_id", u32),
        ("_u", _AttachProgOrBtfObj),
        ("core_relo_cnt", u32),
        ("fd_array", u64),
        ("core_relos", u64),
        ("core_relo_rec_size", u32),
        ("log_true_size", u32),
        ("prog_token_fd", s32),
        ("fd_array_cnt", u32),
        ("signature", u64),
        ("signature_size", u32),
        ("keyring_id", s32),
    ]
    _pointers_ = frozenset({"insns", "license", "log_buf", "func_info", "line_info",
                            "fd_array", "core_relos", "signature"})
    _enums_ = {"prog_type": ProgType, "prog_flags": ProgFlags, "expected_attach_type": AttachType}
    _renames_ = {"prog_name": "name"}
    _fds_ = frozenset({"prog_btf_fd"})


class ObjPinAttr(AttrBase):
    """BPF_OBJ_PIN / BPF_OBJ_GET::

        struct { /* anonymous struct used by BPF_OBJ_* commands */
            __aligned_u64 pathname; __u32 bpf_fd; __u32 file_flags;
            __s32 path_fd;
        };
    """

    _fields_ = [
        ("pathname", u64),
        ("bpf_fd", u32),
        ("file_flags", u32),
        ("path_fd", s32),
    ]
    _pointers_ = frozenset({"pathname"})
    _enums_ = {"file_flags": MapFlags}


class _TargetFdOrIfindex(ctypes.Union):
    _fields_ = [("target_fd", u32), ("target_ifindex", u32)]


class _RelativeFdOrId(ctypes.Union):
    _fields_ = [("relative_fd", u32), ("relative_id", u32)]


class ProgAttachAttr(AttrBase):
    """BPF_PROG_ATTACH / BPF_PROG_DETACH::

        struct { /* anonymous struct used by BPF_PROG_ATTACH/DETACH commands */
            union { __u32 target_fd; __u32 target_ifindex; };
            __u32 attach_bpf_fd; __u32 attach_type; __u32 attach_flags;
            __u32 replace_bpf_fd;
            union { __u32 relative_fd; __u32 relative_id; };
            __u64 expected_revision;
        };
    """

    _anonymous_ = ("_t", "_r")
    _fields_ = [
        ("_t", _TargetFdOrIfindex),
        ("attach_bpf_fd", u32),
        ("attach_type", u32),
        ("attach_flags", u32),
        ("replace_bpf_fd", u32),
        ("_r", _RelativeFdOrId),
        ("expected_revision", u64),
    ]
    _enums_ = {"attach_type": AttachType, "attach_flags": AttachFlags}
    _fds_ = frozenset({"target_fd", "attach_bpf_fd"})


class TestRunAttr(AttrBase):
    """BPF_PROG_TEST_RUN (BPF_PROG_RUN)::

        struct { /* anonymous struct used by BPF_PROG_TEST_RUN command */
            __u32 prog_fd; __u32 retval; __u32 data_size_in; __u32 data_size_out;
            __aligned_u64 data_in; __aligned_u64 data_out;
            __u32 repeat; __u32 duration; __u32 ctx_size_in; __u32 ctx_size_out;
            __aligned_u64 ctx_in; __aligned_u64 ctx_out;
            __u32 flags; __u32 cpu; __u32 batch_size;
        } test;
    """

    __test__ = False  # not a pytest test class despite the name

    _fields_ = [
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
    ]
    _pointers_ = frozenset({"data_in", "data_out", "ctx_in", "ctx_out"})
    _fds_ = frozenset({"prog_fd"})


class _StartId(ctypes.Union):
    _fields_ = [("start_id", u32), ("prog_id", u32), ("map_id", u32), ("btf_id", u32), ("link_id", u32)]


class GetIdAttr(AttrBase):
    """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID::

        struct { /* anonymous struct used by BPF_*_GET_*_ID */
            union { __u32 start_id; __u32 prog_id; __u32 map_id; __u32 btf_id; __u32 link_id; };
            __u32 next_id; __u32 open_flags; __s32 fd_by_id_token_fd;
        };
    """

    _anonymous_ = ("_u",)
    _fields_ = [
        ("_u", _StartId),
        ("next_id", u32),
        ("open_flags", u32),
        ("fd_by_id_token_fd", s32),
    ]
    _enums_ = {"open_flags": MapFlags}


class InfoAttr(AttrBase):
    """BPF_OBJ_GET_INFO_BY_FD::

        struct { /* anonymous struct used by BPF_OBJ_GET_INFO_BY_FD */
            __u32 bpf_fd; __u32 info_len; __aligned_u64 info;
        } info;
    """

    _fields_ = [("bpf_fd", u32), ("info_len", u32), ("info", u64)]
    _pointers_ = frozenset({"info"})
    _fds_ = frozenset({"bpf_fd"})


class _ProgCnt(ctypes.Union):
    _fields_ = [("prog_cnt", u32), ("count", u32)]


class QueryAttr(AttrBase):
    """BPF_PROG_QUERY::

        struct { /* anonymous struct used by BPF_PROG_QUERY command */
            union { __u32 target_fd; __u32 target_ifindex; };
            __u32 attach_type; __u32 query_flags; __u32 attach_flags;
            __aligned_u64 prog_ids;
            union { __u32 prog_cnt; __u32 count; };
            __aligned_u64 prog_attach_flags; __aligned_u64 link_ids;
            __aligned_u64 link_attach_flags; __u64 revision;
        } query;
    """

    _anonymous_ = ("_t", "_c")
    _fields_ = [
        ("_t", _TargetFdOrIfindex),
        ("attach_type", u32),
        ("query_flags", u32),
        ("attach_flags", u32),
        ("prog_ids", u64),
        ("_c", _ProgCnt),
        ("prog_attach_flags", u64),
        ("link_ids", u64),
        ("link_attach_flags", u64),
        ("revision", u64),
    ]
    _pointers_ = frozenset({"prog_ids", "prog_attach_flags", "link_ids", "link_attach_flags"})
    _enums_ = {"attach_type": AttachType}


class RawTracepointAttr(AttrBase):
    """BPF_RAW_TRACEPOINT_OPEN::

        struct { /* anonymous struct used by BPF_RAW_TRACEPOINT_OPEN command */
            __u64 name; __u32 prog_fd; __u32 :32; __aligned_u64 cookie;
        } raw_tracepoint;
    """

    _fields_ = [("name", u64), ("prog_fd", u32), ("_pad", u32), ("cookie", u64)]
    _pointers_ = frozenset({"name"})
    _fds_ = frozenset({"prog_fd"})


class BtfLoadAttr(AttrBase):
    """BPF_BTF_LOAD::

        struct { /* anonymous struct for BPF_BTF_LOAD */
            __aligned_u64 btf; __aligned_u64 btf_log_buf;
            __u32 btf_size; __u32 btf_log_size; __u32 btf_log_level;
            __u32 btf_log_true_size; __u32 btf_flags; __s32 btf_token_fd;
        };
    """

    _fields_ = [
        ("btf", u64),
        ("btf_log_buf", u64),
        ("btf_size", u32),
        ("btf_log_size", u32),
        ("btf_log_level", u32),
        ("btf_log_true_size", u32),
        ("btf_flags", u32),
        ("btf_token_fd", s32),
    ]
    _pointers_ = frozenset({"btf", "btf_log_buf"})


class TaskFdQueryAttr(AttrBase):
    """BPF_TASK_FD_QUERY::

        struct {
            __u32 pid; __u32 fd; __u32 flags; __u32 buf_len; __aligned_u64 buf;
            __u32 prog_id; __u32 fd_type; __u64 probe_offset; __u64 probe_addr;
        } task_fd_query;
    """

    _fields_ = [
        ("pid", u32),
        ("fd", u32),
        ("flags", u32),
        ("buf_len", u32),
        ("buf", u64),
        ("prog_id", u32),
        ("fd_type", u32),
        ("probe_offset", u64),
        ("probe_addr", u64),
    ]
    _pointers_ = frozenset({"buf"})
    _fds_ = frozenset({"fd"})


# -- BPF_LINK_CREATE ----------------------------------------------------------

class _ProgOrMapFd(ctypes.Union):
    _fields_ = [("prog_fd", u32), ("map_fd", u32)]


class _IterInfo(ctypes.Structure):
    _fields_ = [("iter_info", u64), ("iter_info_len", u32)]


class _PerfEventLink(ctypes.Structure):
    _fields_ = [("bpf_cookie", u64)]


class _KprobeMultiLink(ctypes.Structure):
    _fields_ = [("flags", u32), ("cnt", u32), ("syms", u64), ("addrs", u64), ("cookies", u64)]


class _TracingLink(ctypes.Structure):
    _fields_ = [("target_btf_id", u32), ("cookie", u64)]


class _NetfilterLink(ctypes.Structure):
    _fields_ = [("pf", u32), ("hooknum", u32), ("priority", s32), ("flags", u32)]


class _RelativeLink(ctypes.Structure):
    _anonymous_ = ("_r",)
    _fields_ = [("_r", _RelativeFdOrId), ("expected_revision", u64)]


class _UprobeMultiLink(ctypes.Structure):
    _fields_ = [
        ("path", u64),
        ("offsets", u64),
        ("ref_ctr_offsets", u64),
        ("cookies", u64),
        ("cnt", u32),
        ("flags", u32),
        ("pid", u32),
    ]


class _LinkCreateExtra(ctypes.Union):
    _anonymous_ = ("_iter",)
    _fields_ = [
        ("target_btf_id", u32),
        ("_iter", _IterInfo),
        ("perf_event", _PerfEventLink),
        ("kprobe_multi", _KprobeMultiLink),
        ("tracing", _TracingLink),
        ("netfilter", _NetfilterLink),
        ("tcx", _RelativeLink),
        ("uprobe_multi", _UprobeMultiLink),
        ("netkit", _RelativeLink),
        ("cgroup", _RelativeLink),
    ]


class LinkCreateAttr(AttrBase):
    """BPF_LINK_CREATE::

        struct { /* struct used by BPF_LINK_CREATE command */
            union { __u32 prog_fd; __u32 map_fd; };
            union { __u32 target_fd; __u32 target_ifindex; };
            __u32 attach_type; __u32 flags;
            union {
                __u32 target_btf_id;
                struct { __aligned_u64 iter_info; __u32 iter_info_len; };
                struct { __u64 bpf_cookie; } perf_event;
                struct { __u32 flags; __u32 cnt; __aligned_u64 syms;
                         __aligned_u64 addrs; __aligned_u64 cookies; } kprobe_multi;
                struct { __u32 target_btf_id; __u64 cookie; } tracing;
                struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
                struct { union { __u32 relative_fd; __u32 relative_id; };
                         __u64 expected_revision; } tcx;
                struct { __aligned_u64 path; __aligned_u64 offsets;
                         __aligned_u64 ref_ctr_offsets; __aligned_u64 cookies;
                         __u32 cnt; __u32 flags; __u32 pid; } uprobe_multi;
                struct { ... } netkit;   /* same as tcx */
                struct { ... } cgroup;   /* same as tcx */
            };
        } link_create;

    The nested members are reached by their uapi names:
    ``attr.perf_event.bpf_cookie``, ``attr.tracing.target_btf_id``,
    ``attr.tcx.relative_fd``, ``attr.iter_info``...
    """

    _anonymous_ = ("_p", "_t", "_x")
    _fields_ = [
        ("_p", _ProgOrMapFd),
        ("_t", _TargetFdOrIfindex),
        ("attach_type", u32),
        ("flags", u32),
        ("_x", _LinkCreateExtra),
    ]
    _pointers_ = frozenset({"iter_info"})
    _enums_ = {"attach_type": AttachType}
    _fds_ = frozenset({"prog_fd", "target_fd"})
    _opaque_ = frozenset({"_x"})  # which member is meant depends on attach_type


class _NewProgOrMap(ctypes.Union):
    _fields_ = [("new_prog_fd", u32), ("new_map_fd", u32)]


class _OldProgOrMap(ctypes.Union):
    _fields_ = [("old_prog_fd", u32), ("old_map_fd", u32)]


class LinkUpdateAttr(AttrBase):
    """BPF_LINK_UPDATE::

        struct { /* struct used by BPF_LINK_UPDATE command */
            __u32 link_fd;
            union { __u32 new_prog_fd; __u32 new_map_fd; };
            __u32 flags;
            union { __u32 old_prog_fd; __u32 old_map_fd; };
        } link_update;
    """

    _anonymous_ = ("_n", "_o")
    _fields_ = [("link_fd", u32), ("_n", _NewProgOrMap), ("flags", u32), ("_o", _OldProgOrMap)]
    _fds_ = frozenset({"link_fd", "new_prog_fd"})


class LinkDetachAttr(AttrBase):
    """BPF_LINK_DETACH: ``struct { __u32 link_fd; } link_detach;``"""

    _fields_ = [("link_fd", u32)]
    _fds_ = frozenset({"link_fd"})


class EnableStatsAttr(AttrBase):
    """BPF_ENABLE_STATS: ``struct { __u32 type; } enable_stats;``"""

    _fields_ = [("type", u32)]
    _enums_ = {"type": StatsType}


class IterCreateAttr(AttrBase):
    """BPF_ITER_CREATE: ``struct { __u32 link_fd; __u32 flags; } iter_create;``"""

    _fields_ = [("link_fd", u32), ("flags", u32)]
    _fds_ = frozenset({"link_fd"})


class ProgBindMapAttr(AttrBase):
    """BPF_PROG_BIND_MAP: ``struct { __u32 prog_fd; __u32 map_fd; __u32 flags; } prog_bind_map;``"""

    _fields_ = [("prog_fd", u32), ("map_fd", u32), ("flags", u32)]
    _fds_ = frozenset({"prog_fd", "map_fd"})


#: Each variant with the uapi path of its member of ``union bpf_attr`` ("" for
#: anonymous members whose fields sit directly in the union).
ATTR_VARIANTS: Tuple[Tuple[Type[AttrBase], str], ...] = (
    (MapCreateAttr, ""),
    (MapElemAttr, ""),
    (MapBatchAttr, "batch."),
    (ProgLoadAttr, ""),
    (ObjPinAttr, ""),
    (ProgAttachAttr, ""),
    (TestRunAttr, "test."),
    (GetIdAttr, ""),
    (InfoAttr, "info."),
    (QueryAttr, "query."),
    (RawTracepointAttr, "raw_tracepoint."),
    (BtfLoadAttr, ""),
    (TaskFdQueryAttr, "task_fd_query."),
    (LinkCreateAttr, "link_create."),
    (LinkUpdateAttr, "link_update."),
    (LinkDetachAttr, "link_detach."),
    (EnableStatsAttr, "enable_stats."),
    (IterCreateAttr, "iter_create."),
    (ProgBindMapAttr, "prog_bind_map."),
)
