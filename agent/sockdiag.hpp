// The kernel's socket tables through sock_diag netlink. Flows older than the
// agent: at start-up the agent enters every TCP socket found here into the
// kernel flow table with its owner, so running transfers are attributed.
#pragma once

#include "abi.hpp"

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
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
    uint64_t cookie = 0; // the socket cookie, as bpf_get_socket_cookie() gives it
    uint16_t lport = 0;
    uint16_t rport = 0;
    uint32_t uid = 0;
};

// The UDP sockets of one namespace, indexed by local port: finding a flow's
// receiver costs the sockets on its port, not all of them (the agent asks
// for every UDP flow every tick).
class UdpSockets {
public:
    UdpSockets() = default;
    UdpSockets(uint32_t netns, const std::vector<UdpSocket>& socks);

    // The socket that receives flow k: a connected socket of the same
    // 4-tuple first, then one bound to its local address or the wildcard.
    // Null when none does, or k is another namespace's.
    const UdpSocket* receiver(const pdtt_flow_key& k) const;
    bool alive(uint64_t cookie) const { return cookies_.count(cookie) != 0; }
    size_t size() const { return cookies_.size(); }

private:
    uint32_t netns_ = 0;
    std::unordered_map<uint16_t, std::vector<UdpSocket>> by_port_;
    std::unordered_set<uint64_t> cookies_;
};

// Every UDP socket of this namespace (inode netns). Throws Error on a
// netlink failure.
UdpSockets udp_sockets(uint32_t netns);

} // namespace pdtt
