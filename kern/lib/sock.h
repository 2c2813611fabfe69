/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the programs read from a socket and from its caller, and how a
 * received packet finds its local socket. */
#ifndef PDTT_LIB_SOCK_H
#define PDTT_LIB_SOCK_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "pdtt.h"
#include "consts.h"
#include "maps.h"
#include "ipv4.h"
#include "cgroup.h"

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * Socket fields, read two ways. btf: a tp_btf program's BTF pointer, read
 * with plain loads (CO-RE relocated through preserve_access_index, no helper
 * call). Else an address only (the classic tracepoint): bpf_probe_read_kernel.
 * btf is a constant, so each program keeps one of the two.
 */
#define SK_READ(btf, p, f)	 ((btf) ? (p)->f : BPF_CORE_READ(p, f))
#define SK_READ2(btf, p, f1, f2) ((btf) ? (p)->f1->f2 : BPF_CORE_READ(p, f1, f2))

/* The tcp_sock around a TCP socket, for the fields past struct sock: a BTF
 * pointer typed struct sock may not reach them, a read-only cast (a move once
 * verified) may. */
static __always_inline struct tcp_sock *tcp_of(struct sock *sk, const int btf)
{
	if (btf)
		return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	return (struct tcp_sock *)sk;
}

static __always_inline int sock_key_read(struct sock *sk, struct pdtt_flow_key *k, __u16 *family,
					 const int btf)
{
	__u16 fam = SK_READ(btf, sk, __sk_common.skc_family);

	if (fam == AF_INET) {
		map_v4(k->laddr, SK_READ(btf, sk, __sk_common.skc_rcv_saddr));
		map_v4(k->raddr, SK_READ(btf, sk, __sk_common.skc_daddr));
		*family = AF_INET;
	} else if (fam == AF_INET6) {
		if (btf) {
			__builtin_memcpy(k->laddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8,
					 16);
			__builtin_memcpy(k->raddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
		} else {
			BPF_CORE_READ_INTO(&k->laddr, sk,
					   __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
			BPF_CORE_READ_INTO(&k->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		}
		/* IPv4-mapped peers are IPv4 to the user, and on the wire. */
		*family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	} else {
		return -1;
	}
	/* Not skc_num: inet_put_port() zeroes it before the CLOSE transition. */
	k->lport = bpf_ntohs(SK_READ(btf, tcp_of(sk, btf), inet_conn.icsk_inet.inet_sport));
	k->rport = bpf_ntohs(SK_READ(btf, sk, __sk_common.skc_dport));
	k->proto = IPPROTO_TCP;
	k->netns = SK_READ2(btf, sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* Who the current task moves bytes for: its effective uid (Samba and ProFTPD
 * switch only that), but a setuid-root program handed a user's socket acts
 * for its real user. */
static __always_inline void task_owner(struct task_struct *task, __u32 *uid, __u32 *pid,
				       __u64 *cgroup)
{
	*uid = task->cred->euid.val;
	if (*uid == 0)
		*uid = task->cred->uid.val;
	*pid = bpf_get_current_pid_tgid() >> 32;
	*cgroup = owner_cgroup_id(task);
}

/* The caller of listen() (or, for the classic tracepoint, connect()), its
 * cgroup too (the job), so that a flow opens with the one its first write
 * finds: no FLOW_OWNER a connection for learning it. btf: the cgroup v1
 * kfunc is a tracing program's only; without it, with jobs on v1, no cgroup
 * (a v2 id would name another hierarchy's node). */
static __always_inline void current_owner(struct owner *o, const int btf)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	if (btf)
		o->cgroup = owner_cgroup_id(bpf_get_current_task_btf());
	else
		o->cgroup = cgroup1_hierarchy ? 0 : bpf_get_current_cgroup_id();
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/* A socket of another namespace (macvlan, ipvlan) can send through the
 * monitored device too: its traffic is not this namespace's. */
static __always_inline int sock_in_target_netns(struct bpf_sock *bsk)
{
	struct sock *sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));

	return !target_netns || sk->__sk_common.skc_net.net->ns.inum == target_netns;
}

/* Whether a socket's route or receive device is a monitored interface. */
static __always_inline int sock_monitored(struct sock *sk, const int btf)
{
	struct dst_entry *dst = SK_READ(btf, sk, sk_dst_cache);
	__u32 ifindex = dst ? SK_READ2(btf, dst, dev, ifindex) : 0;

	if (ifindex && bpf_map_lookup_elem(&monitored, &ifindex))
		return 1;
	ifindex = SK_READ(btf, sk, sk_rx_dst_ifindex);
	return ifindex && bpf_map_lookup_elem(&monitored, &ifindex);
}

/* The local socket a received packet goes to (XDP and tc alike); the
 * caller releases it. */
static __always_inline struct bpf_sock *lookup_local(void *ctx, const struct pdtt_flow_key *k)
{
	struct bpf_sock_tuple t = {};
	__u32 len;

	if (is_v4(k->laddr)) {
		__builtin_memcpy(&t.ipv4.saddr, k->raddr + 12, 4);
		__builtin_memcpy(&t.ipv4.daddr, k->laddr + 12, 4);
		t.ipv4.sport = bpf_htons(k->rport);
		t.ipv4.dport = bpf_htons(k->lport);
		len = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, k->raddr, 16);
		__builtin_memcpy(t.ipv6.daddr, k->laddr, 16);
		t.ipv6.sport = bpf_htons(k->rport);
		t.ipv6.dport = bpf_htons(k->lport);
		len = sizeof(t.ipv6);
	}
	if (k->proto == IPPROTO_UDP)
		return bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
	return bpf_sk_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
}

#endif /* PDTT_LIB_SOCK_H */
