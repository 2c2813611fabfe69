/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the state tracepoint reads from a socket and from its caller. */
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

static __always_inline int sock_key(struct sock *sk, struct pdtt_flow_key *k, __u16 *family)
{
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (fam == AF_INET) {
		map_v4(k->laddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		map_v4(k->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		*family = AF_INET;
	} else if (fam == AF_INET6) {
		BPF_CORE_READ_INTO(&k->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		/* IPv4-mapped peers are IPv4 to the user, and on the wire. */
		*family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	} else {
		return -1;
	}
	/* Not skc_num: inet_put_port() zeroes it before the CLOSE transition. */
	k->lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	k->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->proto = IPPROTO_TCP;
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

static __always_inline void current_owner(struct owner *o)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

#endif /* PDTT_LIB_SOCK_H */
