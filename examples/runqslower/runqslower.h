/* SPDX-License-Identifier: GPL-2.0 */
/* The record runqslower.bpf.c sends through the `events` perf event array.
 * runqslower.py decodes it with struct format "=16s16sIIQ" (40 bytes). */
#ifndef RUNQSLOWER_H
#define RUNQSLOWER_H

#define TASK_COMM_LEN 16

struct event {
	char task[TASK_COMM_LEN];      /* comm of the task that waited */
	char prev_task[TASK_COMM_LEN]; /* comm of the task it replaced */
	__u32 pid;                     /* its thread id */
	__u32 prev_pid;                /* thread id of the replaced task */
	__u64 delta_us;                /* run-queue latency in microseconds */
};

#endif
