/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * UDP has no state transitions to hook: a UDP flow is created by its first
 * packet. The agent closes it when it goes idle or its socket is gone.
 */
#ifndef PDTT_LIB_UDP_H
#define PDTT_LIB_UDP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pdtt.h"
#include "consts.h"
#include "maps.h"
#include "ring.h"
#include "ipv4.h"

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline struct pdtt_flow *udp_flow_create(const struct pdtt_flow_key *k, __u32 uid,
							  __u8 direction)
{
	struct pdtt_flow f = {};
	long err;

	f.uid = uid;
	f.direction = direction;
	f.family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	f.open_ns = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&flows, k, &f, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		stat_inc(PDTT_STAT_FLOW_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&flows, k);	/* EEXIST: another CPU won */
}

static __always_inline struct pdtt_port_key udp_owner_key(const struct pdtt_flow_key *k)
{
	struct pdtt_port_key ok = { .netns = k->netns, .port = k->lport };

	return ok;
}

/* Only a datagram some local socket will receive opens a flow: a flood to
 * closed ports must not fill the table. */
static __always_inline struct pdtt_flow *udp_rx_flow(struct xdp_md *ctx,
						      const struct pdtt_flow_key *k)
{
	struct bpf_sock_tuple t = {};
	struct pdtt_port_key ok = udp_owner_key(k);
	struct bpf_sock *sk;
	__u32 *uid;

	if (is_v4(k->laddr)) {
		__builtin_memcpy(&t.ipv4.saddr, k->raddr + 12, 4);
		__builtin_memcpy(&t.ipv4.daddr, k->laddr + 12, 4);
		t.ipv4.sport = bpf_htons(k->rport);
		t.ipv4.dport = bpf_htons(k->lport);
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(t.ipv6.saddr, k->raddr, 16);
		__builtin_memcpy(t.ipv6.daddr, k->laddr, 16);
		t.ipv6.sport = bpf_htons(k->rport);
		t.ipv6.dport = bpf_htons(k->lport);
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return NULL;
	bpf_sk_release(sk);
	uid = bpf_map_lookup_elem(&udp_owners, &ok);
	return udp_flow_create(k, uid ? *uid : PDTT_UID_UNRESOLVED, PDTT_DIR_INBOUND);
}

/* A local sender: its socket's owner is on the skb, and is learnt for the
 * replies that come back through XDP. */
static __always_inline struct pdtt_flow *udp_tx_flow(struct __sk_buff *skb,
						      const struct pdtt_flow_key *k)
{
	struct pdtt_port_key ok = udp_owner_key(k);
	struct bpf_sock *bsk = skb->sk;
	struct sock *sk;
	__u32 uid;

	/* A socket of another namespace (macvlan, ipvlan) sends through the
	 * monitored device too: its traffic is not this namespace's. */
	if (!bsk)
		return NULL;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	if (target_netns && sk->__sk_common.skc_net.net->ns.inum != target_netns)
		return NULL;
	uid = bpf_get_socket_uid(skb);
	bpf_map_update_elem(&udp_owners, &ok, &uid, BPF_ANY);
	return udp_flow_create(k, uid, PDTT_DIR_OUTBOUND);
}

#endif /* PDTT_LIB_UDP_H */
