/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pdtt kernel-to-user ABI: the one header both sides include.
 *
 * Fixed-width fields, largest first, no implicit padding. Addresses are
 * 16 bytes in network byte order; IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d) so an AF_INET6 socket talking IPv4 and the IPv4 packets
 * on the wire meet the same flow key. Ports are in host byte order.
 * The C++ side static_asserts every size (agent/abi.hpp).
 */
#ifndef PDTT_H
#define PDTT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PDTT_COMM_LEN 16

/* Defaults of the sizes the agent sets between open and load. */
#define PDTT_DEFAULT_FLOW_ENTRIES 262144	/* flows map, --flow-table-size */
#define PDTT_DEFAULT_RING_MIB 4			/* events ring, --ring-buffer-mib */

/* TCX attach types (Linux 6.6); libbpf 1.1's headers predate them. */
#define PDTT_BPF_TCX_INGRESS 46
#define PDTT_BPF_TCX_EGRESS 47

/* Ring buffer record kinds. */
enum pdtt_event_type {
	PDTT_EV_FLOW_OPEN = 1,	/* first packet of a flow crossed a monitored interface */
	PDTT_EV_FLOW_DELTA = 2,	/* pdtt_emit_deltas, each tick: counters moved */
	PDTT_EV_FLOW_CLOSE = 3,	/* socket reached TCP_CLOSE; counters are totals */
};

enum pdtt_direction {
	PDTT_DIR_UNKNOWN = 0,
	PDTT_DIR_OUTBOUND = 1,	/* we connected */
	PDTT_DIR_INBOUND = 2,	/* we accepted */
};

/* Normalised flow identity: "local" is this host, whatever the direction. */
struct pdtt_flow_key {
	__u8 laddr[16];		/* network order, IPv4-mapped for IPv4 */
	__u8 raddr[16];		/* network order, IPv4-mapped for IPv4 */
	__u32 netns;		/* inode number of the socket's network namespace */
	__u16 lport;		/* host order */
	__u16 rport;		/* host order */
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP */
	__u8 pad[3];
};

/* Traffic counters; cumulative since the flow was created. */
struct pdtt_counters {
	__u64 tx_bytes;		/* transport payload sent */
	__u64 rx_bytes;		/* transport payload received */
	__u64 tx_packets;	/* IP packets on the wire (GSO: its segments) */
	__u64 rx_packets;
};

/* Value of the flows map. */
struct pdtt_flow {
	struct pdtt_counters cnt;	/* updated atomically by XDP/tc */
	struct pdtt_counters reported;	/* what the last event carried */
	__u64 open_ns;			/* CLOCK_MONOTONIC at ESTABLISHED */
	__u64 seen;			/* non-zero once FLOW_OPEN was emitted (64-bit for cmpxchg) */
	__u32 uid;			/* sk->sk_uid */
	__u32 pid;			/* tgid, 0 when unknown */
	__u32 ifindex;			/* interface of the latest packet */
	__u16 family;			/* AF_INET or AF_INET6 as shown to users */
	__u8 direction;			/* enum pdtt_direction */
	__u8 pad;
	char comm[PDTT_COMM_LEN];	/* "" when unknown */
};

/* One ring buffer record; the same layout for every type. */
struct pdtt_event {
	struct pdtt_counters cnt;	/* cumulative flow counters */
	__u64 ts_ns;			/* CLOCK_MONOTONIC when emitted */
	__u64 open_ns;			/* CLOCK_MONOTONIC at ESTABLISHED */
	__u64 tcp_bytes_acked;		/* FLOW_CLOSE only: tcp_sock totals */
	__u64 tcp_bytes_received;
	__u64 tcp_bytes_retrans;	/* payload the kernel sent again (counted again in tx) */
	struct pdtt_flow_key key;
	__u32 uid;
	__u32 pid;
	__u32 ifindex;
	__u16 family;
	__u8 type;			/* enum pdtt_event_type */
	__u8 direction;			/* enum pdtt_direction */
	char comm[PDTT_COMM_LEN];
	__u8 pad[4];
};

/* A local port in one namespace: key of listeners (who called listen())
 * and of udp_owners (who owns a UDP port; the agent writes it too, for
 * receivers that never sent). */
struct pdtt_port_key {
	__u32 netns;	/* inode number of the network namespace */
	__u16 port;	/* local port, host order */
	__u16 pad;
};

/* Indexes of the per-CPU loss and health counters (stats map). */
enum pdtt_stat {
	PDTT_STAT_RB_DROPS = 0,		/* ring buffer reservation failed */
	PDTT_STAT_FLOW_FULL,		/* flows map insert failed */
	PDTT_STAT_AUX_FULL,		/* pid/comm side map insert failed */
	PDTT_STAT_EVENTS,		/* records submitted to the ring */
	PDTT_STAT_MAX,
};

/* uid of a UDP flow whose receiving socket's owner the kernel side did not
 * know yet; the agent resolves it from the socket table. */
#define PDTT_UID_UNRESOLVED 0xfffffffeu

/* Index of the unattributed counters: [0] all traffic matching no flow. */
#define PDTT_UNATTRIBUTED 0

#endif /* PDTT_H */
