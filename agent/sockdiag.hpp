// The kernel's socket tables through sock_diag netlink. Flows older than the
// agent: at start-up the agent enters every TCP socket found here into the
// kernel flow table with its owner, so running transfers are attributed.
#pragma once

#include "abi.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace pdtt {

// Every TCP socket of this namespace in which payload can still move, as
// the kernel flow table would hold it; netns: the inode stored in the keys.
// Throws Error on a netlink failure.
std::vector<FlowEntry> find_existing_flows(uint32_t netns);

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
