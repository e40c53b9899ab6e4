// SPDX-License-Identifier: GPL-2.0
/*
 * runqslower: report tasks that waited longer than a threshold on a CPU run
 * queue, i.e. between being woken up and actually running.
 *
 * Three BTF-enabled tracepoints (tp_btf) cooperate:
 *   - sched_wakeup / sched_wakeup_new: a task became runnable; remember the
 *     time in the `start` hash map (pid -> ktime ns);
 *   - sched_switch: a CPU switches from `prev` to `next`; if `next` has a
 *     wakeup timestamp, the run-queue latency is now - timestamp.  A preempted
 *     `prev` that stays runnable (state TASK_RUNNING) starts waiting again.
 * Events above `min_us` go to user space through a perf event array.
 *
 * The filters and the threshold are `const volatile` globals: they live in
 * .rodata, which user space sets before loading, so the verifier sees them
 * as constants and prunes the unused branches.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "runqslower.h"

#define TASK_RUNNING 0

const volatile __u64 min_us = 0;
const volatile pid_t targ_pid = 0;  /* thread id (kernel "pid") */
const volatile pid_t targ_tgid = 0; /* process id (kernel "tgid") */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

/* Remember when task (tgid, pid) became runnable, if it passes the filters. */
static __always_inline int trace_enqueue(u32 tgid, u32 pid)
{
	u64 ts;

	if (!pid)
		return 0;
	if (targ_tgid && targ_tgid != tgid)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;

	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_sched_wakeup, struct task_struct *p)
{
	return trace_enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_sched_wakeup_new, struct task_struct *p)
{
	return trace_enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct event event = {};
	u64 *tsp, delta_us;
	u32 pid;

	/* A preempted task is still runnable: its wait starts now. */
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		trace_enqueue(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid));

	pid = BPF_CORE_READ(next, pid);

	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0; /* missed the wakeup, or filtered out */

	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	if (min_us && delta_us <= min_us)
		goto cleanup;

	event.pid = pid;
	event.prev_pid = BPF_CORE_READ(prev, pid);
	event.delta_us = delta_us;
	BPF_CORE_READ_STR_INTO(&event.task, next, comm);
	BPF_CORE_READ_STR_INTO(&event.prev_task, prev, comm);

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event));

cleanup:
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
