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
#define PDTT_DEFAULT_FLOW_ENTRIES 262144 /* flows map, --flow-table-size */
#define PDTT_DEFAULT_RING_MIB	  4	 /* events ring, --ring-buffer-mib */
#define PDTT_OVERFLOW_UIDS	  16384	 /* uids with bytes of flows that found no slot */
#define PDTT_NOSLOT_FLOWS	  16384	 /* flows remembered as refused a slot */
#define PDTT_MONITORED_MAX	  256	 /* monitored interfaces */
#define PDTT_SUBUID_RANGES	  4096	 /* /etc/subuid ranges the flow-table shares know */

/* TCX attach types (Linux 6.6); libbpf 1.1's headers predate them. */
#define PDTT_BPF_TCX_INGRESS 46
#define PDTT_BPF_TCX_EGRESS  47

/* Ring buffer record kinds. */
enum pdtt_event_type {
	PDTT_EV_FLOW_OPEN = 1,	/* first packet of a flow crossed a monitored interface */
	PDTT_EV_FLOW_DELTA = 2, /* pdtt_emit_deltas, each tick: counters moved */
	PDTT_EV_FLOW_CLOSE = 3, /* socket reached TCP_CLOSE; counters are totals */
	PDTT_EV_FLOW_OWNER = 4, /* another user or cgroup moves its bytes from now on;
				 * counters are the totals at the change */
};

enum pdtt_direction {
	PDTT_DIR_UNKNOWN = 0,
	PDTT_DIR_OUTBOUND = 1, /* we connected */
	PDTT_DIR_INBOUND = 2,  /* we accepted */
};

/* Normalised flow identity: "local" is this host, whatever the direction. */
struct pdtt_flow_key {
	__u8 laddr[16]; /* network order, IPv4-mapped for IPv4 */
	__u8 raddr[16]; /* network order, IPv4-mapped for IPv4 */
	__u32 netns;	/* inode number of the socket's network namespace */
	__u16 lport;	/* host order */
	__u16 rport;	/* host order */
	__u8 proto;	/* IPPROTO_TCP, IPPROTO_UDP */
	__u8 pad[3];
};

/* Traffic counters; cumulative since the flow was created. */
struct pdtt_counters {
	__u64 tx_bytes;	  /* transport payload sent */
	__u64 rx_bytes;	  /* transport payload received */
	__u64 tx_packets; /* IP packets on the wire (GSO: its segments) */
	__u64 rx_packets;
};

/* Value of the flows map. */
struct pdtt_flow {
	struct pdtt_counters cnt;      /* updated atomically by XDP/tc */
	struct pdtt_counters reported; /* what the last event carried */
	__u64 open_ns;		       /* CLOCK_MONOTONIC at ESTABLISHED */
	__u64 seen;	  /* non-zero once FLOW_OPEN was emitted (64-bit for cmpxchg) */
	__u64 id;	  /* flow_id: unique while the programs are loaded */
	__u64 cgroup;	  /* cgroup id of the owner, 0 when unknown */
	__u64 owner_gen;  /* UDP: the udp_owners generation last applied */
	__u64 sk_cookie;  /* UDP: the receiving socket, whose udp_owners entry
			   * received bytes follow; 0 until it has a cookie */
	__u64 delta_tick; /* the delta pass that last looked at it */
	__u32 uid;	  /* owner: euid of the process that last moved bytes,
			   * before that the connecting process's, or sk_uid */
	__u32 pid;	  /* tgid, 0 when unknown */
	__u32 ifindex;	  /* interface of the latest packet */
	__u32 slot_uid;	  /* the uid whose share of the table the slot counts in
			   * (a subordinate uid's range owner) */
	__u16 family;	  /* AF_INET or AF_INET6 as shown to users */
	__u8 direction;	  /* enum pdtt_direction */
	__u8 pad;
	char comm[PDTT_COMM_LEN]; /* "" when unknown */
	__u32 cgroup_ms;	  /* a change of cgroup alone last applied: CLOCK_MONOTONIC
				   * in 2^20 ns units, wrapping; 0 never */
	__u32 owner_seen;	  /* UDP: owner_changes when its socket's owner was last taken */
};

/* One ring buffer record; the same layout for every type. */
struct pdtt_event {
	struct pdtt_counters cnt; /* cumulative flow counters */
	__u64 flow_id;		  /* pdtt_flow.id */
	__u64 cgroup;		  /* owner's cgroup id, 0 when unknown */
	__u64 ts_ns;		  /* CLOCK_MONOTONIC when emitted */
	__u64 open_ns;		  /* CLOCK_MONOTONIC at ESTABLISHED */
	__u64 tcp_bytes_acked;	  /* FLOW_CLOSE only: tcp_sock totals */
	__u64 tcp_bytes_received;
	__u64 tcp_bytes_retrans; /* payload the kernel sent again (counted again in tx) */
	struct pdtt_flow_key key;
	__u32 uid;
	__u32 pid;
	__u32 ifindex;
	__u16 family;
	__u8 type;	/* enum pdtt_event_type */
	__u8 direction; /* enum pdtt_direction */
	char comm[PDTT_COMM_LEN];
	__u8 pad[4];
};

/* A local port in one namespace: key of listeners (who called listen()). */
struct pdtt_port_key {
	__u32 netns; /* inode number of the network namespace */
	__u16 port;  /* local port, host order */
	__u16 pad;
};

/* Value of udp_owners, keyed by socket cookie: the process that last moved
 * bytes on that socket (pid 0 and no comm where the agent wrote it from the
 * socket table, or tc egress from the socket's uid). */
struct pdtt_owner {
	__u64 cgroup;
	__u64 gen;    /* changes whenever the owner does */
	__u64 cookie; /* socket cookie: the agent drops entries of closed sockets */
	__u32 uid;
	__u32 pid;
	char comm[PDTT_COMM_LEN];
};

/* A flow the table had no slot for: its packets skip the insert and count
 * in its owner's overflow. */
struct pdtt_noslot {
	__u64 until_ns; /* ask again after this; 0: until the socket closes */
	__u32 uid;
	__u32 pad;
};

/* One /etc/subuid range (entries of subuid_ranges, sorted by first,
 * disjoint): a subordinate uid's flows count in its owner's share of the
 * flow table, so that a rootless container's 65,536 uids are one user. */
struct pdtt_subuid_range {
	__u32 first;
	__u32 count;
	__u32 owner;
	__u32 pad;
};

/* Context of pdtt_emit_deltas: the agent runs it again, draining the ring in
 * between, while `more` says it stopped for ring space. */
struct pdtt_delta_args {
	__u64 tick;	/* in: a new value every tick */
	__u64 headroom; /* in: ring bytes kept for the packet path */
	__u32 more;	/* out */
	__u32 emitted;	/* out: records written by this run */
};

/* Context of pdtt_take_flow: the agent's UDP close. */
struct pdtt_take_args {
	struct pdtt_flow flow;	  /* out */
	struct pdtt_flow_key key; /* in */
	__u32 found;		  /* out */
};

/* Indexes of the per-CPU loss and health counters (stats map). */
enum pdtt_stat {
	PDTT_STAT_RB_DROPS = 0,	  /* ring buffer reservation failed */
	PDTT_STAT_FLOW_FULL,	  /* no slot: the flows map was full */
	PDTT_STAT_AUX_FULL,	  /* pid/comm side map insert failed */
	PDTT_STAT_EVENTS,	  /* records submitted to the ring */
	PDTT_STAT_OWNER_DEFERRED, /* an owner change waited for ring space */
	PDTT_STAT_SHARE_FULL,	  /* no slot: the uid held its share of the table */
	PDTT_STAT_MAX,
};

/* uid of a flow whose socket's owner the kernel side did not know yet (a
 * UDP receiver that never sent, a TCP flow first seen at tc ingress); the
 * agent resolves it from the socket table. */
#define PDTT_UID_UNRESOLVED 0xfffffffeu

/* slot_uid of the flows the agent seeded at start: they count in no uid's
 * share. */
#define PDTT_SLOT_NONE 0xffffffffu

/* Index of the unattributed counters: [0] all traffic matching no flow. */
#define PDTT_UNATTRIBUTED 0

#endif /* PDTT_H */
