// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pdtt data path.
 *
 * The TCP state tracepoint creates a flow entry when a socket reaches
 * ESTABLISHED (owner uid, pid and comm) and emits FLOW_CLOSE at CLOSE.
 * XDP (ingress) and tc (egress) only add to that entry's counters; the
 * first packet that crosses a monitored interface emits FLOW_OPEN, so flows
 * that never touch one stay silent. Byte deltas come from pdtt_sweep, a
 * program the agent runs once per tick: the packet path never emits a
 * record per packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "pdtt.h"

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define AF_INET		2
#define AF_INET6	10
#define EEXIST		17
#define TC_ACT_UNSPEC	(-1)	/* tcx: TCX_NEXT; clsact: continue */
#define IP_MF		0x2000
#define IP_OFFSET	0x1FFF
#define MAX_VLAN	2
#define MAX_V6_EXT	6
/* IPv6 extension headers (uapi macros, not in vmlinux.h) */
#define NEXTHDR_HOP	0
#define NEXTHDR_ROUTING	43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH	51
#define NEXTHDR_DEST	60

/* Tunables the agent sets between open and load. */
const volatile __u32 target_netns = 0;	/* 0: any namespace */
const volatile __u64 ring_wakeup_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PDTT_DEFAULT_RING_MIB << 20);	/* the agent sets the size */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PDTT_DEFAULT_FLOW_ENTRIES);
	__type(key, struct pdtt_flow_key);
	__type(value, struct pdtt_flow);
} flows SEC(".maps");

/* Traffic that matched no flow, per direction; never lost. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pdtt_counters);
} unattributed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PDTT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct owner {
	__u32 pid;
	char comm[PDTT_COMM_LEN];
};

/* Active opens: connect() runs in the owner, ESTABLISHED in softirq. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);		/* struct sock * */
	__type(value, struct owner);
} connecting SEC(".maps");

struct listen_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/* Passive opens are attributed to the process that called listen(). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct listen_key);
	__type(value, struct owner);
} listeners SEC(".maps");

/* Owners of local UDP ports: learnt from senders here, and kept by the
 * agent from the socket table for receivers that never sent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pdtt_udp_owner_key);
	__type(value, __u32);
} udp_owners SEC(".maps");

static __always_inline int is_v4(const __u8 *a)
{
	return *(__u64 *)a == 0 && *(__u32 *)(a + 8) == bpf_htonl(0xffff);
}

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

/* Wake the agent only when the ring fills up; it also drains on a timer. */
static __always_inline void ring_submit(struct pdtt_event *e)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ring_wakeup_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;

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
				       const struct pdtt_flow_key *k,
				       const struct pdtt_flow *f)
{
	e->type = type;
	e->ts_ns = bpf_ktime_get_ns();
	e->key = *k;
	e->cnt.tx_bytes = f->cnt.tx_bytes;
	e->cnt.rx_bytes = f->cnt.rx_bytes;
	e->cnt.tx_packets = f->cnt.tx_packets;
	e->cnt.rx_packets = f->cnt.rx_packets;
	e->open_ns = f->open_ns;
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

/* ---- packet parsing, shared by XDP and tc ---- */

struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 has_ports;		/* first (or only) fragment with an L4 header */
	__u64 payload;		/* transport payload bytes */
};

enum { PKT_IGNORE = 0, PKT_IP = 1 };

static __always_inline void map_v4(__u8 *dst, __be32 addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

static __always_inline int is_v6_ext(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING ||
	       nexthdr == NEXTHDR_DEST || nexthdr == NEXTHDR_FRAGMENT ||
	       nexthdr == NEXTHDR_AUTH;
}

/* L4 header at l4 (ip_payload bytes after it, headers included). */
static __always_inline int parse_l4(void *l4, void *end, __u8 proto,
				    __u64 ip_payload, struct pkt *p)
{
	p->proto = proto;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u32 hlen;

		if ((void *)(th + 1) > end)
			return PKT_IGNORE;
		hlen = th->doff * 4;
		if (hlen < sizeof(*th) || hlen > ip_payload)
			return PKT_IGNORE;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->payload = ip_payload - hlen;
		p->has_ports = 1;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || ip_payload < sizeof(*uh))
			return PKT_IGNORE;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->payload = ip_payload - sizeof(*uh);
		p->has_ports = 1;
	} else {
		p->payload = ip_payload;	/* ICMP and others: no ports */
	}
	return PKT_IP;
}

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

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = cur;
		__u32 ihl, tot;
		__u16 frag;

		if ((void *)(iph + 1) > end || iph->version != 4)
			return PKT_IGNORE;
		ihl = iph->ihl * 4;
		if (ihl < sizeof(*iph) || cur + ihl > end)
			return PKT_IGNORE;
		tot = bpf_ntohs(iph->tot_len);
		if (tot == 0 && super_ok)
			tot = frame_len - (cur - data);
		if (tot < ihl || tot > frame_len - (cur - data))
			return PKT_IGNORE;
		map_v4(p->saddr, iph->saddr);
		map_v4(p->daddr, iph->daddr);
		frag = bpf_ntohs(iph->frag_off);
		if (frag & IP_OFFSET) {		/* later fragment: all payload */
			p->proto = iph->protocol;
			p->payload = tot - ihl;
			return PKT_IP;
		}
		return parse_l4(cur + ihl, end, iph->protocol, tot - ihl, p);
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;
		__u64 plen;
		__u8 nexthdr;

		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return PKT_IGNORE;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		plen = bpf_ntohs(ip6->payload_len);
		if (plen == 0 && super_ok)
			plen = frame_len - (cur - data) - sizeof(*ip6);
		if (plen > frame_len - (cur - data) - sizeof(*ip6))
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
				if (off) {	/* later fragment: all payload */
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
			return PKT_IGNORE;	/* more extension headers than we walk */
		return parse_l4(cur, end, nexthdr, plen, p);
	}

	return PKT_IGNORE;	/* ARP and everything that is not IP */
}

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

/* Add one packet to its flow, or (f == NULL) to the unattributed counters. */
static __always_inline void account(struct pdtt_flow *f, const struct pdtt_flow_key *k,
				    const struct pkt *p, int egress, __u64 segs, __u32 ifindex)
{
	struct pdtt_counters *u;
	__u32 zero = 0;

	if (f) {
		if (egress) {
			__sync_fetch_and_add(&f->cnt.tx_bytes, p->payload);
			__sync_fetch_and_add(&f->cnt.tx_packets, segs);
		} else {
			__sync_fetch_and_add(&f->cnt.rx_bytes, p->payload);
			__sync_fetch_and_add(&f->cnt.rx_packets, segs);
		}
		if (f->ifindex != ifindex)
			f->ifindex = ifindex;
		emit_open(k, f);
		return;
	}

	u = bpf_map_lookup_elem(&unattributed, &zero);
	if (!u)
		return;
	if (egress) {
		u->tx_bytes += p->payload;
		u->tx_packets += segs;
	} else {
		u->rx_bytes += p->payload;
		u->rx_packets += segs;
	}
}

/*
 * UDP has no state transitions to hook: a UDP flow is created by its first
 * packet. The agent closes it when it goes idle or its socket is gone.
 */
static __always_inline struct pdtt_flow *udp_flow_create(const struct pdtt_flow_key *k, __u32 uid,
							  __u8 direction)
{
	struct pdtt_flow f = {};
	long err;

	f.uid = uid;
	f.direction = direction;
	f.family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	f.open_ns = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&flows, k, &f, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		stat_inc(PDTT_STAT_FLOW_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&flows, k);	/* EEXIST: another CPU won */
}

static __always_inline struct pdtt_udp_owner_key udp_owner_key(const struct pdtt_flow_key *k)
{
	struct pdtt_udp_owner_key ok = { .netns = k->netns, .port = k->lport };

	return ok;
}

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
		if (!f && p.proto == IPPROTO_UDP) {
			/* Only a datagram some local socket will receive opens a flow:
			 * a flood to closed ports must not fill the table. */
			struct bpf_sock_tuple t = {};
			struct pdtt_udp_owner_key ok = udp_owner_key(&k);
			struct bpf_sock *sk;
			__u32 *uid;

			if (is_v4(k.laddr)) {
				__builtin_memcpy(&t.ipv4.saddr, k.raddr + 12, 4);
				__builtin_memcpy(&t.ipv4.daddr, k.laddr + 12, 4);
				t.ipv4.sport = bpf_htons(k.rport);
				t.ipv4.dport = bpf_htons(k.lport);
				sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
			} else {
				__builtin_memcpy(t.ipv6.saddr, k.raddr, 16);
				__builtin_memcpy(t.ipv6.daddr, k.laddr, 16);
				t.ipv6.sport = bpf_htons(k.rport);
				t.ipv6.dport = bpf_htons(k.lport);
				sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
			}
			if (sk) {
				bpf_sk_release(sk);
				uid = bpf_map_lookup_elem(&udp_owners, &ok);
				f = udp_flow_create(&k, uid ? *uid : PDTT_UID_UNRESOLVED, PDTT_DIR_INBOUND);
			}
		}
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
		/* A local UDP sender: its socket's owner is on the skb. Forwarded
		 * packets have no socket and stay unattributed. */
		if (!f && p.proto == IPPROTO_UDP && skb->sk) {
			struct pdtt_udp_owner_key ok = udp_owner_key(&k);
			__u32 uid = bpf_get_socket_uid(skb);

			bpf_map_update_elem(&udp_owners, &ok, &uid, BPF_ANY);
			f = udp_flow_create(&k, uid, PDTT_DIR_OUTBOUND);
		}
	}
	account(f, &k, &p, 1, segs, skb->ifindex);
	return TC_ACT_UNSPEC;
}

/* ---- TCP state tracepoint ---- */

static __always_inline int sock_key(struct sock *sk, struct pdtt_flow_key *k, __u16 *family)
{
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (fam == AF_INET) {
		map_v4(k->laddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		map_v4(k->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		*family = AF_INET;
	} else if (fam == AF_INET6) {
		BPF_CORE_READ_INTO(&k->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		/* IPv4-mapped peers are IPv4 to the user, and on the wire. */
		*family = is_v4(k->raddr) ? AF_INET : AF_INET6;
	} else {
		return -1;
	}
	/* Not skc_num: inet_put_port() zeroes it before the CLOSE transition. */
	k->lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	k->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->proto = IPPROTO_TCP;
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

static __always_inline void current_owner(struct owner *o)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

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
		struct listen_key lk = { .netns = k.netns, .port = k.lport };

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

static __always_inline void handle_state(struct sock *sk, int oldstate, int newstate)
{
	struct listen_key lk = {};
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

/* ---- periodic sweep, run by the agent with BPF_PROG_TEST_RUN ---- */

static long sweep_one(struct bpf_map *map, struct pdtt_flow_key *k,
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
int pdtt_sweep(void *ctx)
{
	bpf_for_each_map_elem(&flows, sweep_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
