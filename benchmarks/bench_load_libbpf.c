/* Load every program of a BPF object with libbpf, the way a small C loader
 * does: bpf_object__open_file + bpf_object__load.  Prints the nanoseconds
 * from the open call to "all loaded" on stdout, then exits (closing the
 * object).  Built by benchmarks/bench_load.py with: gcc -O2 ... -lbpf
 *
 *     bench_load_libbpf OBJECT [PROGRAM-TO-SKIP ...]
 */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level; (void)fmt; (void)args;
	return 0;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	long long start, end;
	int err, i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [SKIP-PROGRAM ...]\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	start = now_ns();
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "open failed\n");
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		for (i = 2; i < argc; i++)
			if (strcmp(bpf_program__name(prog), argv[i]) == 0)
				bpf_program__set_autoload(prog, false);
	}
	err = bpf_object__load(obj);
	end = now_ns();
	if (err) {
		fprintf(stderr, "load failed: %d\n", err);
		bpf_object__close(obj);
		return 1;
	}
	printf("%lld\n", end - start);
	bpf_object__close(obj);
	return 0;
}
