/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Every map and tunable of the program: the state user space sees and sets. */
#ifndef PDTT_LIB_MAPS_H
#define PDTT_LIB_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pdtt.h"

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

/* Passive opens are attributed to the process that called listen(). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pdtt_port_key);
	__type(value, struct owner);
} listeners SEC(".maps");

/* Owners of local UDP ports: learnt from senders here, and kept by the
 * agent from the socket table for receivers that never sent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pdtt_port_key);
	__type(value, __u32);
} udp_owners SEC(".maps");

#endif /* PDTT_LIB_MAPS_H */
