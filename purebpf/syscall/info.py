"""Object information structs filled by BPF_OBJ_GET_INFO_BY_FD.

``bpf(BPF_OBJ_GET_INFO_BY_FD, {bpf_fd, info_len, info})`` copies
``min(info_len, sizeof(kernel struct))`` bytes of a ``struct bpf_*_info``
into the user buffer and writes back the length it knows.  Array fields
(``xlated_prog_insns``, ``map_ids``...) are user pointers with a count: the
kernel fills at most that many entries and always reports the real count, so
callers ask twice (once for the counts, once with buffers).  See
:func:`purebpf.syscall.commands.prog_info` and friends.
"""

from __future__ import annotations

import ctypes

__all__ = ["BpfProgInfo", "BpfMapInfo", "BpfBtfInfo", "BpfLinkInfo"]

u32 = ctypes.c_uint32
s32 = ctypes.c_int32
u64 = ctypes.c_uint64


class BpfProgInfo(ctypes.Structure):
    """``struct bpf_prog_info`` (uapi, Linux 6.18)::

        __u32 type; __u32 id; __u8 tag[BPF_TAG_SIZE];
        __u32 jited_prog_len; __u32 xlated_prog_len;
        __aligned_u64 jited_prog_insns; __aligned_u64 xlated_prog_insns;
        __u64 load_time; __u32 created_by_uid; __u32 nr_map_ids;
        __aligned_u64 map_ids; char name[BPF_OBJ_NAME_LEN]; __u32 ifindex;
        __u32 gpl_compatible:1; __u32 :31;
        __u64 netns_dev; __u64 netns_ino;
        __u32 nr_jited_ksyms; __u32 nr_jited_func_lens;
        __aligned_u64 jited_ksyms; __aligned_u64 jited_func_lens;
        __u32 btf_id; __u32 func_info_rec_size; __aligned_u64 func_info;
        __u32 nr_func_info; __u32 nr_line_info; __aligned_u64 line_info;
        __aligned_u64 jited_line_info; __u32 nr_jited_line_info;
        __u32 line_info_rec_size; __u32 jited_line_info_rec_size;
        __u32 nr_prog_tags; __aligned_u64 prog_tags;
        __u64 run_time_ns; __u64 run_cnt; __u64 recursion_misses;
        __u32 verified_insns; __u32 attach_btf_obj_id; __u32 attach_btf_id;
    """

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", u32),
        ("xlated_prog_len", u32),
        ("jited_prog_insns", u64),
        ("xlated_prog_insns", u64),
        ("load_time", u64),
        ("created_by_uid", u32),
        ("nr_map_ids", u32),
        ("map_ids", u64),
        ("name", ctypes.c_char * 16),
        ("ifindex", u32),
        ("gpl_compatible", u32, 1),
        ("_pad", u32, 31),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("nr_jited_ksyms", u32),
        ("nr_jited_func_lens", u32),
        ("jited_ksyms", u64),
        ("jited_func_lens", u64),
        ("btf_id", u32),
        ("func_info_rec_size", u32),
        ("func_info", u64),
        ("nr_func_info", u32),
        ("nr_line_info", u32),
        ("line_info", u64),
        ("jited_line_info", u64),
        ("nr_jited_line_info", u32),
        ("line_info_rec_size", u32),
        ("jited_line_info_rec_size", u32),
        ("nr_prog_tags", u32),
        ("prog_tags", u64),
        ("run_time_ns", u64),
        ("run_cnt", u64),
        ("recursion_misses", u64),
        ("verified_insns", u32),
        ("attach_btf_obj_id", u32),
        ("attach_btf_id", u32),
    ]


class BpfMapInfo(ctypes.Structure):
    """``struct bpf_map_info`` (uapi, Linux 6.18)::

        __u32 type; __u32 id; __u32 key_size; __u32 value_size;
        __u32 max_entries; __u32 map_flags; char name[BPF_OBJ_NAME_LEN];
        __u32 ifindex; __u32 btf_vmlinux_value_type_id;
        __u64 netns_dev; __u64 netns_ino;
        __u32 btf_id; __u32 btf_key_type_id; __u32 btf_value_type_id;
        __u32 btf_vmlinux_id; __u64 map_extra;
        __aligned_u64 hash; __u32 hash_size;
    """

    _fields_ = [
        ("type", u32),
        ("id", u32),
        ("key_size", u32),
        ("value_size", u32),
        ("max_entries", u32),
        ("map_flags", u32),
        ("name", ctypes.c_char * 16),
        ("ifindex", u32),
        ("btf_vmlinux_value_type_id", u32),
        ("netns_dev", u64),
        ("netns_ino", u64),
        ("btf_id", u32),
        ("btf_key_type_id", u32),
        ("btf_value_type_id", u32),
        ("btf_vmlinux_id", u32),
        ("map_extra", u64),
        ("hash", u64),
        ("hash_size", u32),
    ]


class BpfBtfInfo(ctypes.Structure):
    """``struct bpf_btf_info``::

        __aligned_u64 btf; __u32 btf_size; __u32 id;
        __aligned_u64 name; __u32 name_len; __u32 kernel_btf;
    """

    _fields_ = [
        ("btf", u64),
        ("btf_size", u32),
        ("id", u32),
        ("name", u64),
        ("name_len", u32),
        ("kernel_btf", u32),
    ]


# -- struct bpf_link_info and its union ------------------------------------

class _LinkRawTp(ctypes.Structure):
    _fields_ = [("tp_name", u64), ("tp_name_len", u32), ("cookie", u64)]


class _LinkTracing(ctypes.Structure):
    _fields_ = [("attach_type", u32), ("target_obj_id", u32), ("target_btf_id", u32), ("cookie", u64)]


class _LinkCgroup(ctypes.Structure):
    _fields_ = [("cgroup_id", u64), ("attach_type", u32)]


class _LinkIterMap(ctypes.Structure):
    _fields_ = [("map_id", u32)]


class _LinkIterMapU(ctypes.Union):
    _fields_ = [("map", _LinkIterMap)]


class _LinkIterCgroup(ctypes.Structure):
    _fields_ = [("cgroup_id", u64), ("order", u32)]


class _LinkIterTask(ctypes.Structure):
    _fields_ = [("tid", u32), ("pid", u32)]


class _LinkIterTargetU(ctypes.Union):
    _fields_ = [("cgroup", _LinkIterCgroup), ("task", _LinkIterTask)]


class _LinkIter(ctypes.Structure):
    _anonymous_ = ("_m", "_t")
    _fields_ = [("target_name", u64), ("target_name_len", u32), ("_m", _LinkIterMapU),
                ("_t", _LinkIterTargetU)]


class _LinkNetns(ctypes.Structure):
    _fields_ = [("netns_ino", u32), ("attach_type", u32)]


class _LinkXdp(ctypes.Structure):
    _fields_ = [("ifindex", u32)]


class _LinkStructOps(ctypes.Structure):
    _fields_ = [("map_id", u32)]


class _LinkNetfilter(ctypes.Structure):
    _fields_ = [("pf", u32), ("hooknum", u32), ("priority", s32), ("flags", u32)]


class _LinkKprobeMulti(ctypes.Structure):
    _fields_ = [("addrs", u64), ("count", u32), ("flags", u32), ("missed", u64), ("cookies", u64)]


class _LinkUprobeMulti(ctypes.Structure):
    _fields_ = [("path", u64), ("offsets", u64), ("ref_ctr_offsets", u64), ("cookies", u64),
                ("path_size", u32), ("count", u32), ("flags", u32), ("pid", u32)]


class _PerfUprobe(ctypes.Structure):
    _fields_ = [("file_name", u64), ("name_len", u32), ("offset", u32), ("cookie", u64),
                ("ref_ctr_offset", u64)]


class _PerfKprobe(ctypes.Structure):
    _fields_ = [("func_name", u64), ("name_len", u32), ("offset", u32), ("addr", u64),
                ("missed", u64), ("cookie", u64)]


class _PerfTracepoint(ctypes.Structure):
    _fields_ = [("tp_name", u64), ("name_len", u32), ("cookie", u64)]


class _PerfEvent(ctypes.Structure):
    _fields_ = [("config", u64), ("type", u32), ("cookie", u64)]


class _LinkPerfEventU(ctypes.Union):
    _fields_ = [("uprobe", _PerfUprobe), ("kprobe", _PerfKprobe), ("tracepoint", _PerfTracepoint),
                ("event", _PerfEvent)]


class _LinkPerfEvent(ctypes.Structure):
    _anonymous_ = ("_u",)
    _fields_ = [("type", u32), ("_u", _LinkPerfEventU)]


class _LinkIfindexAttach(ctypes.Structure):
    _fields_ = [("ifindex", u32), ("attach_type", u32)]


class _LinkSockmap(ctypes.Structure):
    _fields_ = [("map_id", u32), ("attach_type", u32)]


class _LinkInfoU(ctypes.Union):
    _fields_ = [
        ("raw_tracepoint", _LinkRawTp),
        ("tracing", _LinkTracing),
        ("cgroup", _LinkCgroup),
        ("iter", _LinkIter),
        ("netns", _LinkNetns),
        ("xdp", _LinkXdp),
        ("struct_ops", _LinkStructOps),
        ("netfilter", _LinkNetfilter),
        ("kprobe_multi", _LinkKprobeMulti),
        ("uprobe_multi", _LinkUprobeMulti),
        ("perf_event", _LinkPerfEvent),
        ("tcx", _LinkIfindexAttach),
        ("netkit", _LinkIfindexAttach),
        ("sockmap", _LinkSockmap),
    ]


class BpfLinkInfo(ctypes.Structure):
    """``struct bpf_link_info``::

        __u32 type; __u32 id; __u32 prog_id;
        union {
            struct { __aligned_u64 tp_name; __u32 tp_name_len; __u64 cookie; } raw_tracepoint;
            struct { __u32 attach_type; __u32 target_obj_id; __u32 target_btf_id;
                     __u64 cookie; } tracing;
            struct { __u64 cgroup_id; __u32 attach_type; } cgroup;
            struct { __aligned_u64 target_name; __u32 target_name_len;
                     union { struct { __u32 map_id; } map; };
                     union { struct { __u64 cgroup_id; __u32 order; } cgroup;
                             struct { __u32 tid; __u32 pid; } task; }; } iter;
            struct { __u32 netns_ino; __u32 attach_type; } netns;
            struct { __u32 ifindex; } xdp;
            struct { __u32 map_id; } struct_ops;
            struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; } netfilter;
            struct { __aligned_u64 addrs; __u32 count; __u32 flags; __u64 missed;
                     __aligned_u64 cookies; } kprobe_multi;
            struct { __aligned_u64 path; __aligned_u64 offsets; __aligned_u64 ref_ctr_offsets;
                     __aligned_u64 cookies; __u32 path_size; __u32 count; __u32 flags;
                     __u32 pid; } uprobe_multi;
            struct { __u32 type; __u32 :32; union { uprobe; kprobe; tracepoint; event; }; } perf_event;
            struct { __u32 ifindex; __u32 attach_type; } tcx;
            struct { __u32 ifindex; __u32 attach_type; } netkit;
            struct { __u32 map_id; __u32 attach_type; } sockmap;
        };
    """

    _anonymous_ = ("_u",)
    _fields_ = [("type", u32), ("id", u32), ("prog_id", u32), ("_u", _LinkInfoU)]
