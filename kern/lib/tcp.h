/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A TCP flow entry is made at ESTABLISHED and reported and removed at CLOSE. */
#ifndef PDTT_LIB_TCP_H
#define PDTT_LIB_TCP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "pdtt.h"
#include "maps.h"
#include "ring.h"
#include "sock.h"

static __always_inline void flow_established(struct sock *sk, int oldstate)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow f = {};
	struct owner *o = NULL;
	__u64 skp = (__u64)sk;

	if (sock_key(sk, &k, &f.family))
		return;
	if (oldstate == TCP_SYN_SENT) {
		f.direction = PDTT_DIR_OUTBOUND;
		o = bpf_map_lookup_elem(&connecting, &skp);
	} else {
		struct pdtt_port_key lk = { .netns = k.netns, .port = k.lport };

		f.direction = PDTT_DIR_INBOUND;
		o = bpf_map_lookup_elem(&listeners, &lk);
	}
	if (o) {
		f.pid = o->pid;
		__builtin_memcpy(f.comm, o->comm, sizeof(f.comm));
	}
	if (oldstate == TCP_SYN_SENT)
		bpf_map_delete_elem(&connecting, &skp);
	f.uid = BPF_CORE_READ(sk, sk_uid.val);
	f.open_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&flows, &k, &f, BPF_NOEXIST) && !bpf_map_lookup_elem(&flows, &k))
		stat_inc(PDTT_STAT_FLOW_FULL);
}

static __always_inline void unattribute_unreported(struct pdtt_flow *f)
{
	__u32 zero = 0;
	struct pdtt_counters *u = bpf_map_lookup_elem(&unattributed, &zero);

	if (!u)
		return;
	u->tx_bytes += f->cnt.tx_bytes - f->reported.tx_bytes;
	u->rx_bytes += f->cnt.rx_bytes - f->reported.rx_bytes;
	u->tx_packets += f->cnt.tx_packets - f->reported.tx_packets;
	u->rx_packets += f->cnt.rx_packets - f->reported.rx_packets;
}

static __always_inline void flow_closed(struct sock *sk)
{
	struct pdtt_flow_key k = {};
	struct pdtt_event *e;
	struct pdtt_flow *f;
	__u16 family;

	if (sock_key(sk, &k, &family))
		return;
	f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		return;
	if (f->seen) {	/* a flow that never crossed a monitored interface stays silent */
		e = ring_reserve();
		if (e) {
			struct tcp_sock *tp = (struct tcp_sock *)sk;

			fill_event(e, PDTT_EV_FLOW_CLOSE, &k, f);
			e->tcp_bytes_acked = BPF_CORE_READ(tp, bytes_acked);
			e->tcp_bytes_received = BPF_CORE_READ(tp, bytes_received);
			e->tcp_bytes_retrans = BPF_CORE_READ(tp, bytes_retrans);
			ring_submit(e);
		} else {
			unattribute_unreported(f);	/* the record is lost, the bytes are not */
		}
	}
	bpf_map_delete_elem(&flows, &k);
}

#endif /* PDTT_LIB_TCP_H */
