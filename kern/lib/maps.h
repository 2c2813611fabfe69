/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Every map and tunable of the program: the state user space sees and sets. */
#ifndef PDTT_LIB_MAPS_H
#define PDTT_LIB_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"

/* Tunables the agent sets between open and load. */
const volatile __u32 target_netns = 0; /* 0: any namespace */
const volatile __u64 ring_wakeup_bytes = 1 << 20;
const volatile __u32 max_slots_per_uid = 0; /* 0: no bound */
/* A benchmark's reference only (PDTT_TEST_FORCE=idle-hooks): the packet
 * programs, the state tracepoint and the I/O hooks return at once, so that what attaching them
 * costs can be told from what they do. Nothing is counted. */
const volatile __u32 idle_hooks = 0;

/* Counters shared by every CPU, bumped at every new flow and owner entry:
 * in a section of their own, so that the flags below (read on every packet
 * and hook) do not share their cache line. */
__u64 next_flow_id SEC(".data.counters") = 0;
__u64 next_owner_gen SEC(".data.counters") = 0;
/* Bumped by the agent after it seeded the flows older than it: an owner
 * cached before then was cached for a socket with no flow yet. */
__u32 owner_epoch = 0;
/* Set at the first flow refused a slot: until then noslot is empty, and the
 * packet path need not look there. */
__u32 noslot_used = 0;
/* Writes to udp_owners so far (the kernel's and the agent's), counted after
 * each: a UDP flow that took its owner at this count has nothing new to take. */
__u32 owner_changes = 0;
/* Entries of subuid_ranges in use; the agent writes both. */
__u32 subuid_count = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PDTT_DEFAULT_RING_MIB << 20); /* the agent sets the size */
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

/* Who opened a socket: connect() or listen(). */
struct owner {
	__u64 cgroup;
	__u32 pid;
	char comm[PDTT_COMM_LEN];
};

/* Active opens: connect() runs in the owner, ESTABLISHED in softirq. The
 * classic tracepoint's only: the tp_btf program keeps the owner in the
 * socket's io_owners storage. This and listeners are plain hashes, not LRU,
 * so that a full one shows in aux_table_full; both lose their entries at the
 * next state change. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct owner);
} connecting SEC(".maps");

/* Passive opens are attributed to the process that called listen(). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct pdtt_port_key);
	__type(value, struct owner);
} listeners SEC(".maps");

/* Owners of UDP sockets, by socket cookie: kept by the I/O hooks, learnt
 * from senders at tc egress before their first hook. Keyed by the socket,
 * not its port: another user's socket on the same port (another address,
 * SO_REUSEADDR) owns its own bytes only. The agent drops entries of closed
 * sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, struct pdtt_owner);
} udp_owners SEC(".maps");

/* Who last moved bytes on a socket, so that the I/O hooks tell a change of
 * owner with one lookup, and leave at once when there is none. */
struct io_owner {
	__u64 cgroup;
	__u32 uid;
	__u32 pid;
	__u32 epoch;	 /* owner_epoch when cached */
	__u32 connected; /* made at SYN_SENT, by connect(): the flow is outbound */
	char comm[PDTT_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct io_owner);
} io_owners SEC(".maps");

/* Interfaces the agent attached to: a TCP flow takes a slot only where it
 * crosses one, so that no user can fill the table through loopback. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PDTT_MONITORED_MAX);
	__type(key, __u32); /* ifindex */
	__type(value, __u32);
} monitored SEC(".maps");

/* Bytes of flows that found no slot, still counted under their owner. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PDTT_OVERFLOW_UIDS);
	__type(key, __u32); /* uid */
	__type(value, struct pdtt_counters);
} overflow SEC(".maps");

/* Flows refused a slot, so that their packets go to overflow at once. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PDTT_NOSLOT_FLOWS);
	__type(key, struct pdtt_flow_key);
	__type(value, struct pdtt_noslot);
} noslot SEC(".maps");

/* Slots each uid holds, against max_slots_per_uid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} uid_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PDTT_SUBUID_RANGES);
	__type(key, __u32);
	__type(value, struct pdtt_subuid_range);
} subuid_ranges SEC(".maps");

#endif /* PDTT_LIB_MAPS_H */
