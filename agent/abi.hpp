// C++ view of the kernel-to-user ABI (kern/pdtt.h): sizes pinned so that a
// change on one side that the other misses fails the build, not the data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <linux/types.h>

extern "C" {
#include "pdtt.h"
}

static_assert(sizeof(pdtt_flow_key) == 44, "pdtt_flow_key layout changed");
static_assert(sizeof(pdtt_counters) == 32, "pdtt_counters layout changed");
static_assert(sizeof(pdtt_flow) == 168, "pdtt_flow layout changed");
static_assert(sizeof(pdtt_port_key) == 8, "pdtt_port_key layout changed");
static_assert(sizeof(pdtt_owner) == 48, "pdtt_owner layout changed");
static_assert(sizeof(pdtt_event) == 168, "pdtt_event layout changed");
static_assert(offsetof(pdtt_event, key) == 88, "pdtt_event.key moved");
static_assert(offsetof(pdtt_event, comm) == 148, "pdtt_event.comm moved");
static_assert(sizeof(pdtt_delta_args) == 24, "pdtt_delta_args layout changed");
static_assert(sizeof(pdtt_subuid_range) == 16, "pdtt_subuid_range layout changed");

namespace pdtt {

// A flow key from its parts: addresses 16 bytes in network order (IPv4
// mapped), ports in host order, netns the namespace's inode.
inline pdtt_flow_key make_flow_key(const uint8_t* laddr, uint16_t lport, const uint8_t* raddr, uint16_t rport,
                                   uint8_t proto, uint32_t netns) {
    pdtt_flow_key k{};
    std::memcpy(k.laddr, laddr, sizeof(k.laddr));
    std::memcpy(k.raddr, raddr, sizeof(k.raddr));
    k.lport = lport;
    k.rport = rport;
    k.proto = proto;
    k.netns = netns;
    return k;
}

// One entry of the kernel flow table.
struct FlowEntry {
    pdtt_flow_key key;
    pdtt_flow flow;
};

// The record the kernel would emit for flow k in state f at ts_ns: how the
// agent hands the aggregator a close it decides itself (an idle UDP flow).
inline pdtt_event make_event(uint8_t type, uint64_t ts_ns, const pdtt_flow_key& k, const pdtt_flow& f) {
    pdtt_event e{};
    e.type = type;
    e.ts_ns = ts_ns;
    e.key = k;
    e.cnt = f.cnt;
    e.open_ns = f.open_ns;
    e.flow_id = f.id;
    e.cgroup = f.cgroup;
    e.uid = f.uid;
    e.pid = f.pid;
    e.ifindex = f.ifindex;
    e.family = f.family;
    e.direction = f.direction;
    std::memcpy(e.comm, f.comm, sizeof(e.comm));
    return e;
}

} // namespace pdtt
