// Programs for tests/test_link_multi.py: uprobe.multi / uretprobe.multi /
// uprobe.session on tests/helpers/multi_target.c (MULTI_TARGET is its path),
// kprobe.multi, netfilter.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define NF_ACCEPT 1

extern bool bpf_session_is_return(void) __ksym __weak;

__u64 multi_hits, multi_ret_hits, session_entries, session_returns, kmulti_hits;
__u64 by_cookie[8];
__u64 nf_hits;
const volatile __u32 nf_match_len = 0;

SEC("uprobe.multi/" MULTI_TARGET ":multi_*")
int on_multi(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);

	__sync_fetch_and_add(&multi_hits, 1);
	if (cookie < 8)
		__sync_fetch_and_add(&by_cookie[cookie], 1);
	return 0;
}

SEC("uretprobe.multi/" MULTI_TARGET ":multi_?eta")
int on_multi_ret(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&multi_ret_hits, 1);
	return 0;
}

SEC("uprobe.session/" MULTI_TARGET ":multi_gamma")
int on_session(struct pt_regs *ctx)
{
	if (bpf_session_is_return())
		__sync_fetch_and_add(&session_returns, 1);
	else
		__sync_fetch_and_add(&session_entries, 1);
	return 0;
}

SEC("kprobe.multi/do_unlinkat")
int on_kmulti(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&kmulti_hits, 1);
	return 0;
}

SEC("netfilter")
int on_nf(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;

	if (skb && skb->len == nf_match_len)
		__sync_fetch_and_add(&nf_hits, 1);
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
