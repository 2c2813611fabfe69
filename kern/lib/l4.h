/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Transport headers: ports, and the payload that is counted. */
#ifndef PDTT_LIB_L4_H
#define PDTT_LIB_L4_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pkt.h"

/* L4 header at l4 (ip_payload bytes after it, headers included). */
static __always_inline int parse_l4(void *l4, void *end, __u8 proto, __u64 ip_payload,
				    struct pkt *p)
{
	p->proto = proto;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u32 hlen;

		if ((void *)(th + 1) > end)
			return PKT_IGNORE;
		hlen = th->doff * 4;
		if (hlen < sizeof(*th) || hlen > ip_payload)
			return PKT_IGNORE;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->syn = th->syn;
		p->payload = ip_payload - hlen;
		p->has_ports = 1;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || ip_payload < sizeof(*uh))
			return PKT_IGNORE;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->payload = ip_payload - sizeof(*uh);
		p->has_ports = 1;
	} else {
		p->payload = ip_payload; /* ICMP and others: no ports */
	}
	return PKT_IP;
}

#endif /* PDTT_LIB_L4_H */
