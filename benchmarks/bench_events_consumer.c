/*
 * C consumer for benchmarks/bench_events.py: libbpf's ring_buffer__consume /
 * perf_buffer__consume over a map loaded by purebpf, found by map id.
 *
 *   bench_events_consumer ring <map_id> <records>
 *   bench_events_consumer perf <map_id> <pages> <records>
 *
 * Prints "ready" once its reader is set up (for perf: its own events are in
 * the map), waits for a line on stdin (the producer has filled the buffer),
 * then consumes until <records> samples (+ lost) have been seen and prints
 * "<samples> <lost> <nanoseconds>".
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

int main(int argc, char **argv)
{
	unsigned long long want, start, end;
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
		wait_go();
		start = now_ns();
		while (samples < want && rounds++ < 1000000)
			if (ring_buffer__consume(rb) < 0)
				return 1;
		end = now_ns();
		ring_buffer__free(rb);
	} else if (!strcmp(argv[1], "perf") && argc >= 5) {
		struct perf_buffer *pb = perf_buffer__new(fd, atoi(argv[3]), perf_cb, perf_lost,
							  NULL, NULL);

		if (!pb)
			return 1;
		want = strtoull(argv[4], NULL, 0);
		wait_go();
		start = now_ns();
		while (samples + lost < want && rounds++ < 1000000)
			if (perf_buffer__consume(pb) < 0)
				return 1;
		end = now_ns();
		perf_buffer__free(pb);
	} else {
		return 2;
	}
	printf("%llu %llu %llu\n", samples, lost, end - start);
	close(fd);
	return 0;
}
