/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * UDP has no state transitions to hook: a UDP flow is created by its first
 * packet, owned by its socket's entry in udp_owners (the sender's on
 * egress, the receiver's on ingress). The agent closes
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

/* A socket's cookie as the kernel holds it: 0 until someone asked for it
 * (the I/O hooks and sock_diag do). The packet path cannot make one for a
 * socket it looked up. */
static __always_inline __u64 udp_sock_cookie(struct bpf_sock *bsk, __u32 *uid)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));

	*uid = sk->sk_uid.val;
	return sk->__sk_common.skc_cookie.counter;
}

static __always_inline struct pdtt_owner *udp_owner_of(__u64 cookie)
{
	return cookie ? bpf_map_lookup_elem(&udp_owners, &cookie) : NULL;
}

/* Read before a look at udp_owners; bumped after every write to it. */
static __always_inline __u32 owner_changes_now(void)
{
	return *(volatile __u32 *)&owner_changes;
}

static __always_inline void owner_changed(void)
{
	/* Ordered after the map write on x86 (lock add). On arm64 it may be
	 * seen first: a flow may then note the new count with the old entry,
	 * until pdtt_emit_deltas makes it look again within the tick. (A
	 * fetching add, fully ordered, needs BPF ISA v3; we build for v1.) */
	__sync_fetch_and_add(&owner_changes, 1);
}

/* o: the socket's owner entry, looked up at owner_changes == seen; without
 * one, the socket's uid. */
static __always_inline struct pdtt_flow *udp_flow_create(const struct pdtt_flow_key *k,
							 const struct pdtt_owner *o, __u32 sk_uid,
							 __u64 cookie, __u8 direction, __u32 seen)
{
	struct pdtt_flow f = {.owner_seen = seen};

	if (o) {
		f.uid = o->uid;
		f.pid = o->pid;
		f.cgroup = o->cgroup;
		f.owner_gen = o->gen;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	} else {
		f.uid = sk_uid;
	}
	f.sk_cookie = cookie;
	f.id = new_flow_id();
	f.direction = direction;
	f.family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	f.open_ns = bpf_ktime_get_ns();
	return flow_insert(k, &f, UDP_NOSLOT_RETRY_NS);
}

/* The owner entry of the socket sending skb, made from the socket's uid
 * before its first sock_send_length (which runs after the datagram left). */
static __always_inline struct pdtt_owner *udp_sender(struct __sk_buff *skb, __u64 cookie)
{
	struct pdtt_owner *o = bpf_map_lookup_elem(&udp_owners, &cookie);

	if (!o) {
		struct pdtt_owner n = {
			.uid = bpf_get_socket_uid(skb),
			.gen = __sync_fetch_and_add(&next_owner_gen, 1) + 1,
			.cookie = cookie,
		};

		if (!bpf_map_update_elem(&udp_owners, &cookie, &n, BPF_NOEXIST))
			owner_changed();
		o = bpf_map_lookup_elem(&udp_owners, &cookie);
	}
	return o;
}

/* A local sender. */
static __always_inline struct pdtt_flow *udp_tx_flow(struct __sk_buff *skb,
						     const struct pdtt_flow_key *k)
{
	__u32 seen = owner_changes_now();
	__u64 cookie = bpf_get_socket_cookie(skb);

	return udp_flow_create(k, udp_sender(skb, cookie), bpf_get_socket_uid(skb), cookie,
			       PDTT_DIR_OUTBOUND, seen);
}

#endif /* PDTT_LIB_UDP_H */
