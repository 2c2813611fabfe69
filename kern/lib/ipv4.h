/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* IPv4: its header, and its addresses in the ABI's IPv4-mapped form. */
#ifndef PDTT_LIB_IPV4_H
#define PDTT_LIB_IPV4_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "pkt.h"
#include "l4.h"

static __always_inline int is_v4(const __u8 *a)
{
	return *(__u64 *)a == 0 && *(__u32 *)(a + 8) == bpf_htonl(0xffff);
}

static __always_inline void map_v4(__u8 *dst, __be32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

/* l3_len: the frame's bytes from this header on; see parse_frame. */
static __always_inline int parse_ipv4(void *l3, void *end, __u64 l3_len, int super_ok,
				      struct pkt *p)
{
	struct iphdr *iph = l3;
	__u32 ihl, tot;
	__u16 frag;

	if ((void *)(iph + 1) > end || iph->version != 4)
		return PKT_IGNORE;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph) || l3 + ihl > end)
		return PKT_IGNORE;
	tot = bpf_ntohs(iph->tot_len);
	if (tot == 0 && super_ok)
		tot = l3_len;
	if (tot < ihl || tot > l3_len)
		return PKT_IGNORE;
	map_v4(p->saddr, iph->saddr);
	map_v4(p->daddr, iph->daddr);
	frag = bpf_ntohs(iph->frag_off);
	if (frag & IP_OFFSET) { /* later fragment: all payload */
		p->proto = iph->protocol;
		p->payload = tot - ihl;
		return PKT_IP;
	}
	return parse_l4(l3 + ihl, end, iph->protocol, tot - ihl, p);
}

#endif /* PDTT_LIB_IPV4_H */
