/* BPF programs for the attach tests: each counts its hits into a global.
 * Built by tests/test_link.py with clang-19 (-DUPROBE_TARGET="path"). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;

__u64 tp_btf_hits = 0;
__u64 raw_tp_hits = 0;
__u64 tp_hits = 0;
__u64 uprobe_hits = 0;
__u64 uretprobe_hits = 0;
__u64 perf_hits = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

SEC("tp_btf/sched_switch")
int on_switch(void *ctx)
{
	__sync_fetch_and_add(&tp_btf_hits, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_sys_enter(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&raw_tp_hits, 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&tp_hits, 1);
	return 0;
}

SEC("uprobe/" UPROBE_TARGET ":target_func")
int on_target_func(void *ctx)
{
	__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

SEC("uretprobe/" UPROBE_TARGET ":target_func")
int on_target_ret(void *ctx)
{
	__sync_fetch_and_add(&uretprobe_hits, 1);
	return 0;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	__sync_fetch_and_add(&perf_hits, 1);
	return 0;
}

SEC("kprobe")
int on_kprobe(void *ctx)
{
	return 0;
}

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int pass2(struct xdp_md *ctx)
{
	return XDP_PASS;
}

__u64 tcx_hits = 0;

SEC("tcx/ingress")
int on_ingress(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&tcx_hits, 1);
	return 0; /* TCX_NEXT */
}

__u64 sock_hits = 0;

SEC("cgroup/sock_create")
int on_sock_create(struct bpf_sock *sk)
{
	__sync_fetch_and_add(&sock_hits, 1);
	return 1; /* allow */
}
