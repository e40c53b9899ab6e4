// netkit programs for tests/test_link_netkit.py: count the test's UDP
// datagrams (IP length MATCH_LEN) leaving through each side of the pair.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NETKIT_PASS 0

__u64 primary_hits, peer_hits;
const volatile __u32 match_len = 0;

SEC("netkit/primary")
int count_primary(struct __sk_buff *skb)
{
	if (skb->len == match_len)
		__sync_fetch_and_add(&primary_hits, 1);
	return NETKIT_PASS;
}

SEC("netkit/peer")
int count_peer(struct __sk_buff *skb)
{
	if (skb->len == match_len)
		__sync_fetch_and_add(&peer_hits, 1);
	return NETKIT_PASS;
}

char LICENSE[] SEC("license") = "GPL";
