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

/*
 * Inside connect() (SYN_SENT): the caller owns the socket. tp_btf: in the
 * socket's io_owners storage, as if it had moved bytes already, so that its
 * first write finds itself there and leaves at once; the classic tracepoint
 * has no socket storage and keeps it in connecting.
 */
static __always_inline void flow_connecting(struct sock *sk, const int btf)
{
	__u64 skp = (__u64)sk;

	if (btf) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct io_owner *io =
			bpf_sk_storage_get(&io_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

		if (!io) {
			stat_inc(PDTT_STAT_AUX_FULL);
			return;
		}
		io->connected = 1;
		/* A kernel worker (sunrpc, CIFS, MPTCP subflows) acts for the
		 * socket's owner, as in io_hook: no pid, and the socket's uid. */
		if (task->flags & PF_KTHREAD)
			return;
		task_owner(task, &io->uid, &io->pid, &io->cgroup);
		io->epoch = owner_epoch;
		bpf_get_current_comm(io->comm, sizeof(io->comm));
	} else {
		struct owner o;

		current_owner(&o, btf);
		if (bpf_map_update_elem(&connecting, &skp, &o, BPF_ANY))
			stat_inc(PDTT_STAT_AUX_FULL);
	}
}

static __always_inline void flow_established(struct sock *sk, int oldstate, const int btf)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow f = {}, *stale;
	struct owner *o = NULL, *connected = NULL;
	struct io_owner *io = NULL;
	__u64 skp = (__u64)sk;

	/* Outbound also after a simultaneous open (SYN_SENT, SYN_RECV, then
	 * ESTABLISHED): connect() was called. An accepted socket has storage
	 * of its own, if any (io_owners is not cloned). */
	if (btf) {
		io = bpf_sk_storage_get(&io_owners, sk, 0, 0);
		if (io && !io->connected)
			io = NULL;
	} else {
		o = connected = bpf_map_lookup_elem(&connecting, &skp);
	}
	if (sock_key_read(sk, &k, &f.family, btf))
		goto out;
	/* An entry of this 5-tuple belongs to an earlier connection whose close
	 * was missed (one seeded at start, say): end it first. */
	stale = bpf_map_lookup_elem(&flows, &k);
	if (stale)
		flow_end(&k, stale, NULL, btf);
	if (io || connected) {
		f.direction = PDTT_DIR_OUTBOUND;
	} else {
		struct pdtt_port_key lk = {.netns = k.netns, .port = k.lport};

		f.direction = PDTT_DIR_INBOUND;
		o = bpf_map_lookup_elem(&listeners, &lk);
	}
	/* Flows that never cross a monitored interface take no slot. */
	if (!sock_monitored(sk, btf))
		goto out;
	f.uid = SK_READ(btf, sk, sk_uid.val);
	if (io && io->pid) { /* the connecting process, as its first write will find it */
		f.uid = io->uid;
		f.pid = io->pid;
		f.cgroup = io->cgroup;
		__builtin_memcpy(f.comm, io->comm, sizeof(f.comm));
	} else if (o) {
		f.pid = o->pid;
		f.cgroup = o->cgroup;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	}
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
