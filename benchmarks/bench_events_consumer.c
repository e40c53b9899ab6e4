/*
 * C consumer for benchmarks/bench_events.py: libbpf's ring_buffer__consume /
 * perf_buffer__consume over a map loaded by purebpf, found by map id.
 *
 *   bench_events_consumer ring <map_id> <records> [live]
 *   bench_events_consumer perf <map_id> <pages> <records> [live]
 *
 * Prints "ready" once its reader is set up (for perf: its own events are in
 * the map) and waits for a line on stdin.  Drain mode: the producer has
 * filled the buffer; it consumes until <records> samples (+ lost) have been
 * seen.  Live mode: the producer starts after the line; it polls (100 ms)
 * until <records> were seen or nothing came for 300 ms, and the
 * time is taken at the last record.  A poll that reports nothing is followed
 * by a consume: the kernel wakes a ring buffer's reader only when a record
 * is committed at consumer_pos, so records committed while the reader was
 * still consuming can sit there with no wakeup to come.  Prints "<samples> <lost> <nanoseconds>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static unsigned long long samples, lost;

static int ring_cb(void *ctx, void *data, size_t size)
{
	(void)ctx; (void)data; (void)size;
	samples++;
	return 0;
}

static void perf_cb(void *ctx, int cpu, void *data, __u32 size)
{
	(void)ctx; (void)cpu; (void)data; (void)size;
	samples++;
}

static void perf_lost(void *ctx, int cpu, __u64 cnt)
{
	(void)ctx; (void)cpu;
	lost += cnt;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void wait_go(void)
{
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		exit(2);
}

static int live;

static unsigned long long live_start;

/* one consume (drain mode) or one 100 ms poll (live mode); false when done */
static int step(int n, unsigned long long want, unsigned long long *end)
{
	unsigned long long now = now_ns();

	if (n < 0)
		exit(1);
	if (!live) {
		*end = now;
		return samples + lost < want;
	}
	if (n > 0)
		*end = now;
	else if (now - (*end ? *end : live_start) > 300000000ULL)
		return 0;	/* nothing for 300 ms: the producer is done */
	return samples + lost < want;
}

int main(int argc, char **argv)
{
	unsigned long long want, start, end = 0;
	int fd, rounds = 0;

	if (argc < 4)
		return 2;
	fd = bpf_map_get_fd_by_id(atoi(argv[2]));
	if (fd < 0) {
		perror("bpf_map_get_fd_by_id");
		return 1;
	}
	if (!strcmp(argv[1], "ring")) {
		struct ring_buffer *rb = ring_buffer__new(fd, ring_cb, NULL, NULL);

		if (!rb)
			return 1;
		want = strtoull(argv[3], NULL, 0);
		live = argc > 4 && !strcmp(argv[4], "live");
		wait_go();
		start = live_start = now_ns();
		while (rounds++ < 10000000 &&
		       step(live ? ring_buffer__poll(rb, 100) ?: ring_buffer__consume(rb)
				 : ring_buffer__consume(rb), want, &end))
			;
		ring_buffer__free(rb);
	} else if (!strcmp(argv[1], "perf") && argc >= 5) {
		struct perf_buffer *pb = perf_buffer__new(fd, atoi(argv[3]), perf_cb, perf_lost,
							  NULL, NULL);

		if (!pb)
			return 1;
		want = strtoull(argv[4], NULL, 0);
		live = argc > 5 && !strcmp(argv[5], "live");
		wait_go();
		start = live_start = now_ns();
		while (rounds++ < 10000000 &&
		       step(live ? perf_buffer__poll(pb, 100) ?: perf_buffer__consume(pb)
				 : perf_buffer__consume(pb), want, &end))
			;
		perf_buffer__free(pb);
	} else {
		return 2;
	}
	printf("%llu %llu %llu\n", samples, lost, end - start);
	close(fd);
	return 0;
}
