/* fentry and lsm programs: refused at load on a kernel in lockdown. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u64 fentry_hits = 0;

SEC("fentry/do_nanosleep")
int on_nanosleep(void *ctx)
{
	__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}
