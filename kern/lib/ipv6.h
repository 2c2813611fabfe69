/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* IPv6: its header and the extension headers before the transport. */
#ifndef PDTT_LIB_IPV6_H
#define PDTT_LIB_IPV6_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "pkt.h"
#include "l4.h"

#define MAX_V6_EXT 6

static __always_inline int is_v6_ext(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING || nexthdr == NEXTHDR_DEST ||
	       nexthdr == NEXTHDR_FRAGMENT || nexthdr == NEXTHDR_AUTH;
}

/* l3_len: the frame's bytes from this header on; see parse_frame. */
static __always_inline int parse_ipv6(void *l3, void *end, __u64 l3_len, int super_ok,
				      struct pkt *p)
{
	struct ipv6hdr *ip6 = l3;
	void *cur;
	__u64 plen;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return PKT_IGNORE;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	plen = bpf_ntohs(ip6->payload_len);
	if (plen == 0 && super_ok)
		plen = l3_len - sizeof(*ip6);
	if (plen > l3_len - sizeof(*ip6))
		return PKT_IGNORE;
	nexthdr = ip6->nexthdr;
	cur = ip6 + 1;

#pragma unroll
	for (int i = 0; i < MAX_V6_EXT; i++) {
		__u8 *h = cur;
		__u32 hlen;

		if (!is_v6_ext(nexthdr))
			break;
		if ((void *)(h + 8) > end)
			return PKT_IGNORE;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			__u16 off = bpf_ntohs(*(__be16 *)(h + 2)) & 0xFFF8;

			hlen = 8;
			if (hlen > plen)
				return PKT_IGNORE;
			if (off) { /* later fragment: all payload */
				p->proto = h[0];
				p->payload = plen - hlen;
				return PKT_IP;
			}
		} else if (nexthdr == NEXTHDR_AUTH) {
			hlen = (h[1] + 2) * 4;
		} else {
			hlen = (h[1] + 1) * 8;
		}
		if (hlen > plen)
			return PKT_IGNORE;
		plen -= hlen;
		nexthdr = h[0];
		cur += hlen;
	}
	if (is_v6_ext(nexthdr))
		return PKT_IGNORE; /* more extension headers than we walk */
	return parse_l4(cur, end, nexthdr, plen, p);
}

#endif /* PDTT_LIB_IPV6_H */
