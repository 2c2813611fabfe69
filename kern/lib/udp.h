/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * UDP has no state transitions to hook: a UDP flow is created by its first
 * packet, owned by its local port's entry in udp_owners. The agent closes
 * it when it goes idle or its socket is gone.
 */
#ifndef PDTT_LIB_UDP_H
#define PDTT_LIB_UDP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"
#include "consts.h"
#include "maps.h"
#include "ipv4.h"
#include "slots.h"
#include "sock.h"

#define UDP_NOSLOT_RETRY_NS 1000000000ull /* a refused UDP flow asks again after 1 s */

static __always_inline struct pdtt_port_key udp_owner_key(const struct pdtt_flow_key *k)
{
	struct pdtt_port_key ok = {.netns = k->netns, .port = k->lport};

	return ok;
}

static __always_inline struct pdtt_flow *udp_flow_create(const struct pdtt_flow_key *k,
							 const struct pdtt_owner *o, __u8 direction)
{
	struct pdtt_flow f = {};

	if (o) {
		f.uid = o->uid;
		f.pid = o->pid;
		f.cgroup = o->cgroup;
		f.owner_gen = o->gen;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	} else {
		f.uid = PDTT_UID_UNRESOLVED;
	}
	f.id = new_flow_id();
	f.direction = direction;
	f.family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	f.open_ns = bpf_ktime_get_ns();
	return flow_insert(k, &f, UDP_NOSLOT_RETRY_NS);
}

/* Only a datagram some local socket will receive opens a flow: a flood to
 * closed ports must not fill the table. */
static __always_inline struct pdtt_flow *udp_rx_flow(void *ctx, const struct pdtt_flow_key *k)
{
	struct pdtt_port_key ok = udp_owner_key(k);
	struct bpf_sock *sk = lookup_local(ctx, k);

	if (!sk)
		return NULL;
	bpf_sk_release(sk);
	return udp_flow_create(k, bpf_map_lookup_elem(&udp_owners, &ok), PDTT_DIR_INBOUND);
}

/* A local sender. Before its first sock_send_length (which runs after the
 * datagram left) its port's owner is its socket's uid. */
static __always_inline struct pdtt_flow *udp_tx_flow(struct __sk_buff *skb,
						     const struct pdtt_flow_key *k)
{
	struct pdtt_port_key ok = udp_owner_key(k);
	struct pdtt_owner *o = bpf_map_lookup_elem(&udp_owners, &ok);

	if (!o) {
		struct pdtt_owner n = {
			.uid = bpf_get_socket_uid(skb),
			.gen = __sync_fetch_and_add(&next_owner_gen, 1) + 1,
			.cookie = bpf_get_socket_cookie(skb),
		};

		bpf_map_update_elem(&udp_owners, &ok, &n, BPF_NOEXIST);
		o = bpf_map_lookup_elem(&udp_owners, &ok);
	}
	return udp_flow_create(k, o, PDTT_DIR_OUTBOUND);
}

#endif /* PDTT_LIB_UDP_H */
