"""The event producer shared by the reader tests and ``benchmarks/bench_events.py``.

Not a test module of its own: it holds the BPF C source of three XDP
programs that emit numbered 32-byte records (``seq``, ``seq * MIX``,
``~seq``, ``seq ^ MIX``) as fast as BPF_PROG_TEST_RUN ``repeat`` runs them,
and counts every output the kernel refused (``rb_fail`` / ``pb_fail``;
``emit_rb_discard`` discards odd records and counts them in ``rb_disc``): the
ring buffer has no lost counter, so the program's own count is the oracle
for "delivered + lost == N".  ``var_size`` (rodata) makes ring records 8..32
bytes long (``8 + (seq % 4) * 8``) so they end at varying places of the
data area and cross its end.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

__all__ = ["PRODUCER_C", "MIX", "build_producer", "record", "record_size"]

MIX = 0x9E3779B97F4A7C15

PRODUCER_C = r"""
// Event producers for the ring/perf buffer reader tests and benchmark.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

__u64 rb_seq, rb_fail, rb_disc, pb_seq, pb_fail;
const volatile __u32 var_size = 0;

#define MIX 0x9E3779B97F4A7C15ULL

static __always_inline __u32 fill(__u64 *rec, __u64 seq)
{
	rec[0] = seq;
	rec[1] = seq * MIX;
	rec[2] = ~seq;
	rec[3] = seq ^ MIX;
	return var_size ? 8 + (seq % 4) * 8 : 32;
}

SEC("xdp")
int emit_rb(struct xdp_md *ctx)
{
	__u64 rec[4];
	__u64 seq = rb_seq++;
	__u32 size = fill(rec, seq);

	if (size > 32)
		size = 32;
	if (bpf_ringbuf_output(&rb, rec, size, 0))
		rb_fail++;
	return XDP_PASS;
}

SEC("xdp")
int emit_rb_discard(struct xdp_md *ctx)
{
	__u64 seq = rb_seq++;
	__u64 *rec = bpf_ringbuf_reserve(&rb, 32, 0);

	if (!rec) {
		rb_fail++;
		return XDP_PASS;
	}
	fill(rec, seq);
	if (seq & 1) {
		bpf_ringbuf_discard(rec, 0);
		rb_disc++;
	}
	else
		bpf_ringbuf_submit(rec, 0);
	return XDP_PASS;
}

SEC("xdp")
int emit_pb(struct xdp_md *ctx)
{
	__u64 rec[4];
	__u64 seq = pb_seq++;

	fill(rec, seq);
	if (bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, rec, sizeof(rec)))
		pb_fail++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def record_size(seq: int, var_size: bool) -> int:
    """Bytes the program sends for record ``seq``."""
    return 8 + (seq % 4) * 8 if var_size else 32


def record(seq: int, var_size: bool = False) -> bytes:
    """The bytes the program sends for record ``seq`` (computed independently of it)."""
    words = (seq, (seq * MIX) & 0xFFFFFFFFFFFFFFFF, ~seq & 0xFFFFFFFFFFFFFFFF, seq ^ MIX)
    return struct.pack("=4Q", *words)[:record_size(seq, var_size)]


def build_producer(directory: Path) -> Path:
    """Compile :data:`PRODUCER_C` with clang-19 into ``directory``; the object path."""
    clang = shutil.which("clang-19")
    if clang is None:
        raise RuntimeError("clang-19 is needed to build the event producer")
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / "events_producer.bpf.c"
    obj = directory / "events_producer.bpf.o"
    src.write_text(PRODUCER_C)
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-c", str(src), "-o", str(obj)],
                   check=True)
    return obj
