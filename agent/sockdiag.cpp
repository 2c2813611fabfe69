#include "sockdiag.hpp"

#include "errors.hpp"
#include "fd.hpp"
#include "names.hpp"
#include "wall_clock.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace pdtt {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw Error(kExitRuntime, "sock_diag: " + what + ": " + std::strerror(errno));
}

// Calls fn for every socket of `family` and `protocol` in one of `states` (a bitmask).
template <typename Fn> void dump(int family, uint8_t protocol, uint32_t states, Fn fn) {
    Fd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl)
        fail("socket");
    struct {
        nlmsghdr nlh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = static_cast<uint8_t>(family);
    msg.req.sdiag_protocol = protocol;
    msg.req.idiag_states = states;
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0)
        fail("send");

    std::vector<char> buf(1 << 16);
    for (;;) {
        ssize_t n = ::recv(nl.get(), buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("recv");
        }
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return;
            if (h->nlmsg_type == NLMSG_ERROR) {
                errno = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
                fail("dump");
            }
            fn(*reinterpret_cast<const inet_diag_msg*>(NLMSG_DATA(h)));
        }
    }
}

void to_key_addr(uint8_t out[16], int family, const __be32 addr[4]) {
    if (family == AF_INET) {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, addr, 4);
    } else {
        std::memcpy(out, addr, 16);
    }
}

} // namespace

std::vector<FlowEntry> find_existing_flows(uint32_t netns) {
    constexpr uint32_t kListen = 1u << TCP_LISTEN;
    // Every state in which payload can still move.
    constexpr uint32_t kOpen = (1u << TCP_ESTABLISHED) | (1u << TCP_FIN_WAIT1) | (1u << TCP_FIN_WAIT2) |
                               (1u << TCP_CLOSE_WAIT) | (1u << TCP_LAST_ACK) | (1u << TCP_CLOSING);
    std::set<uint16_t> listening;
    for (int fam : {AF_INET, AF_INET6})
        dump(fam, IPPROTO_TCP, kListen, [&](const inet_diag_msg& m) { listening.insert(ntohs(m.id.idiag_sport)); });

    std::vector<FlowEntry> found;
    uint64_t now = WallClock::mono_now_ns();
    for (int fam : {AF_INET, AF_INET6}) {
        dump(fam, IPPROTO_TCP, kOpen, [&](const inet_diag_msg& m) {
            uint8_t laddr[16], raddr[16];
            to_key_addr(laddr, fam, m.id.idiag_src);
            to_key_addr(raddr, fam, m.id.idiag_dst);
            pdtt_flow_key k =
                make_flow_key(laddr, ntohs(m.id.idiag_sport), raddr, ntohs(m.id.idiag_dport), IPPROTO_TCP, netns);
            pdtt_flow f{};
            f.uid = m.idiag_uid;
            f.open_ns = now; // the agent's start: the real open time is unknown
            f.family = is_v4_mapped(k.raddr) ? AF_INET : AF_INET6;
            f.direction = listening.count(k.lport) ? PDTT_DIR_INBOUND : PDTT_DIR_OUTBOUND;
            found.push_back({k, f});
        });
    }
    return found;
}

UdpSockets udp_sockets(uint32_t netns) {
    std::vector<UdpSocket> out;
    for (int fam : {AF_INET, AF_INET6}) {
        dump(fam, IPPROTO_UDP, ~0u, [&](const inet_diag_msg& m) {
            UdpSocket u{};
            to_key_addr(u.laddr, fam, m.id.idiag_src);
            to_key_addr(u.raddr, fam, m.id.idiag_dst);
            u.cookie = m.id.idiag_cookie[0] | static_cast<uint64_t>(m.id.idiag_cookie[1]) << 32;
            u.lport = ntohs(m.id.idiag_sport);
            u.rport = ntohs(m.id.idiag_dport);
            u.uid = m.idiag_uid;
            out.push_back(u);
        });
    }
    return UdpSockets(netns, out);
}

UdpSockets::UdpSockets(uint32_t netns, const std::vector<UdpSocket>& socks) : netns_(netns) {
    by_port_.reserve(socks.size());
    cookies_.reserve(socks.size());
    for (const UdpSocket& u : socks) {
        by_port_[u.lport].push_back(u);
        cookies_.insert(u.cookie);
    }
}

const UdpSocket* UdpSockets::receiver(const pdtt_flow_key& k) const {
    static const uint8_t any[16] = {};
    static const uint8_t any4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    auto same = [](const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, 16) == 0; };
    if (k.netns != netns_)
        return nullptr;
    auto it = by_port_.find(k.lport);
    if (it == by_port_.end())
        return nullptr;
    const UdpSocket* bound = nullptr;
    for (const UdpSocket& u : it->second) {
        if (u.rport == k.rport && same(u.raddr, k.raddr))
            return &u;
        bool unconnected = u.rport == 0;
        if (unconnected && (same(u.laddr, k.laddr) || same(u.laddr, any) || same(u.laddr, any4)))
            bound = &u;
    }
    return bound;
}

} // namespace pdtt
