/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Slots of the flows map, shared fairly: one uid holds at most its share,
 * and a flow without a slot still counts under its owner (overflow).
 */
#ifndef PDTT_LIB_SLOTS_H
#define PDTT_LIB_SLOTS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"
#include "consts.h"
#include "maps.h"
#include "ring.h"

static __always_inline __u64 new_flow_id(void)
{
	return __sync_fetch_and_add(&next_flow_id, 1) + 1;
}

/* The overflow entry of a uid, made on first use; NULL only when the
 * overflow table itself is full. */
static __always_inline struct pdtt_counters *overflow_of(__u32 uid)
{
	struct pdtt_counters zero = {}, *c = bpf_map_lookup_elem(&overflow, &uid);

	if (c)
		return c;
	bpf_map_update_elem(&overflow, &uid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&overflow, &uid);
}

/* A record is lost, the bytes are not: the ones it would have reported go
 * to the owner's overflow. */
static __always_inline void overflow_unreported(const struct pdtt_flow *f)
{
	struct pdtt_counters *c = overflow_of(f->uid);
	__u32 zero = PDTT_UNATTRIBUTED;

	if (!c)
		c = bpf_map_lookup_elem(&unattributed, &zero);
	if (!c)
		return;
	__sync_fetch_and_add(&c->tx_bytes, f->cnt.tx_bytes - f->reported.tx_bytes);
	__sync_fetch_and_add(&c->rx_bytes, f->cnt.rx_bytes - f->reported.rx_bytes);
	__sync_fetch_and_add(&c->tx_packets, f->cnt.tx_packets - f->reported.tx_packets);
	__sync_fetch_and_add(&c->rx_packets, f->cnt.rx_packets - f->reported.rx_packets);
}

#define SUBUID_SEARCH_STEPS 13 /* log2(PDTT_SUBUID_RANGES) + 1 */

/* The uid whose share of the table a flow of uid counts in: the owner of
 * its /etc/subuid range, else itself. A binary search of the sorted ranges;
 * global, so that the verifier checks it once, not at every call site. */
__noinline __u32 share_uid(__u32 uid)
{
	__u32 lo = 0, hi = subuid_count;

	if (hi > PDTT_SUBUID_RANGES)
		hi = PDTT_SUBUID_RANGES;
	for (int i = 0; i < SUBUID_SEARCH_STEPS && lo < hi; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		struct pdtt_subuid_range *r = bpf_map_lookup_elem(&subuid_ranges, &mid);

		if (!r)
			break;
		if (uid < r->first)
			hi = mid;
		else if (uid - r->first < r->count)
			return r->owner;
		else
			lo = mid + 1;
	}
	return uid;
}

static __always_inline int slot_take(__u32 uid)
{
	__u64 one = 1, *n;

	if (!max_slots_per_uid)
		return 1;
	n = bpf_map_lookup_elem(&uid_slots, &uid);
	if (!n) {
		if (!bpf_map_update_elem(&uid_slots, &uid, &one, BPF_NOEXIST))
			return 1;
		n = bpf_map_lookup_elem(&uid_slots, &uid);
		if (!n)
			return 0;
	}
	if (*n >= max_slots_per_uid)
		return 0;
	__sync_fetch_and_add(n, 1);
	return 1;
}

static __always_inline void slot_give(__u32 uid)
{
	__u64 *n;

	if (!max_slots_per_uid || uid == PDTT_SLOT_NONE) /* seeded: held no share */
		return;
	n = bpf_map_lookup_elem(&uid_slots, &uid);
	if (n && *n)
		__sync_fetch_and_sub(n, 1);
}

/*
 * Insert a new flow. Without a slot (table full, or its uid holds its
 * share) the refusal is remembered, so it is counted once per flow, and the
 * flow's packets count in its owner's overflow. retry_ns: when to ask again
 * (0: not before the socket closes).
 */
static __always_inline struct pdtt_flow *flow_insert(const struct pdtt_flow_key *k,
						     struct pdtt_flow *f, __u64 retry_ns)
{
	struct pdtt_noslot ns = {.uid = f->uid};
	__u32 share = share_uid(f->uid);
	long err;

	if (slot_take(share)) {
		f->slot_uid = share;
		err = bpf_map_update_elem(&flows, k, f, BPF_NOEXIST);
		if (!err)
			return bpf_map_lookup_elem(&flows, k);
		slot_give(share);
		if (err == -EEXIST) /* another CPU won */
			return bpf_map_lookup_elem(&flows, k);
		stat_inc(PDTT_STAT_FLOW_FULL);
	} else {
		stat_inc(PDTT_STAT_SHARE_FULL);
	}
	if (retry_ns)
		ns.until_ns = bpf_ktime_get_ns() + retry_ns;
	if (!noslot_used)
		noslot_used = 1; /* before the entry: a reader that skips the map misses nothing */
	bpf_map_update_elem(&noslot, k, &ns, BPF_ANY);
	return NULL;
}

/* A flow's slot counts in its owner's share (a subordinate uid's: its range
 * owner's): it moves with the owner, even past the new owner's share (the
 * flow has its slot already). */
static __always_inline void slot_move(struct pdtt_flow *f, __u32 uid)
{
	__u64 one = 1, *n;

	if (!max_slots_per_uid || f->slot_uid == PDTT_SLOT_NONE)
		return;
	uid = share_uid(uid);
	if (f->slot_uid == uid)
		return;
	slot_give(f->slot_uid);
	f->slot_uid = uid;
	n = bpf_map_lookup_elem(&uid_slots, &uid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&uid_slots, &uid, &one, BPF_NOEXIST);
}

/* Remove a flow and give back its slot. */
static __always_inline void flow_remove(const struct pdtt_flow_key *k, const struct pdtt_flow *f)
{
	__u32 uid = f->slot_uid;

	if (!bpf_map_delete_elem(&flows, k))
		slot_give(uid);
}

#endif /* PDTT_LIB_SLOTS_H */
