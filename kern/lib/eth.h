/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The packet parser's entries: Ethernet and VLAN tags (XDP and tc), and the
 * network header of devices without an Ethernet header (tc). */
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
/* uapi if_arp.h: the device types whose frames parse_frame reads */
#define ARPHRD_ETHER	1
#define ARPHRD_LOOPBACK 772
/* Linear bytes tc wants before parsing: IPoIB's 24, two VLAN tags, IPv6, TCP
 * with options. */
#define SKB_PULL_LEN	128
#define MAX_L2_LEN	64 /* more in front of the network header: not ours */

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* One load of a ctx field, at its own offset: clang would otherwise keep
 * ctx + offset in a register across the pull, which the verifier refuses. */
#define SKB_LOAD(skb, field)                                                                       \
	({                                                                                         \
		__u64 __v;                                                                         \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                              \
			     : "=r"(__v)                                                           \
			     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, field)));        \
		__v;                                                                               \
	})

/* The network header and what follows; proto is an ethertype. */
static __always_inline int parse_l3(void *l3, void *end, __be16 proto, __u64 l3_len, int super_ok,
				    struct pkt *p)
{
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(l3, end, l3_len, super_ok, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(l3, end, l3_len, super_ok, p);
	return PKT_IGNORE; /* ARP and everything that is not IP */
}

/*
 * Parse an Ethernet frame. frame_len is the whole packet, fragments included:
 * an IP length beyond it is a lie the stack drops, so we do too. super_ok:
 * on egress a GSO super-packet may carry IP length 0 (BIG TCP); at XDP,
 * before GRO, that is only ever malformed.
 */
static __always_inline int parse_frame(void *data, void *end, __u64 frame_len, int super_ok,
				       struct pkt *p)
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

	return parse_l3(cur, end, proto, frame_len - (cur - data), super_ok, p);
}

/*
 * tc's entry, on both hooks, after GRO (super-packets allowed), parsing what
 * is in the linear part. An Ethernet device's frame starts with its link
 * header; tun and WireGuard have none, IPoIB 24 bytes of its own: those are
 * parsed from the network header, with the skb's protocol.
 */
static __always_inline int parse_skb_linear(struct __sk_buff *skb, struct pkt *p)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 len = skb->len;
	void *data = (void *)(long)SKB_LOAD(skb, data);
	void *end = (void *)(long)SKB_LOAD(skb, data_end);
	__u16 type = kskb->dev->type;
	long off;

	if (type == ARPHRD_ETHER || type == ARPHRD_LOOPBACK)
		return parse_frame(data, end, len, 1, p);
	/* What lies in front of the network header, from where tc's data starts. */
	off = (long)(kskb->head + kskb->network_header) - (long)kskb->data;
	if (off < 0 || off > MAX_L2_LEN || off > len)
		return PKT_IGNORE;
	return parse_l3(data + off, end, skb->protocol, len - off, 1, p);
}

/*
 * Headers outside the linear part (tun; drivers that receive into pages)
 * are pulled in, but only then: the stack's own skbs carry every header in
 * the linear part and their payload in pages. Pulling those would copy
 * payload into the head, and the head itself of a clone (every TCP segment
 * sent is one): 150 ns more per super-packet, and received segments that
 * tcp_try_coalesce can no longer merge.
 */
static __always_inline int parse_skb(struct __sk_buff *skb, struct pkt *p)
{
	__u32 len = skb->len;
	__u32 want = len < SKB_PULL_LEN ? len : SKB_PULL_LEN;

	if (parse_skb_linear(skb, p) == PKT_IP)
		return PKT_IP;
	if ((long)(SKB_LOAD(skb, data_end) - SKB_LOAD(skb, data)) >= want)
		return PKT_IGNORE; /* all of it was there: not ours, or malformed */
	if (bpf_skb_pull_data(skb, want))
		return PKT_IGNORE;
	__builtin_memset(p, 0, sizeof(*p));
	return parse_skb_linear(skb, p);
}

#endif /* PDTT_LIB_ETH_H */
