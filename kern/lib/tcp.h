/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A TCP flow entry is made at ESTABLISHED when the socket's route crosses a
 * monitored interface (else at its first monitored packet past the
 * handshake), and reported and removed at CLOSE.
 */
#ifndef PDTT_LIB_TCP_H
#define PDTT_LIB_TCP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "pdtt.h"
#include "maps.h"
#include "ring.h"
#include "slots.h"
#include "sock.h"

/* A flow ends: FLOW_CLOSE with its totals. tp: the socket, for the kernel's
 * own totals; NULL for an entry whose socket is gone. */
static __always_inline void flow_end(const struct pdtt_flow_key *k, struct pdtt_flow *f,
				     struct tcp_sock *tp, const int btf)
{
	struct pdtt_event *e;

	if (f->seen) { /* a flow that never crossed a monitored interface stays silent */
		e = ring_reserve();
		if (e) {
			fill_event(e, PDTT_EV_FLOW_CLOSE, k, f);
			if (tp) {
				e->tcp_bytes_acked = SK_READ(btf, tp, bytes_acked);
				e->tcp_bytes_received = SK_READ(btf, tp, bytes_received);
				e->tcp_bytes_retrans = SK_READ(btf, tp, bytes_retrans);
			}
			ring_submit(e);
		} else {
			overflow_unreported(f);
		}
	}
	flow_remove(k, f);
}

static __always_inline void flow_established(struct sock *sk, int oldstate, const int btf)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow f = {}, *stale;
	struct owner *o, *connected;
	__u64 skp = (__u64)sk;

	/* Outbound also after a simultaneous open (SYN_SENT, SYN_RECV, then
	 * ESTABLISHED): connect() was called. */
	o = connected = bpf_map_lookup_elem(&connecting, &skp);
	if (sock_key_read(sk, &k, &f.family, btf))
		goto out;
	/* An entry of this 5-tuple belongs to an earlier connection whose close
	 * was missed (one seeded at start, say): end it first. */
	stale = bpf_map_lookup_elem(&flows, &k);
	if (stale)
		flow_end(&k, stale, NULL, btf);
	if (connected) {
		f.direction = PDTT_DIR_OUTBOUND;
	} else {
		struct pdtt_port_key lk = {.netns = k.netns, .port = k.lport};

		f.direction = PDTT_DIR_INBOUND;
		o = bpf_map_lookup_elem(&listeners, &lk);
	}
	/* Flows that never cross a monitored interface take no slot. */
	if (!sock_monitored(sk, btf))
		goto out;
	if (o) {
		f.pid = o->pid;
		f.cgroup = o->cgroup;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	}
	f.uid = SK_READ(btf, sk, sk_uid.val);
	f.open_ns = bpf_ktime_get_ns();
	f.id = new_flow_id();
	flow_insert(&k, &f, 0);
out:
	if (connected)
		bpf_map_delete_elem(&connecting, &skp);
}

static __always_inline void flow_closed(struct sock *sk, const int btf)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f;
	__u16 family;

	if (sock_key_read(sk, &k, &family, btf))
		return;
	f = bpf_map_lookup_elem(&flows, &k);
	if (f)
		flow_end(&k, f, tcp_of(sk, btf), btf);
	else if (noslot_used)
		bpf_map_delete_elem(&noslot, &k);
}

/* A TCP flow first seen on a monitored interface after its handshake (its
 * route named another device at ESTABLISHED): owned by the socket's last
 * I/O, else by the socket's uid. Handshake packets count without a flow. */
static __always_inline struct pdtt_flow *tcp_flow_late(const struct pdtt_flow_key *k,
						       struct bpf_sock *sk, __u32 sk_uid)
{
	struct pdtt_flow f = {};
	struct io_owner *o;

	if (!sk || sk->state == BPF_TCP_SYN_SENT || sk->state == BPF_TCP_SYN_RECV ||
	    sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_CLOSE ||
	    sk->state == BPF_TCP_NEW_SYN_RECV)
		return NULL;
	o = bpf_sk_storage_get(&io_owners, sk, 0, 0);
	if (o && o->pid) {
		f.uid = o->uid;
		f.pid = o->pid;
		f.cgroup = o->cgroup;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	} else {
		f.uid = sk_uid;
	}
	f.id = new_flow_id();
	f.family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	f.open_ns = bpf_ktime_get_ns();
	return flow_insert(k, &f, 0);
}

#endif /* PDTT_LIB_TCP_H */
