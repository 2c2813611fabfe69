// The fallbacks the agent takes on older kernels, forced on this one with
// the test-only PDTT_TEST_FORCE: the classic tracepoint
// sock/inet_sock_set_state when tp_btf fails (found through tracefs, which
// the agent mounts when absent: `ip netns exec` gives it a fresh /sys
// without one), and clsact filters when TCX fails. Each runs the real agent
// on the lab's veth link, moves a known transfer, and checks the bytes
// against what was moved and what nftables saw, and that nothing stays
// attached after SIGTERM.
#define BOOST_TEST_MODULE fallbacks
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <cstdlib>
#include <thread>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// PDTT_TEST_FORCE for the agents started while it lives (they inherit it).
struct Force {
    explicit Force(const char* what) { ::setenv("PDTT_TEST_FORCE", what, 1); }
    ~Force() { ::unsetenv("PDTT_TEST_FORCE"); }
    Force(const Force&) = delete;
    Force& operator=(const Force&) = delete;
};

// The lab with a TCP server on the peer's IPv4 address.
struct Fallback : Lab {
    std::unique_ptr<Process> srv = serve(link.b_ip4());
};

constexpr uint64_t kTx = 2'000'000, kRx = 700'000;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The lines of text that contain part (the agent's "attached ..." lines
// out of a -v log).
std::string lines_with(const std::string& text, const std::string& part) {
    std::istringstream in(text);
    std::string line, out;
    while (std::getline(in, line))
        if (has(line, part))
            out += line + "\n";
    return out;
}

// Alice's one transfer, counted for her exactly, and everything on the wire
// in the users' totals. Call after the agent has stopped.
void check_alice(const Fallback& lab, const std::vector<json::object>& recs) {
    const uint64_t peer_resent = resent_bytes_max(lab.peer);
    int closes = 0;
    uint64_t report_tx = 0, report_rx = 0;
    for (const auto& r : recs) {
        const std::string type = str(r, "type");
        if (type == "flow_close" && i64(r, "uid") == lab.alice.uid()) {
            closes++;
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            BOOST_TEST(str(r, "iface") == lab.link.a_name());
            BOOST_TEST(str(r, "direction") == "outbound");
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), kTx + kTrafficHeader),
                       "sent " << u64(r, "tx_bytes") << " less resent " << u64(r, "tcp_bytes_retrans") << " vs "
                               << kTx + kTrafficHeader);
            BOOST_TEST(received_ok(u64(r, "rx_bytes"), kRx, peer_resent),
                       "received " << u64(r, "rx_bytes") << " vs " << kRx << " (+ at most " << peer_resent << ")");
        } else if (type == "user_report" && i64(r, "uid") == lab.alice.uid()) {
            report_tx += u64(r, "tx_bytes");
            report_rx += u64(r, "rx_bytes");
        }
    }
    BOOST_TEST(closes == 1, "one flow_close for alice's one connection");
    BOOST_TEST(sent_ok(report_tx, retrans_of(recs, lab.alice.uid()), kTx + kTrafficHeader),
               "alice's user_report tx " << report_tx);
    BOOST_TEST(received_ok(report_rx, kRx, peer_resent), "alice's user_report rx " << report_rx);
    lab.check_wire(recs);
}

} // namespace

BOOST_FIXTURE_TEST_CASE(classic_tracepoint_counts_and_detaches, Fallback) {
    Force force("classic-tracepoint");
    start_agent({"-t", "1", "-v"}); // -v: the agent names each tracepoint it attached
    const std::string err = agent->err();
    const std::string attached_lines = lines_with(err, "attached");
    BOOST_TEST(has(err, "attached tracepoint/sock/inet_sock_set_state"),
               "classic tracepoint attached: " << attached_lines);
    BOOST_TEST(!has(err, "attached tp_btf/"), "no tp_btf program attached: " << attached_lines);
    BOOST_TEST(!has(err, "cannot mount tracefs"), "tracefs mounted where absent");
    transfer(alice, link.b_ip4(), kTx, kRx);
    auto recs = stop_agent();
    check_alice(*this, recs);
    BOOST_TEST(attached() == "", "left attached after SIGTERM: " << attached());
}

BOOST_FIXTURE_TEST_CASE(clsact_filters_count_and_detach, Fallback) {
    Force force("clsact");
    start_agent({"-t", "1"});
    const std::string dev = link.a_name();
    const std::string egress = capture(host.exec("tc filter show dev " + dev + " egress"));
    const std::string ingress = capture(host.exec("tc filter show dev " + dev + " ingress"));
    BOOST_TEST(has(egress, "pdtt_egress"), "tc lists the pdtt egress filter: " << egress);
    BOOST_TEST(has(ingress, "pdtt_ingress"), "tc lists the pdtt ingress filter: " << ingress);
    BOOST_TEST(attached() == "clsact ", "while running, only clsact filters (no TCX, no XDP): " << attached());
    BOOST_TEST(has(agent->err(), "tc/clsact egress on " + dev), "the agent says it used clsact: " << agent->err());
    transfer(alice, link.b_ip4(), kTx, kRx);
    auto recs = stop_agent();
    check_alice(*this, recs);
    BOOST_TEST(attached() == "", "left attached after SIGTERM: " << attached());
}

namespace {

// Segments the kernel of ns sent (nstat): new ones and resent ones, each
// GSO super-packet as its segments.
uint64_t sent_segments(const Netns& ns) {
    std::string out = capture("nsenter --net=" + ns.path() + " nstat -asz TcpOutSegs TcpRetransSegs");
    uint64_t sum = 0;
    for (const char* name : {"TcpOutSegs", "TcpRetransSegs"}) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_search(out, m, std::regex(std::string(name) + R"(\s+(\d+))")),
                           "nstat printed " << name << ": " << out);
        sum += std::stoull(m[1]);
    }
    return sum;
}

} // namespace

// tx_packets and rx_packets on real TSO traffic (veth hands GSO super-packets
// through whole, so both ends' hooks see them) against the segments each
// kernel sent, new and resent (nstat TcpOutSegs + TcpRetransSegs; TcpInSegs
// counts one per skb, so the receiver's view is the sender's count). The
// default hooks, nothing forced. Measured on Linux 6.18: exactly one
// segment each way falls outside the flow's counts (before or after the
// flow knows its socket, so unattributed); GSO counted as one
// packet would be some 70 instead of some 1400.
BOOST_FIXTURE_TEST_CASE(gso_packets_are_counted_as_segments, Fallback) {
    start_agent({"-t", "1"});
    transfer(alice, link.b_ip4(), kTx, kRx);
    auto recs = stop_agent();
    const uint64_t host_segs = sent_segments(host), peer_segs = sent_segments(peer);
    int closes = 0;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close")
            continue;
        closes++;
        BOOST_TEST(u64(r, "tx_packets") + 1 == host_segs,
                   "tx_packets " << u64(r, "tx_packets") << " vs " << host_segs << " segments sent");
        BOOST_TEST(u64(r, "rx_packets") + 1 == peer_segs,
                   "rx_packets " << u64(r, "rx_packets") << " vs " << peer_segs << " segments the peer sent");
    }
    BOOST_TEST(closes == 1, "one flow_close for the one connection");
}
