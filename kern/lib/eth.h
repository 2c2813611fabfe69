/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The packet parser's entry, shared by XDP and tc: Ethernet and VLAN tags. */
#ifndef PDTT_LIB_ETH_H
#define PDTT_LIB_ETH_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "pkt.h"
#include "ipv4.h"
#include "ipv6.h"

#define MAX_VLAN	2

/*
 * Parse an Ethernet frame. frame_len is the whole packet, fragments included:
 * an IP length beyond it is a lie the stack drops, so we do too. super_ok:
 * on egress a GSO super-packet may carry IP length 0 (BIG TCP); at XDP,
 * before GRO, that is only ever malformed.
 */
static __always_inline int parse_frame(void *data, void *end, __u64 frame_len,
				       int super_ok, struct pkt *p)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	__u16 proto;

	if (cur > end)
		return PKT_IGNORE;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < MAX_VLAN; i++) {
		struct vlan_hdr *vh = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return PKT_IGNORE;
		proto = vh->h_vlan_encapsulated_proto;
		cur = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, end, frame_len - (cur - data), super_ok, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cur, end, frame_len - (cur - data), super_ok, p);
	return PKT_IGNORE;	/* ARP and everything that is not IP */
}

#endif /* PDTT_LIB_ETH_H */
