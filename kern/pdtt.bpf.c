// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pdtt data path.
 *
 * The TCP state tracepoint creates a flow entry when a socket reaches
 * ESTABLISHED (owner uid, pid and comm) and emits FLOW_CLOSE at CLOSE.
 * XDP (ingress) and tc (egress) only add to that entry's counters; the
 * first packet that crosses a monitored interface emits FLOW_OPEN, so flows
 * that never touch one stay silent. Byte deltas come from pdtt_emit_deltas,
 * a program the agent runs once per tick: the packet path never emits a
 * record per packet.
 *
 * This file holds the programs; lib/ holds their helpers, one concern per
 * header, all inlined into this one compilation unit.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "pdtt.h"
#include "lib/consts.h"
#include "lib/maps.h"
#include "lib/ring.h"
#include "lib/eth.h"
#include "lib/flow.h"
#include "lib/udp.h"
#include "lib/sock.h"
#include "lib/tcp.h"

/* ---- packet path: XDP on ingress, tc on egress ---- */

SEC("xdp")
int pdtt_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f = NULL;
	struct pkt p = {};
	__u64 len = end - data;

	/* Multi-buffer frames (jumbo, native XDP) are longer than their head. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_xdp_get_buff_len))
		len = bpf_xdp_get_buff_len(ctx);
	if (len > 0x3ffff)	/* bounded for the verifier; no frame is this long */
		len = 0x3ffff;
	if (parse_frame(data, end, len, 0, &p) != PKT_IP)
		return XDP_PASS;
	if (p.has_ports) {
		packet_key(&p, 0, &k);
		f = bpf_map_lookup_elem(&flows, &k);
		if (!f && p.proto == IPPROTO_UDP)
			f = udp_rx_flow(ctx, &k);
	}
	account(f, &k, &p, 0, 1, ctx->ingress_ifindex);
	return XDP_PASS;
}

SEC("tc")
int pdtt_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f = NULL;
	struct pkt p = {};
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;

	if (parse_frame(data, end, skb->len, 1, &p) != PKT_IP)
		return TC_ACT_UNSPEC;
	if (p.has_ports) {
		packet_key(&p, 1, &k);
		f = bpf_map_lookup_elem(&flows, &k);
		/* Forwarded packets have no socket and stay unattributed. */
		if (!f && p.proto == IPPROTO_UDP && skb->sk)
			f = udp_tx_flow(skb, &k);
	}
	account(f, &k, &p, 1, segs, skb->ifindex);
	return TC_ACT_UNSPEC;
}

/* ---- TCP state tracepoint ---- */

static __always_inline void handle_state(struct sock *sk, int oldstate, int newstate)
{
	struct pdtt_port_key lk = {};
	struct owner o;
	__u64 skp = (__u64)sk;

	/* Most transitions (FIN_WAIT*, TIME_WAIT, CLOSE_WAIT, ...) mean nothing
	 * to us: leave before reading the socket. */
	if (newstate != TCP_SYN_SENT && newstate != TCP_LISTEN && newstate != TCP_CLOSE &&
	    !(newstate == TCP_ESTABLISHED && (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)))
		return;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return;
	lk.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (target_netns && lk.netns != target_netns)
		return;
	lk.port = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));

	switch (newstate) {
	case TCP_SYN_SENT:	/* inside connect(): the owner is current */
		current_owner(&o);
		if (bpf_map_update_elem(&connecting, &skp, &o, BPF_ANY))
			stat_inc(PDTT_STAT_AUX_FULL);
		break;
	case TCP_LISTEN:	/* inside listen() */
		current_owner(&o);
		if (bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY))
			stat_inc(PDTT_STAT_AUX_FULL);
		break;
	case TCP_ESTABLISHED:
		if (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)
			flow_established(sk, oldstate);
		break;
	case TCP_CLOSE:
		if (oldstate == TCP_SYN_SENT)
			bpf_map_delete_elem(&connecting, &skp);
		else if (oldstate == TCP_LISTEN)
			bpf_map_delete_elem(&listeners, &lk);
		else
			flow_closed(sk);
		break;
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pdtt_state_btf, struct sock *sk, int oldstate, int newstate)
{
	handle_state(sk, oldstate, newstate);
	return 0;
}

/* Fallback for kernels whose tp_btf attach fails; needs tracefs. */
SEC("tracepoint/sock/inet_sock_set_state")
int pdtt_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	handle_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
	return 0;
}

/* ---- byte deltas, run by the agent each tick with BPF_PROG_TEST_RUN ---- */

static long emit_delta(struct bpf_map *map, struct pdtt_flow_key *k,
		       struct pdtt_flow *f, void *ctx)
{
	struct pdtt_counters now;
	struct pdtt_event *e;

	if (!f->seen)
		return 0;
	now.tx_bytes = f->cnt.tx_bytes;
	now.rx_bytes = f->cnt.rx_bytes;
	now.tx_packets = f->cnt.tx_packets;
	now.rx_packets = f->cnt.rx_packets;
	/* All four: the snapshot is not atomic against the packet path. */
	if (now.tx_bytes == f->reported.tx_bytes && now.rx_bytes == f->reported.rx_bytes &&
	    now.tx_packets == f->reported.tx_packets && now.rx_packets == f->reported.rx_packets)
		return 0;
	e = ring_reserve();
	if (!e)
		return 1;	/* ring full: stop; the rest go out next tick */
	fill_event(e, PDTT_EV_FLOW_DELTA, k, f);
	e->cnt = now;
	ring_submit(e);
	f->reported = now;
	return 0;
}

SEC("syscall")
int pdtt_emit_deltas(void *ctx)
{
	bpf_for_each_map_elem(&flows, emit_delta, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
