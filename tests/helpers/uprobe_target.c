/* A tiny program for uprobe tests: calls target_func() N times (argv[1]),
 * then waits for a line on stdin before exiting, so a test can attach to a
 * running process by pid. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int target_func(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 2 + 1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	int wait = argc > 2;
	volatile int sink = 0;
	char line[16];

	if (wait) {
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		n = atoi(line);
	}
	for (int i = 0; i < n; i++)
		sink += target_func(i);
	printf("done %d\n", sink);
	return 0;
}
