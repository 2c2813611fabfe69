// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pdtt data path.
 *
 * The TCP state tracepoint creates a flow entry when a socket whose route
 * crosses a monitored interface reaches ESTABLISHED, and emits FLOW_CLOSE at
 * CLOSE. The packet programs (XDP or tc on ingress, tc on egress) add to the
 * entry's counters, make UDP entries and late TCP ones; the first packet that
 * crosses a monitored interface emits FLOW_OPEN. The I/O hooks run in the
 * process that sends or receives and hand the flow to it (FLOW_OWNER) when
 * its uid or cgroup is not the owner's. Byte deltas come from
 * pdtt_emit_deltas, a program the agent runs once per tick: the packet path
 * never emits a record per packet.
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
#include "lib/owner.h"

/* ---- packet path: XDP or tc on ingress, tc on egress ---- */

/*
 * A received packet, parsed: find or make its flow and count it. tc: socket
 * storage is at hand (XDP may not use it), so a TCP flow whose handshake
 * made no slot can still get one here.
 */
static __always_inline void ingress_packet(void *ctx, struct pkt *p, __u64 segs, __u32 ifindex,
					   const int tc)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f = NULL;

	if (p->has_ports) {
		packet_key(p, 0, &k);
		f = bpf_map_lookup_elem(&flows, &k);
		if (p->proto == IPPROTO_UDP) {
			if (f || !noslot_active(&k))
				f = udp_rx(ctx, &k, f);
		} else if (!f && tc && p->proto == IPPROTO_TCP && !p->syn && !noslot_active(&k)) {
			/* (A handshake segment's socket is still opening, which
			 * tcp_flow_late refuses: it is not looked up.) */
			struct bpf_sock *sk = lookup_local(ctx, &k);

			if (sk) {
				f = tcp_flow_late(&k, sk, PDTT_UID_UNRESOLVED);
				bpf_sk_release(sk);
			}
		}
	}
	account(f, &k, p, 0, segs, ifindex);
}

SEC("xdp.frags")
int pdtt_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	__u64 len = end - data;

	if (idle_hooks)
		return XDP_PASS;
	/* Multi-buffer frames (jumbo, native XDP) are longer than their head. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_xdp_get_buff_len))
		len = bpf_xdp_get_buff_len(ctx);
	if (len > 0x3ffff) /* bounded for the verifier; no frame is this long */
		len = 0x3ffff;
	if (parse_frame(data, end, len, 0, &p) == PKT_IP)
		ingress_packet(ctx, &p, 1, ctx->ingress_ifindex, 0);
	return XDP_PASS;
}

/* After GRO: a super-packet counts as its segments, and nothing is copied. */
SEC("tc")
int pdtt_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u32 ifindex = skb->ifindex; /* read once: the verifier refuses a moved ctx */

	if (idle_hooks)
		return TC_ACT_UNSPEC;
	if (parse_skb(skb, &p) == PKT_IP)
		ingress_packet(skb, &p, segs, ifindex, 1);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int pdtt_egress(struct __sk_buff *skb)
{
	struct pdtt_flow_key k = {};
	struct pdtt_flow *f = NULL;
	struct pkt p = {};
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u32 ifindex = skb->ifindex;

	if (idle_hooks || parse_skb(skb, &p) != PKT_IP)
		return TC_ACT_UNSPEC;
	if (p.has_ports) {
		struct bpf_sock *sk = skb->sk;

		packet_key(&p, 1, &k);
		f = bpf_map_lookup_elem(&flows, &k);
		/* Forwarded packets have no socket and stay unattributed. A
		 * handshake segment's socket is opening: tcp_flow_late refuses it. */
		if (!f && sk && !p.syn && sock_in_target_netns(sk) && !noslot_active(&k)) {
			if (p.proto == IPPROTO_UDP)
				f = udp_tx_flow(skb, &k);
			else if (p.proto == IPPROTO_TCP)
				f = tcp_flow_late(&k, bpf_sk_fullsock(sk), bpf_get_socket_uid(skb));
		}
		if (f && p.proto == IPPROTO_UDP && sk)
			udp_owner_tx(skb, f, &k);
	}
	account(f, &k, &p, 1, segs, ifindex);
	return TC_ACT_UNSPEC;
}

/* ---- TCP state tracepoint ---- */

static __always_inline void handle_state(struct sock *sk, int oldstate, int newstate, const int btf)
{
	struct pdtt_port_key lk = {};
	struct owner o;
	__u64 skp = (__u64)sk;

	/* Most transitions (FIN_WAIT*, TIME_WAIT, CLOSE_WAIT, ...) mean nothing
	 * to us: leave before reading the socket. */
	if (idle_hooks)
		return;
	if (newstate != TCP_SYN_SENT && newstate != TCP_LISTEN && newstate != TCP_CLOSE &&
	    !(newstate == TCP_ESTABLISHED &&
	      (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)))
		return;
	if (SK_READ(btf, sk, sk_protocol) != IPPROTO_TCP)
		return;
	lk.netns = SK_READ2(btf, sk, __sk_common.skc_net.net, ns.inum);
	if (target_netns && lk.netns != target_netns)
		return;
	lk.port = bpf_ntohs(SK_READ(btf, tcp_of(sk, btf), inet_conn.icsk_inet.inet_sport));

	switch (newstate) {
	case TCP_SYN_SENT: /* inside connect(): the owner is current */
		flow_connecting(sk, btf);
		break;
	case TCP_LISTEN: /* inside listen() */
		current_owner(&o, btf);
		if (bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY))
			stat_inc(PDTT_STAT_AUX_FULL);
		break;
	case TCP_ESTABLISHED:
		if (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)
			flow_established(sk, oldstate, btf);
		break;
	case TCP_CLOSE:
		if (oldstate == TCP_SYN_SENT) {
			if (!btf) /* tp_btf: the storage goes with the socket */
				bpf_map_delete_elem(&connecting, &skp);
		} else if (oldstate == TCP_LISTEN) {
			bpf_map_delete_elem(&listeners, &lk);
		} else {
			flow_closed(sk, btf);
		}
		break;
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pdtt_state_btf, struct sock *sk, int oldstate, int newstate)
{
	handle_state(sk, oldstate, newstate, 1);
	return 0;
}

/* Fallback for kernels whose tp_btf attach fails; needs tracefs. */
SEC("tracepoint/sock/inet_sock_set_state")
int pdtt_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	handle_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate, 0);
	return 0;
}

/* ---- I/O hooks: in the process that moves the bytes ---- */

/* Before the write's segments leave: they are the new owner's. */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(pdtt_tcp_send, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{
	io_hook(sk);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(pdtt_sock_send, struct sock *sk, int ret, int flags)
{
	if (ret > 0)
		io_hook(sk);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(pdtt_sock_recv, struct sock *sk, int ret, int flags)
{
	if (ret > 0)
		io_hook(sk);
	return 0;
}

/* ---- byte deltas, run by the agent each tick with BPF_PROG_TEST_RUN ---- */

struct delta_pass {
	__u64 tick;
	__u64 limit; /* stop when the ring holds this much */
	__u32 more;
	__u32 emitted;
	__u32 stale_seen; /* an owner_changes value no UDP flow may vouch for */
};

static long emit_delta(struct bpf_map *map, struct pdtt_flow_key *k, struct pdtt_flow *f,
		       struct delta_pass *pass)
{
	struct pdtt_counters now;
	struct pdtt_event *e;

	if (k->proto == IPPROTO_UDP)
		f->owner_seen =
			pass->stale_seen; /* looks at its owner entry again: see udp_follow */
	if (!f->seen || f->delta_tick == pass->tick)
		return 0;
	now.tx_bytes = f->cnt.tx_bytes;
	now.rx_bytes = f->cnt.rx_bytes;
	now.tx_packets = f->cnt.tx_packets;
	now.rx_packets = f->cnt.rx_packets;
	/* All four: the snapshot is not atomic against the packet path. */
	if (now.tx_bytes != f->reported.tx_bytes || now.rx_bytes != f->reported.rx_bytes ||
	    now.tx_packets != f->reported.tx_packets || now.rx_packets != f->reported.rx_packets) {
		/* Stop on space, never on a failed reserve: that would be a loss. */
		if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > pass->limit) {
			pass->more = 1;
			return 1;
		}
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			pass->more = 1;
			return 1;
		}
		fill_event(e, PDTT_EV_FLOW_DELTA, k, f);
		e->cnt = now;
		ring_submit(e);
		f->reported = now;
		pass->emitted++;
	}
	f->delta_tick = pass->tick;
	return 0;
}

/* One FLOW_DELTA per flow whose counters moved since its last record, as far
 * as the ring has room; the agent drains it and runs this again while
 * args->more, so every moving flow is reported every tick. */
SEC("syscall")
int pdtt_emit_deltas(struct pdtt_delta_args *args)
{
	struct delta_pass pass = {.tick = args->tick, .stale_seen = owner_changes_now() - 1};
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	pass.limit = size > args->headroom ? size - args->headroom : 0;
	bpf_for_each_map_elem(&flows, emit_delta, &pass, 0);
	args->more = pass.more;
	args->emitted = pass.emitted;
	return 0;
}

/* The agent's UDP close: the flow's final counters, its slot given back. */
SEC("syscall")
int pdtt_take_flow(struct pdtt_take_args *args)
{
	struct pdtt_flow_key k = args->key;
	struct pdtt_flow *f = bpf_map_lookup_elem(&flows, &k);

	args->found = 0;
	if (!f)
		return 0;
	args->flow = *f;
	args->found = 1;
	flow_remove(&k, f);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
