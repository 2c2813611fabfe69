/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Records to the agent, and the counters that say when one was lost. */
#ifndef PDTT_LIB_RING_H
#define PDTT_LIB_RING_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"
#include "maps.h"

/* Atomic although per CPU: a process-context program (the I/O hooks, the
 * delta pass) can be interrupted by a softirq one on the same CPU. */
static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Wake the agent only when the ring fills up; it also drains on a timer. */
static __always_inline void ring_submit(struct pdtt_event *e)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ring_wakeup_bytes
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(e, flags);
	stat_inc(PDTT_STAT_EVENTS);
}

static __always_inline struct pdtt_event *ring_reserve(void)
{
	struct pdtt_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		stat_inc(PDTT_STAT_RB_DROPS);
	return e;
}

static __always_inline void fill_event(struct pdtt_event *e, __u8 type,
				       const struct pdtt_flow_key *k, const struct pdtt_flow *f)
{
	e->type = type;
	e->ts_ns = bpf_ktime_get_ns();
	e->key = *k;
	e->cnt.tx_bytes = f->cnt.tx_bytes;
	e->cnt.rx_bytes = f->cnt.rx_bytes;
	e->cnt.tx_packets = f->cnt.tx_packets;
	e->cnt.rx_packets = f->cnt.rx_packets;
	e->open_ns = f->open_ns;
	e->flow_id = f->id;
	e->cgroup = f->cgroup;
	e->uid = f->uid;
	e->pid = f->pid;
	e->ifindex = f->ifindex;
	e->family = f->family;
	e->direction = f->direction;
	e->tcp_bytes_acked = 0;
	e->tcp_bytes_received = 0;
	e->tcp_bytes_retrans = 0;
	__builtin_memcpy(e->comm, f->comm, sizeof(e->comm));
	__builtin_memset(e->pad, 0, sizeof(e->pad));
}

#endif /* PDTT_LIB_RING_H */
