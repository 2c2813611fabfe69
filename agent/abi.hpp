// C++ view of the kernel-to-user ABI (kern/pdtt.h): sizes pinned so that a
// change on one side that the other misses fails the build, not the data.
#pragma once

#include <cstddef>
#include <linux/types.h>

extern "C" {
#include "pdtt.h"
}

static_assert(sizeof(pdtt_flow_key) == 44, "pdtt_flow_key layout changed");
static_assert(sizeof(pdtt_counters) == 32, "pdtt_counters layout changed");
static_assert(sizeof(pdtt_flow) == 112, "pdtt_flow layout changed");
static_assert(sizeof(pdtt_udp_owner_key) == 8, "pdtt_udp_owner_key layout changed");
static_assert(sizeof(pdtt_event) == 152, "pdtt_event layout changed");
static_assert(offsetof(pdtt_event, key) == 72, "pdtt_event.key moved");
static_assert(offsetof(pdtt_event, comm) == 132, "pdtt_event.comm moved");

// One entry of the kernel flow table.
struct FlowEntry {
    pdtt_flow_key key;
    pdtt_flow flow;
};
