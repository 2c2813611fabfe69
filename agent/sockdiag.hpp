// Flows older than the agent: read the kernel's TCP socket table (sock_diag
// netlink) at start-up and enter every established socket into the kernel
// flow table with its owner, so running transfers are attributed.
#pragma once

#include <cstdint>

namespace pdtt {

struct SeedResult {
    uint64_t seeded = 0;    // entered into the flow table
    uint64_t skipped = 0;   // already there, or the table was full
};

// flows_fd: the kernel flows map; netns: inode stored in the flow keys.
// Throws Error on a netlink failure.
SeedResult seed_existing_flows(int flows_fd, uint32_t netns);

} // namespace pdtt
