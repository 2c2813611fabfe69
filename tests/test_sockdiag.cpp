// UDP sockets from sock_diag, indexed by local port: who receives a flow,
// and which socket cookies are alive (for the udp_owners prune). No root.
#define BOOST_TEST_MODULE sockdiag
#include <boost/test/unit_test.hpp>

#include "fd.hpp"
#include "sockdiag.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <vector>

using namespace pdtt;

namespace {

constexpr uint32_t kNs = 4026531840u;

void v4(uint8_t out[16], const char* a) {
    std::memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    ::inet_pton(AF_INET, a, out + 12);
}

UdpSocket sock(const char* laddr, uint16_t lport, uint32_t uid, uint64_t cookie, const char* raddr = nullptr,
               uint16_t rport = 0) {
    UdpSocket u{};
    v4(u.laddr, laddr);
    if (raddr)
        v4(u.raddr, raddr);
    else
        std::memset(u.raddr, 0, 16);
    u.lport = lport;
    u.rport = rport;
    u.uid = uid;
    u.cookie = cookie;
    return u;
}

pdtt_flow_key key(const char* laddr, uint16_t lport, const char* raddr, uint16_t rport, uint32_t netns = kNs) {
    uint8_t l[16], r[16];
    v4(l, laddr);
    v4(r, raddr);
    return make_flow_key(l, lport, r, rport, IPPROTO_UDP, netns);
}

uint32_t netns_inode() {
    struct stat st {};
    BOOST_REQUIRE(::stat("/proc/self/ns/net", &st) == 0);
    return static_cast<uint32_t>(st.st_ino);
}

} // namespace

BOOST_AUTO_TEST_CASE(connected_socket_wins_over_bound_one) {
    UdpSockets t(kNs, {sock("0.0.0.0", 53, 100, 1), sock("10.0.0.1", 53, 200, 2, "10.0.0.9", 4000)});
    const UdpSocket* r = t.receiver(key("10.0.0.1", 53, "10.0.0.9", 4000));
    BOOST_REQUIRE(r);
    BOOST_TEST(r->uid == 200u);
    r = t.receiver(key("10.0.0.1", 53, "10.0.0.8", 4000));
    BOOST_REQUIRE(r);
    BOOST_TEST(r->uid == 100u);
    BOOST_TEST(r->cookie == 1u);
}

BOOST_AUTO_TEST_CASE(no_receiver_on_another_port_address_or_namespace) {
    UdpSockets t(kNs, {sock("10.0.0.1", 53, 100, 1)});
    BOOST_TEST(!t.receiver(key("10.0.0.1", 54, "10.0.0.9", 4000)));
    BOOST_TEST(!t.receiver(key("10.0.0.2", 53, "10.0.0.9", 4000)));
    BOOST_TEST(!t.receiver(key("10.0.0.1", 53, "10.0.0.9", 4000, kNs + 1)));
    BOOST_TEST(t.receiver(key("10.0.0.1", 53, "10.0.0.9", 4000)));
}

BOOST_AUTO_TEST_CASE(alive_knows_every_cookie) {
    UdpSockets t(kNs, {sock("0.0.0.0", 1, 0, 7), sock("0.0.0.0", 2, 0, 8)});
    BOOST_TEST(t.alive(7));
    BOOST_TEST(t.alive(8));
    BOOST_TEST(!t.alive(9));
    BOOST_TEST(t.size() == 2u);
}

// The reason for the index: the agent asks for every UDP flow every tick.
BOOST_AUTO_TEST_CASE(lookup_cost_does_not_grow_with_the_socket_count) {
    std::vector<UdpSocket> socks;
    for (uint32_t i = 0; i < 20000; i++)
        socks.push_back(sock("0.0.0.0", static_cast<uint16_t>(20000 + i), i, i + 1));
    UdpSockets t(kNs, socks);
    auto start = std::chrono::steady_clock::now();
    size_t found = 0;
    for (uint32_t i = 0; i < 20000; i++)
        found += t.receiver(key("10.0.0.1", static_cast<uint16_t>(20000 + i), "10.0.0.9", 9)) != nullptr;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(found == 20000u);
    // A scan would be 4e8 comparisons (about a second); the index, a few ms.
    BOOST_TEST(ms < 200.0, "20,000 lookups among 20,000 sockets took " << ms << " ms");
}

// A real socket, through the real netlink dump, with its real cookie.
BOOST_AUTO_TEST_CASE(the_dump_finds_a_bound_socket_with_its_cookie) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(s);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    BOOST_REQUIRE(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    uint64_t cookie = 0;
    socklen_t clen = sizeof(cookie);
    BOOST_REQUIRE(::getsockopt(s.get(), SOL_SOCKET, SO_COOKIE, &cookie, &clen) == 0);

    uint32_t ns = netns_inode();
    UdpSockets t = udp_sockets(ns);
    const UdpSocket* r = t.receiver(key("127.0.0.1", ntohs(a.sin_port), "127.0.0.2", 9, ns));
    BOOST_REQUIRE(r);
    BOOST_TEST(r->cookie == cookie);
    BOOST_TEST(r->uid == ::getuid());
    BOOST_TEST(t.alive(cookie));
}
