/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The owner of a byte is the process that moves it: the I/O hooks run in
 * that process and hand the flow over when its uid or cgroup changes.
 */
#ifndef PDTT_LIB_OWNER_H
#define PDTT_LIB_OWNER_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"
#include "cgroup.h"
#include "consts.h"
#include "maps.h"
#include "ring.h"
#include "sock.h"
#include "udp.h"

/* A change of cgroup alone (one user's two jobs, or a job and a process
 * outside it, writing one socket in turn) applies at most this often per
 * flow, so that alternating writers cannot flood the ring: the bytes in
 * between stay with the current cgroup. 2^10 units of 2^20 ns: 1.07 s, the
 * delta interval. A change of uid always applies at once. */
#define CGROUP_HOLD_UNITS 1024
#define CGROUP_UNIT_SHIFT 20

/*
 * The bytes counted so far stay with the old owner: FLOW_OWNER carries the
 * totals at the change. A new pid or comm of the same uid and cgroup is only
 * noted. Returns 0 when the change must wait (the ring is full, or a cgroup
 * changed too recently): the old owner stays, and the caller asks again on
 * its next call.
 */
static __always_inline int flow_set_owner(struct pdtt_flow *f, const struct pdtt_flow_key *k,
					  __u32 uid, __u32 pid, __u64 cgroup, const char *comm)
{
	struct pdtt_event *e = NULL;
	__u32 now = 0;

	if (f->uid == uid && f->cgroup == cgroup) {
		if (f->pid != pid) {
			f->pid = pid;
			__builtin_memcpy(f->comm, comm, sizeof(f->comm));
		}
		return 1;
	}
	/* Before its first monitored packet a flow has nothing to hand over:
	 * its FLOW_OPEN will name the new owner. */
	if (f->seen) {
		if (f->uid == uid) {
			now = (bpf_ktime_get_ns() >> CGROUP_UNIT_SHIFT) | 1; /* never 0 */
			if (f->cgroup_ms && (__s32)(now - f->cgroup_ms) < CGROUP_HOLD_UNITS)
				return 0;
		}
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			stat_inc(PDTT_STAT_OWNER_DEFERRED);
			return 0;
		}
	}
	if (now)
		f->cgroup_ms = now;
	if (f->uid != uid)
		slot_move(f, uid);
	f->uid = uid;
	f->pid = pid;
	f->cgroup = cgroup;
	__builtin_memcpy(f->comm, comm, sizeof(f->comm));
	if (e) {
		fill_event(e, PDTT_EV_FLOW_OWNER, k, f);
		f->reported = e->cnt; /* the agent counts these for the old owner */
		ring_submit(e);
	}
	return 1;
}

/*
 * A UDP flow follows the owner entry of the socket that moves its datagram
 * (cookie), which the I/O hooks keep: from the packet path, so a new
 * owner's datagram is counted for it. The entry needs a look only after a
 * write to udp_owners, or for a socket other than the flow's own (two
 * sockets sending one 5-tuple): most datagrams skip the lookup.
 */
static __always_inline void udp_follow(struct pdtt_flow *f, const struct pdtt_flow_key *k,
				       __u64 cookie)
{
	__u32 seen = owner_changes_now();
	struct pdtt_owner *o;

	if (f->owner_seen == seen && cookie == f->sk_cookie)
		return;
	o = udp_owner_of(cookie);
	if (o && o->gen != f->owner_gen) {
		if (!flow_set_owner(f, k, o->uid, o->pid, o->cgroup, o->comm))
			return; /* waits: looked at again on the next datagram */
		f->owner_gen = o->gen;
	}
	if (cookie != f->sk_cookie) {
		/* Another socket's owner may hold the flow now: the flow's own
		 * socket looks again at its next datagram. */
		f->owner_seen = seen - 1;
		return;
	}
	/* Noted only while the flow still holds what this look found. Another
	 * CPU may still apply an older entry in between: pdtt_emit_deltas
	 * makes every UDP flow look again each tick, so no such race outlives
	 * a second. */
	if (!o || f->owner_gen == o->gen)
		f->owner_seen = seen;
}

/*
 * A received datagram's flow, found (f) or made, following the owner of the
 * socket the kernel delivers it to. Only a datagram some local socket will
 * receive opens a flow: a flood to closed ports must not fill the table. A
 * flow opened before its socket had a cookie looks the socket up again
 * until it has one (the socket's first read makes it).
 */
static __always_inline struct pdtt_flow *udp_rx(void *ctx, const struct pdtt_flow_key *k,
						struct pdtt_flow *f)
{
	if (!f || !f->sk_cookie) {
		struct bpf_sock *sk = lookup_local(ctx, k);
		__u32 uid, seen = owner_changes_now();
		__u64 cookie;

		if (!sk)
			return f;
		cookie = udp_sock_cookie(sk, &uid);
		bpf_sk_release(sk);
		if (!f)
			return udp_flow_create(k, udp_owner_of(cookie), uid, cookie,
					       PDTT_DIR_INBOUND, seen);
		f->sk_cookie = cookie;
	}
	udp_follow(f, k, f->sk_cookie);
	return f;
}

/* Sent: the sending socket's owner, datagram by datagram, once it is known
 * (an existing flow keeps its owner for a socket not seen yet). */
static __always_inline void udp_owner_tx(struct __sk_buff *skb, struct pdtt_flow *f,
					 const struct pdtt_flow_key *k)
{
	udp_follow(f, k, bpf_get_socket_cookie(skb));
}

static __always_inline int tcp_owner_moved(struct sock *sk, __u32 uid, __u32 pid, __u64 cgroup)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f;
	char comm[PDTT_COMM_LEN];
	__u16 family;

	if (sock_key_read(sk, &k, &family, 1)) /* a tp_btf program's socket */
		return 1;
	f = bpf_map_lookup_elem(&flows, &k);
	if (!f) {
		/* Refused a slot: its bytes go to the overflow of who moves them. */
		struct pdtt_noslot *ns = noslot_of(&k);

		if (ns)
			ns->uid = uid;
		return 1; /* or a flow that never crossed a monitored interface */
	}
	bpf_get_current_comm(comm, sizeof(comm));
	return flow_set_owner(f, &k, uid, pid, cgroup, comm);
}

static __always_inline int udp_owner_moved(struct sock *sk, __u32 uid, __u32 pid, __u64 cgroup)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct pdtt_owner o = {
		.uid = uid,
		.pid = pid,
		.cgroup = cgroup,
		.gen = __sync_fetch_and_add(&next_owner_gen, 1) + 1,
		.cookie = cookie,
	};

	bpf_get_current_comm(o.comm, sizeof(o.comm));
	if (bpf_map_update_elem(&udp_owners, &cookie, &o, BPF_ANY))
		stat_inc(PDTT_STAT_AUX_FULL);
	else
		owner_changed();
	return 1;
}

/*
 * Runs on every send and receive of every socket on the host: the common
 * case (the same process as last time) costs one socket-storage lookup.
 */
static __always_inline void io_hook(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	struct task_struct *task;
	struct io_owner *last;
	__u32 netns, uid, pid;
	__u64 cgroup;
	__u8 proto;
	int done;

	if (idle_hooks || (family != AF_INET && family != AF_INET6))
		return; /* Unix sockets fire these tracepoints too */
	proto = sk->sk_protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	netns = sk->__sk_common.skc_net.net->ns.inum;
	if (target_netns && netns != target_netns)
		return;
	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD)
		return; /* kTLS, NFS, NBD workers: acting for the socket's owner */
	task_owner(task, &uid, &pid, &cgroup);
	last = bpf_sk_storage_get(&io_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!last)
		return;
	if (last->pid == pid && last->uid == uid && last->cgroup == cgroup &&
	    last->epoch == owner_epoch)
		return;
	if (proto == IPPROTO_TCP)
		done = tcp_owner_moved(sk, uid, pid, cgroup);
	else
		done = udp_owner_moved(sk, uid, pid, cgroup);
	if (done) {
		last->uid = uid;
		last->pid = pid;
		last->cgroup = cgroup;
		last->epoch = owner_epoch;
		bpf_get_current_comm(last->comm, sizeof(last->comm));
	}
}

#endif /* PDTT_LIB_OWNER_H */
