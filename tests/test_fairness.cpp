// Fairness (README: What is counted): no unprivileged user can make other
// users' traffic go unattributed or uncounted, and deltas reach every
// interval's report however many flows move and however small the ring.
// Real kernel, namespaces, test users (issue #10).
#define BOOST_TEST_MODULE fairness
#include "agent_lab.hpp"

#include <cmath>
#include <ctime>
#include <map>

using namespace pdtt::test;

namespace {

const std::string kUdpFlows = std::string(PDTT_SOURCE_DIR) + "/tools/bench/udp-flows.py";

// Per-uid tx and rx summed over user_report (flow rows and overflow rows).
std::map<int64_t, std::pair<uint64_t, uint64_t>> per_uid(const std::vector<json::object>& recs) {
    std::map<int64_t, std::pair<uint64_t, uint64_t>> out;
    for (const auto& r : recs)
        if (str(r, "type") == "user_report") {
            auto& [tx, rx] = out[i64(r, "uid")];
            tx += u64(r, "tx_bytes");
            rx += u64(r, "rx_bytes");
        }
    return out;
}

uint64_t stat_sum(const std::vector<json::object>& recs, const char* key) {
    uint64_t last = 0; // cumulative since load: the last record has it all
    for (const auto& r : recs)
        if (str(r, "type") == "agent_stats")
            last = u64(r, key);
    return last;
}

// A UDP socket bound in ns that never reads: datagrams to it are dropped
// by its full buffer, never answered with ICMP.
std::unique_ptr<Process> udp_sink(const Netns& ns, const std::string& addr, int port) {
    std::string py = "import socket,time\ns=socket.socket(socket.AF_INET6 if ':' in '" + addr +
                     "' else socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('" + addr + "'," + std::to_string(port) +
                     "))\nprint('ready',flush=True)\ntime.sleep(600)\n";
    auto p = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/python3", "-c", py}, ns.name());
    BOOST_REQUIRE_MESSAGE(p->wait_for_line("ready", 10s), "UDP sink did not start: " << p->err());
    return p;
}

// udp-flows.py as user u in the host namespace: `flows` sockets, each
// sending `size` bytes a second for `seconds`.
std::unique_ptr<Process> udp_flows(const Lab& lab, const TestUser& u, const std::string& to, int port, int flows,
                                   int seconds, int size = 100, std::optional<double> burst_at = {}) {
    std::vector<std::string> argv{"prlimit", "--nofile=" + std::to_string(flows + 256)};
    auto user = Lab::as_user(u, {"/usr/bin/python3", kUdpFlows, to, std::to_string(port), std::to_string(flows),
                                 std::to_string(seconds), std::to_string(size)});
    if (burst_at)
        user.push_back(std::to_string(*burst_at));
    argv.insert(argv.end(), user.begin(), user.end());
    return std::make_unique<Process>(argv, lab.host.name());
}

uint64_t moved_total(Process& p) {
    auto st = p.wait(120s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "udp-flows failed: " << p.err());
    std::smatch m;
    std::string out = p.out();
    static const std::regex total(R"(total=(\d+))");
    BOOST_REQUIRE_MESSAGE(std::regex_search(out, m, total), "udp-flows printed no total: " << out);
    return std::stoull(m[1]);
}

} // namespace

// alice holds thousands of loopback connections (lo not monitored: they
// take no slot) and sends UDP from thousands of ports over the monitored
// link (her share of a 1,024-entry table, the rest in her overflow row):
// bob's transfer is exact, and all of alice's monitored bytes are alice's.
BOOST_FIXTURE_TEST_CASE(loopback_and_udp_floods_leave_other_users_exact, Lab) {
    start_agent({"-t", "1", "--flow-table-size", "1024"});
    auto lo_server = std::make_unique<Process>(
        std::vector<std::string>{PDTT_CHURN_BIN, "serve", "--bind", "127.0.0.1", "--port", "7100", "--ports", "4"},
        host.name());
    std::this_thread::sleep_for(300ms);
    Process held({PDTT_CHURN_BIN, "hold", "--to", "127.0.0.1", "--port", "7100", "--ports", "4", "--count", "3000",
                  "--bytes", "64", "--hold", "60", "--uid", std::to_string(alice.uid())},
                 host.name());
    BOOST_REQUIRE_MESSAGE(held.wait_for_line("held=3000", 60s),
                          "alice's loopback connections: " << held.out() << held.err());
    auto sink = udp_sink(peer, link.b_ip4(), 6100);
    auto flood = udp_flows(*this, alice, link.b_ip4(), 6100, 3000, 2);
    uint64_t alice_udp = moved_total(*flood);

    auto server = serve(link.b_ip4());
    transfer(bob, link.b_ip4(), 3'000'000, 1'000'000);
    held.signal(SIGTERM);
    held.wait(10s);
    std::this_thread::sleep_for(1500ms); // a tick or two: alice's overflow row and bob's close
    auto recs = stop_agent();

    auto users = per_uid(recs);
    uint64_t resent = resent_bytes_max(host) + resent_bytes_max(peer);
    BOOST_TEST(sent_ok(users[bob.uid()].first, retrans_of(recs, bob.uid()), 3'000'000 + kTrafficHeader),
               "bob's tx " << users[bob.uid()].first << " with alice flooding the table");
    BOOST_TEST(received_ok(users[bob.uid()].second, 1'000'000, resent), "bob's rx " << users[bob.uid()].second);
    BOOST_TEST(users[alice.uid()].first == alice_udp, "alice's tx (flows and overflow) " << users[alice.uid()].first
                                                                                         << " of the " << alice_udp
                                                                                         << " UDP bytes she sent");
    BOOST_TEST(users[-1].first + users[-1].second == 0u,
               "unattributed tx " << users[-1].first << ", rx " << users[-1].second);
    BOOST_TEST(stat_sum(recs, "flow_share_full") > 0u, "alice reached her share of the table");
    check_wire(recs);
}

// Connections flooded from the other namespace to a root listener here:
// their bytes are root's (the listener's), flows or overflow, and bob's
// transfer alongside is exact.
BOOST_FIXTURE_TEST_CASE(connection_flood_against_a_root_listener_stays_with_it, Lab) {
    start_agent({"-t", "1", "--flow-table-size", "1024"});
    auto flooded = std::make_unique<Process>(
        std::vector<std::string>{PDTT_CHURN_BIN, "serve", "--bind", link.a_ip4(), "--port", "7200"}, host.name());
    std::this_thread::sleep_for(300ms);
    constexpr uint64_t kFlood = 1500, kBytes = 200;
    Process held({PDTT_CHURN_BIN, "hold", "--to", link.a_ip4(), "--port", "7200", "--count", std::to_string(kFlood),
                  "--bytes", std::to_string(kBytes), "--hold", "60"},
                 peer.name());
    BOOST_REQUIRE_MESSAGE(held.wait_for_line("held=" + std::to_string(kFlood), 60s),
                          "the flood: " << held.out() << held.err());
    auto server = serve(link.b_ip4());
    transfer(bob, link.b_ip4(), 3'000'000, 1'000'000);
    held.signal(SIGTERM);
    held.wait(10s);
    auto recs = stop_agent();

    auto users = per_uid(recs);
    uint64_t resent = resent_bytes_max(host) + resent_bytes_max(peer);
    BOOST_TEST(sent_ok(users[bob.uid()].first, retrans_of(recs, bob.uid()), 3'000'000 + kTrafficHeader),
               "bob's tx " << users[bob.uid()].first << " with the table flooded");
    BOOST_TEST(received_ok(users[bob.uid()].second, 1'000'000, resent), "bob's rx " << users[bob.uid()].second);
    BOOST_TEST(received_ok(users[0].second, kFlood * kBytes, resent),
               "root's rx (the flooded listener) " << users[0].second << " of " << kFlood * kBytes);
    BOOST_TEST(wire_ok(users[0].first, kFlood * kBytes, resent),
               "root's tx (the flooded listener) " << users[0].first << " of " << kFlood * kBytes);
    BOOST_TEST(stat_sum(recs, "flow_share_full") > 0u, "root reached its share of the table");
    check_wire(recs);
}

double monotonic_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// 20,000 UDP flows moving 100 bytes each once a second through a 1 MiB
// ring: every interval's report carries what moved in it, and no loss is
// reported that did not happen. Each second's datagrams go in one burst in
// the middle of an agent interval, so what moved in each is known; the
// flows open in the interval before, spread over most of it.
BOOST_FIXTURE_TEST_CASE(many_moving_flows_reach_every_interval_with_a_small_ring, Lab) {
    constexpr int kFlows = 20000, kSize = 100, kSeconds = 6;
    start_agent({"-t", "1", "--ring-buffer-mib", "1", "--flow-table-size", "131072", "--udp-timeout", "30"});
    auto sink = udp_sink(peer, link.b_ip4(), 6100);
    // Reports come on a fixed schedule; the first one's ts (wall clock)
    // says where its boundaries fall on the monotonic clock.
    BOOST_REQUIRE(wait_until([&] { return agent->out().find("agent_stats") != std::string::npos; }, 5s, 5ms));
    double report_at = 0;
    for (const auto& r : parse_lines(agent->out().substr(0, agent->out().rfind('\n') + 1)))
        if (str(r, "type") == "agent_stats") {
            std::string ts = str(r, "ts"); // 2026-12-01T19:14:33.852058Z
            std::tm tm{};
            ::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
            double wall = static_cast<double>(::timegm(&tm)) + std::stod(ts.substr(19, 7));
            timespec now{};
            ::clock_gettime(CLOCK_REALTIME, &now);
            report_at = monotonic_s() - (static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9 - wall);
            break;
        }
    double burst_at = report_at + 0.5;
    while (burst_at < monotonic_s() + 3.0)
        burst_at += 1.0;
    // Several senders: one process may not hold 20,000 descriptors here.
    constexpr int kSenders = 4;
    std::vector<std::unique_ptr<Process>> gens;
    for (int i = 0; i < kSenders; i++)
        gens.push_back(udp_flows(*this, alice, link.b_ip4(), 6100, kFlows / kSenders, kSeconds, kSize, burst_at));
    uint64_t moved = 0;
    std::string timing;
    for (auto& g : gens) {
        moved += moved_total(*g);
        timing += g->out();
    }
    BOOST_TEST_MESSAGE("senders:\n" << timing);
    BOOST_REQUIRE(moved == uint64_t{kFlows} * kSize * (kSeconds + 1)); // and one to open each flow
    std::this_thread::sleep_for(1s);
    auto recs = stop_agent();

    // alice's intervals with traffic: one burst each.
    std::vector<uint64_t> intervals;
    for (const auto& r : recs)
        if (str(r, "type") == "user_report" && i64(r, "uid") == alice.uid())
            intervals.push_back(u64(r, "tx_bytes"));
    for (const auto& r : recs)
        if (str(r, "type") == "agent_stats")
            BOOST_TEST_MESSAGE("agent_stats " << json::serialize(r));
    BOOST_TEST(intervals.size() == size_t{kSeconds} + 1, "alice's reports: " << intervals.size());
    const double want = double{kFlows} * kSize;
    for (size_t i = 0; i < intervals.size(); i++)
        BOOST_TEST(std::abs(static_cast<double>(intervals[i]) - want) <= 0.02 * want,
                   "interval " << i << ": " << intervals[i] << " bytes reported, " << want << " moved");
    uint64_t total = 0;
    for (uint64_t b : intervals)
        total += b;
    BOOST_TEST(total == moved, "alice's reports sum to " << total << " of the " << moved << " bytes moved");
    BOOST_TEST(stat_sum(recs, "ring_drops") == 0u, "ring_drops");
    BOOST_TEST(stat_sum(recs, "deltas_incomplete") == 0u, "deltas_incomplete");
    check_wire(recs);
}
