/* Target of the multi-probe tests: multi_alpha() runs N times, multi_beta()
 * 2N times, multi_gamma() 3N times, other_func() once (N = argv[1]).  With a
 * second argument it prints "ready" and waits for a line on stdin first, so
 * a test can attach to it by pid. */
#include <stdio.h>
#include <stdlib.h>

#define PROBED(name, k)                                        \
	__attribute__((noinline)) int name(int x)              \
	{                                                      \
		__asm__ volatile("" ::: "memory");             \
		return x * (k) + 1;                            \
	}

PROBED(multi_alpha, 2)
PROBED(multi_beta, 3)
PROBED(multi_gamma, 5)
PROBED(other_func, 7)

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	volatile int sink = 0;
	char line[16];

	if (argc > 2) {
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	for (int i = 0; i < n; i++)
		sink += multi_alpha(i);
	for (int i = 0; i < 2 * n; i++)
		sink += multi_beta(i);
	for (int i = 0; i < 3 * n; i++)
		sink += multi_gamma(i);
	sink += other_func(n);
	printf("done %d\n", sink);
	return 0;
}
