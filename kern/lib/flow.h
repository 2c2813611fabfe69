/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Packets counted into their flow, their owner's overflow, or as
 * unattributed when nothing matches. */
#ifndef PDTT_LIB_FLOW_H
#define PDTT_LIB_FLOW_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"
#include "maps.h"
#include "ring.h"
#include "pkt.h"
#include "slots.h"

static __always_inline void emit_open(const struct pdtt_flow_key *k, struct pdtt_flow *f)
{
	struct pdtt_event *e;

	/* Only the first packet on any CPU wins; the rest skip the event. */
	if (f->seen || __sync_val_compare_and_swap(&f->seen, 0, 1) != 0)
		return;
	e = ring_reserve();
	if (!e)
		return;
	fill_event(e, PDTT_EV_FLOW_OPEN, k, f);
	f->reported = e->cnt; /* the agent counts these: a lost close must not again */
	ring_submit(e);
}

/* Normalised key of a parsed packet: "local" is this host. */
static __always_inline void packet_key(const struct pkt *p, int egress, struct pdtt_flow_key *k)
{
	if (egress) {
		__builtin_memcpy(k->laddr, p->saddr, 16);
		__builtin_memcpy(k->raddr, p->daddr, 16);
		k->lport = p->sport;
		k->rport = p->dport;
	} else {
		__builtin_memcpy(k->laddr, p->daddr, 16);
		__builtin_memcpy(k->raddr, p->saddr, 16);
		k->lport = p->dport;
		k->rport = p->sport;
	}
	k->proto = p->proto;
	k->netns = target_netns;
}

static __always_inline void add_packet(struct pdtt_counters *c, const struct pkt *p, int egress,
				       __u64 segs)
{
	if (egress) {
		__sync_fetch_and_add(&c->tx_bytes, p->payload);
		__sync_fetch_and_add(&c->tx_packets, segs);
	} else {
		__sync_fetch_and_add(&c->rx_bytes, p->payload);
		__sync_fetch_and_add(&c->rx_packets, segs);
	}
}

/* A flow's refusal of a slot; none before the first refusal. */
static __always_inline struct pdtt_noslot *noslot_of(const struct pdtt_flow_key *k)
{
	return noslot_used ? bpf_map_lookup_elem(&noslot, k) : NULL;
}

/* The refusal of a flow refused a slot, while it holds; an expired one is
 * gone, so that the flow asks for a slot again. */
static __always_inline struct pdtt_noslot *noslot_active(const struct pdtt_flow_key *k)
{
	struct pdtt_noslot *ns = noslot_of(k);

	if (ns && ns->until_ns && ns->until_ns < bpf_ktime_get_ns()) {
		bpf_map_delete_elem(&noslot, k);
		return NULL;
	}
	return ns;
}

/* A packet of a flow refused a slot: still its owner's. Not noslot_active():
 * the caller judged the flow refused a moment ago, and a refusal that
 * expired in between (a flow sending once a second meets its 1 s retry)
 * must not make this packet unattributed. */
static __always_inline int account_noslot(const struct pdtt_flow_key *k, const struct pkt *p,
					  int egress, __u64 segs)
{
	struct pdtt_noslot *ns = noslot_of(k);
	struct pdtt_counters *c;

	if (!ns)
		return 0;
	c = overflow_of(ns->uid);
	if (!c)
		return 0;
	add_packet(c, p, egress, segs);
	return 1;
}

/* Add one packet to its flow, or (f == NULL) to its owner's overflow or the
 * unattributed counters. */
static __always_inline void account(struct pdtt_flow *f, const struct pdtt_flow_key *k,
				    const struct pkt *p, int egress, __u64 segs, __u32 ifindex)
{
	__u32 zero = PDTT_UNATTRIBUTED;
	struct pdtt_counters *u;

	if (f) {
		add_packet(&f->cnt, p, egress, segs);
		if (f->ifindex != ifindex)
			f->ifindex = ifindex;
		emit_open(k, f);
		return;
	}
	if (p->has_ports && account_noslot(k, p, egress, segs))
		return;
	u = bpf_map_lookup_elem(&unattributed, &zero);
	if (u)
		add_packet(u, p, egress, segs);
}

#endif /* PDTT_LIB_FLOW_H */
