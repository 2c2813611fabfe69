// Flows older than the agent: read the kernel's TCP socket table (sock_diag
// netlink) at start-up and enter every established socket into the kernel
// flow table with its owner, so running transfers are attributed.
#pragma once

#include "abi.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace pdtt {

struct SeedResult {
    uint64_t seeded = 0;    // entered into the flow table
    uint64_t skipped = 0;   // already there, or the table was full
};

// flows_fd: the kernel flows map; netns: inode stored in the flow keys.
// Throws Error on a netlink failure.
SeedResult seed_existing_flows(int flows_fd, uint32_t netns);

// A UDP socket of this namespace; addresses as in flow keys (16 bytes,
// IPv4-mapped), ports in host order. raddr/rport are zero unless connected.
struct UdpSocket {
    uint8_t laddr[16];
    uint8_t raddr[16];
    uint16_t lport = 0;
    uint16_t rport = 0;
    uint32_t uid = 0;
};

std::vector<UdpSocket> udp_sockets();

// Owner of the socket that receives flow k: a connected socket of the same
// 4-tuple first, then one bound to its local address or the wildcard.
std::optional<uint32_t> udp_receiver(const std::vector<UdpSocket>& socks, const pdtt_flow_key& k);

} // namespace pdtt
