// Counting everything a user moves: UDP, several interfaces, namespaces,
// a full flow table, a full ring, deltas while flows move. Real traffic
// through the real agent in private namespaces; every figure is checked
// against the bytes actually moved and against nftables' count of the wire.
#define BOOST_TEST_MODULE counting
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <ctime>
#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

struct Sums {
    uint64_t tx = 0, rx = 0, retrans = 0;
    int flows = 0;
};

// flow_close totals per uid, for records matching `pred`.
std::map<int64_t, Sums> closes_by_uid(const std::vector<json::object>& recs,
                                      const std::function<bool(const json::object&)>& pred = {}) {
    std::map<int64_t, Sums> out;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close" || (pred && !pred(r)))
            continue;
        auto& s = out[i64(r, "uid")];
        s.tx += u64(r, "tx_bytes");
        s.rx += u64(r, "rx_bytes");
        s.retrans += u64(r, "tcp_bytes_retrans");
        s.flows++;
    }
    return out;
}

// user_report totals per uid over the whole run.
std::map<int64_t, Sums> reports_by_uid(const std::vector<json::object>& recs) {
    std::map<int64_t, Sums> out;
    for (const auto& r : recs) {
        if (str(r, "type") != "user_report")
            continue;
        auto& s = out[i64(r, "uid")];
        s.tx += u64(r, "tx_bytes");
        s.rx += u64(r, "rx_bytes");
    }
    return out;
}

std::vector<json::object> records_so_far(const Process& agent) { return parse_lines(agent.out()); }

} // namespace

BOOST_FIXTURE_TEST_CASE(udp_server_and_connected_client_each_get_their_bytes, Lab) {
    start_agent({"-t", "1", "--udp-timeout", "2"});
    // alice: an unconnected UDP server on this host, several peers talk to it.
    auto alice_server = [&](const std::string& addr) {
        auto p = std::make_unique<Process>(
            as_user(alice, {PDTT_TRAFFIC_BIN, "serve", "--proto", "udp", "--bind", addr, "--port", "6000"}),
            host.name());
        BOOST_REQUIRE_MESSAGE(p->wait_for_line("ready", 10s), "alice's server: " << p->err());
        return p;
    };
    auto a4 = alice_server(link.a_ip4()), a6 = alice_server(link.a_ip6());
    // bob: a connected UDP client of a server on the peer.
    auto peer4 = serve(link.b_ip4(), {"--proto", "udp"}), peer6 = serve(link.b_ip6(), {"--proto", "udp"});

    Sums alice_want, bob_want;
    std::vector<std::unique_ptr<Process>> peers;
    for (int i = 0; i < 3; i++) { // three peers to alice over IPv4, two over IPv6
        const std::string to = i < 2 ? link.a_ip4() : link.a_ip6();
        peers.push_back(std::make_unique<Process>(std::vector<std::string>{PDTT_TRAFFIC_BIN, "send", "--proto", "udp",
                                                                           "--to", to, "--port", "6000", "--tx",
                                                                           "120000", "--rx", "60000", "--size", "1000"},
                                                  peer.name()));
        alice_want.rx += 120'000;
        alice_want.tx += 60'000;
        alice_want.flows++;
    }
    peers.push_back(std::make_unique<Process>(std::vector<std::string>{PDTT_TRAFFIC_BIN, "send", "--proto", "udp",
                                                                       "--to", link.a_ip6(), "--port", "6000", "--tx",
                                                                       "50000", "--rx", "200000", "--size", "1200"},
                                              peer.name()));
    alice_want.rx += 50'000;
    alice_want.tx += 200'000;
    alice_want.flows++;
    transfer(bob, link.b_ip4(), 300'000, 90'000, 1, {"--proto", "udp", "--size", "1400"});
    transfer(bob, link.b_ip6(), 80'000, 400'000, 1, {"--proto", "udp", "--size", "1100"});
    bob_want = {.tx = 380'000, .rx = 490'000, .flows = 2};
    for (auto& p : peers) {
        auto st = p->wait(30s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "peer transfer failed: " << p->err());
    }

    // alice's server still holds its socket: her flows end by idle timeout.
    BOOST_TEST(
        wait_until([&] { return closes_by_uid(records_so_far(*agent))[alice.uid()].flows == alice_want.flows; }, 15s),
        "alice's idle UDP flows were closed by the timeout");
    auto recs = stop_agent();
    auto closes = closes_by_uid(recs, [](const json::object& r) { return str(r, "proto") == "udp"; });
    for (auto [u, want] : {std::pair{&alice, alice_want}, std::pair{&bob, bob_want}}) {
        BOOST_TEST_CONTEXT("user " << u->name()) {
            const Sums& got = closes[u->uid()];
            BOOST_TEST(got.flows == want.flows);
            // pdtt-traffic's UDP moves every datagram exactly once (lock-step).
            BOOST_TEST(got.tx == want.tx);
            BOOST_TEST(got.rx == want.rx);
            FileSums f = read_user_file(user_file(*u));
            BOOST_TEST(f.tx == got.tx);
            BOOST_TEST(f.rx == got.rx);
        }
    }
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && i64(r, "uid") == alice.uid())
            BOOST_TEST(str(r, "direction") == "inbound");
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(two_interfaces_each_record_names_its_own, Lab) {
    QuietNetns peer2;
    VethPair link2{&host, &peer2, 8};
    NoMld no_mld2{host, link2.a_name(), peer2, link2.b_name()};
    WireCount wire2{host, link2.a_name()};
    pin_neighbours(link2, host, peer2);
    auto s1 = serve(link.b_ip4()), s2 = serve(link2.b_ip4(), {}, &peer2);
    start_agent({"-i", link.a_name(), "-i", link2.a_name(), "-t", "1"});
    transfer(bob, link.b_ip4(), 600'000, 100'000);
    transfer(alice, link2.b_ip4(), 200'000, 700'000);
    auto recs = stop_agent();

    std::map<std::string, Sums> by_iface;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close") {
            auto& s = by_iface[str(r, "iface")];
            s.tx += u64(r, "tx_bytes");
            s.retrans += u64(r, "tcp_bytes_retrans");
            s.rx += u64(r, "rx_bytes");
            s.flows++;
            BOOST_TEST(i64(r, "uid") == (str(r, "iface") == link.a_name() ? bob.uid() : alice.uid()));
        }
    BOOST_TEST(by_iface.size() == 2u);
    const Sums &one = by_iface[link.a_name()], &two = by_iface[link2.a_name()];
    BOOST_TEST(sent_ok(one.tx, one.retrans, 600'000 + kTrafficHeader));
    BOOST_TEST(received_ok(one.rx, 100'000, resent_bytes_max(peer)));
    BOOST_TEST(sent_ok(two.tx, two.retrans, 200'000 + kTrafficHeader));
    BOOST_TEST(received_ok(two.rx, 700'000, resent_bytes_max(peer2)));
    check_wire(recs, {&wire2});
    BOOST_TEST(attached_to(link2.a_name(), link2.a_ifindex()).empty());
}

BOOST_FIXTURE_TEST_CASE(a_twin_namespace_with_the_same_five_tuple_is_neither_reported_nor_counted, Lab) {
    // A second host namespace wired exactly like the first: same addresses,
    // same ports, at the same time. The agent watches only the first; the
    // twin's traffic never crosses a monitored interface, so this shows that
    // another namespace's flows leave no trace, not how equal keys that
    // cross the same interface are kept apart.
    Netns host2, peer2;
    VethPair twin{&host2, &peer2, 7};
    auto s1 = serve(link.b_ip4()), s2 = serve(twin.b_ip4(), {}, &peer2);
    start_agent({"-t", "1"});
    const std::vector<std::string> same_port{"--sport", "47001", "--hold-ms", "500"};
    auto here = start_transfer(bob, link.b_ip4(), 300'000, 30'000, 1, same_port);
    auto twin_argv = std::vector<std::string>{PDTT_TRAFFIC_BIN, "send",  "--to",      twin.b_ip4(),
                                              "--port",         kPort,   "--tx",      "900000",
                                              "--rx",           "90000", "--uid",     std::to_string(alice.uid()),
                                              "--sport",        "47001", "--hold-ms", "500"};
    Process there(twin_argv, host2.name());
    for (Process* p : {here.get(), &there}) {
        auto st = p->wait(30s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << p->err());
    }
    auto recs = stop_agent();
    auto closes = closes_by_uid(recs);
    BOOST_TEST(closes.size() == 1u, "only the watched namespace's flow is reported");
    BOOST_TEST(closes[bob.uid()].flows == 1);
    BOOST_TEST(sent_ok(closes[bob.uid()].tx, closes[bob.uid()].retrans, 300'000 + kTrafficHeader),
               "not merged with the twin's 900000");
    BOOST_TEST(received_ok(closes[bob.uid()].rx, 30'000, resent_bytes_max(peer)));
    BOOST_TEST(closes.count(alice.uid()) == 0u);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(another_namespaces_traffic_over_the_monitored_link_is_unattributed, Lab) {
    // A container-style namespace on the monitored interface itself: a
    // macvlan of the agent's veth end, with its own address (.3). Its
    // frames leave through that veth's egress and arrive through its
    // ingress, so the agent sees them; its sockets are not in the
    // monitored namespace, so their bytes are unattributed.
    QuietNetns twin;
    run_ok("ip -n " + host.name() + " link add pdtmv link " + link.a_name() + " type macvlan mode bridge");
    run_ok("ip -n " + host.name() + " link set pdtmv netns " + twin.name());
    run_ok("ip -n " + twin.name() + " addr add 10.200.7.3/24 dev pdtmv");
    run_ok("ip -n " + twin.name() + " link set pdtmv up");
    run_ok("ip -n " + twin.name() + " neigh replace " + link.b_ip4() + " lladdr " + mac_of(peer.name(), link.b_name()) +
           " dev pdtmv nud permanent");
    run_ok("ip -n " + peer.name() + " neigh replace 10.200.7.3 lladdr " + mac_of(twin.name(), "pdtmv") + " dev " +
           link.b_name() + " nud permanent");
    auto tcp = serve(link.b_ip4()), udp = serve(link.b_ip4(), {"--proto", "udp"});
    start_agent({"-t", "1", "--udp-timeout", "2"});
    transfer(bob, link.b_ip4(), 200'000, 100'000);
    // alice's TCP and UDP in the twin namespace, to the same servers.
    for (std::vector<std::string> extra : {std::vector<std::string>{}, {"--proto", "udp", "--size", "1000"}}) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "send",   "--to",  link.b_ip4(),
                                      "--port",         kPort,    "--tx",  "300000",
                                      "--rx",           "150000", "--uid", std::to_string(alice.uid())};
        argv.insert(argv.end(), extra.begin(), extra.end());
        Process p(argv, twin.name());
        auto st = p.wait(30s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "the twin's transfer failed: " << p.err());
    }
    tcp_settled(twin);
    auto recs = stop_agent();
    auto closes = closes_by_uid(recs);
    auto reports = reports_by_uid(recs);
    BOOST_TEST(closes[bob.uid()].flows == 1);
    BOOST_TEST(sent_ok(closes[bob.uid()].tx, closes[bob.uid()].retrans, 200'000 + kTrafficHeader));
    BOOST_TEST(received_ok(closes[bob.uid()].rx, 100'000, resent_bytes_max(peer)));
    std::string alices;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && i64(r, "uid") == alice.uid())
            alices += " " + str(r, "proto") + " " + std::to_string(u64(r, "tx_bytes")) + "/" +
                      std::to_string(u64(r, "rx_bytes"));
    BOOST_TEST(alices.empty(), "flows of another namespace's sockets were reported:" << alices);
    BOOST_TEST(reports.count(alice.uid()) == 0u, "another namespace's bytes were counted for its user");
    BOOST_TEST(reports[-1].tx >= 300'000u + kTrafficHeader + 300'000u, reports[-1].tx);
    BOOST_TEST(reports[-1].rx >= 2 * 150'000u, reports[-1].rx);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(a_full_flow_table_loses_no_byte_and_recovers, Lab) {
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1", "--flow-table-size", "64"});
    // 300 connections open at once against 64 slots.
    transfer(bob, link.b_ip4(), 20'000, 10'000, 300, {"--parallel", "300", "--hold-ms", "1500"});
    // Pressure over: the next flow is attributed again.
    transfer(alice, link.b_ip4(), 50'000, 5'000);
    auto recs = stop_agent();

    uint64_t tx = 0, rx = 0, full = 0, bob_star = 0;
    for (const auto& r : recs) {
        if (str(r, "type") == "user_report") {
            tx += u64(r, "tx_bytes");
            rx += u64(r, "rx_bytes");
            if (i64(r, "uid") == bob.uid())
                for (const auto& c : r.at("connections").as_array())
                    if (str(c.as_object(), "local") == "*" && str(c.as_object(), "remote") == "*")
                        bob_star += u64(c.as_object(), "tx_bytes");
        } else if (str(r, "type") == "agent_stats") {
            full = u64(r, "flow_table_full") + u64(r, "flow_share_full");
            BOOST_TEST(u64(r, "flow_table_size") == 64u);
        }
    }
    // Every byte is somewhere: in bob's flows that got a slot, or in his
    // overflow row.
    // Exactly what crossed the wire, which is what was moved plus at most
    // what either side resent.
    check_wire(recs);
    const uint64_t moved_tx = 300 * (20'000 + kTrafficHeader) + 50'000 + kTrafficHeader,
                   moved_rx = 300 * 10'000 + 5'000;
    BOOST_TEST(wire_ok(tx, moved_tx, resent_bytes_max(host)), tx << " vs " << moved_tx);
    BOOST_TEST(wire_ok(rx, moved_rx, resent_bytes_max(peer)), rx << " vs " << moved_rx);
    BOOST_TEST(full > 0u, "flows without a slot are counted in agent_stats");
    auto reports = reports_by_uid(recs);
    BOOST_TEST(reports[-1].tx == 0u, "no byte of a flow without a slot is unattributed");
    BOOST_TEST(bob_star > 0u, "bob's flows without a slot are his, in one * -> * row");
    BOOST_TEST(wire_ok(reports[bob.uid()].tx, 300 * (20'000 + kTrafficHeader), resent_bytes_max(host)),
               "all of bob's bytes are bob's: " << reports[bob.uid()].tx);
    auto closes = closes_by_uid(recs);
    BOOST_TEST(closes[alice.uid()].flows == 1, "after the pressure, a new flow is attributed");
    BOOST_TEST(sent_ok(closes[alice.uid()].tx, closes[alice.uid()].retrans, 50'000 + kTrafficHeader));
}

BOOST_FIXTURE_TEST_CASE(an_interface_that_goes_away_is_counted_again_when_it_comes_back, Lab) {
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    const std::string ns = "ip -n " + host.name() + " ";

    // Down and up: the attachments stay.
    run_ok(ns + "link set " + link.a_name() + " down");
    run_ok(ns + "link set " + link.a_name() + " up");
    BOOST_REQUIRE(wait_until(
        [&] { return capture(ns + "-br link show dev " + link.a_name()).find(" UP ") != std::string::npos; }, 10s));
    transfer(bob, link.b_ip4(), 100'000, 20'000);

    // Deleted: reported, and the agent keeps running.
    run_ok(ns + "link del " + link.a_name());
    BOOST_TEST_REQUIRE(wait_until([&] { return agent->err().find("was deleted") != std::string::npos; }, 10s),
                       agent->err());
    BOOST_TEST(wait_until(
                   [&] {
                       for (const auto& r : parse_lines(agent->out()))
                           if (str(r, "type") == "agent_stats" && u64(r, "interfaces_missing") == 1)
                               return true;
                       return false;
                   },
                   5s),
               "agent_stats counts the missing interface");

    // Re-created under the same name: attached again, counting resumes.
    run_ok(ns + "link add " + link.a_name() + " type veth peer name " + link.b_name() + " netns " + peer.name());
    run_ok(ns + "addr add " + link.a_ip4() + "/24 dev " + link.a_name());
    run_ok("ip -n " + peer.name() + " addr add " + link.b_ip4() + "/24 dev " + link.b_name());
    run_ok(ns + "link set " + link.a_name() + " up");
    run_ok("ip -n " + peer.name() + " link set " + link.b_name() + " up");
    BOOST_TEST_REQUIRE(wait_until([&] { return agent->err().find("is back") != std::string::npos; }, 10s),
                       agent->err());
    // The server's listening socket survives its address going and coming back.
    transfer(alice, link.b_ip4(), 300'000, 40'000);
    BOOST_TEST(attached() == "tcx-ingress tcx-egress ", "tc on both sides of a veth: " << attached());
    auto recs = stop_agent();
    auto closes = closes_by_uid(recs);
    BOOST_TEST(closes[bob.uid()].flows == 1);
    BOOST_TEST(sent_ok(closes[bob.uid()].tx, closes[bob.uid()].retrans, 100'000 + kTrafficHeader));
    BOOST_TEST(closes[alice.uid()].flows == 1, "counting resumed on the new interface");
    BOOST_TEST(sent_ok(closes[alice.uid()].tx, closes[alice.uid()].retrans, 300'000 + kTrafficHeader));
    BOOST_TEST(received_ok(closes[alice.uid()].rx, 40'000, resent_bytes_max(peer)));
}

namespace {

// Seconds since the epoch of an RFC 3339 UTC timestamp with microseconds.
double ts_seconds(const std::string& ts) {
    std::tm tm{};
    const char* rest = ::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    BOOST_REQUIRE_MESSAGE(rest, "not an RFC 3339 time: " << ts);
    return double(::timegm(&tm)) + std::strtod(rest, nullptr); // ".123456Z"
}

// A flow's identity across its records.
std::string flow_of(const json::object& r) {
    if (r.contains("flow_id"))
        return json::serialize(r.at("flow_id"));
    return str(r, "proto") + " " + str(r, "local") + ":" + std::to_string(u64(r, "lport")) + " " + str(r, "remote") +
           ":" + std::to_string(u64(r, "rport"));
}

// The four counters of a flow record.
struct Four {
    uint64_t tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
    explicit Four(const json::object& r) :
        tx_bytes(u64(r, "tx_bytes")), rx_bytes(u64(r, "rx_bytes")), tx_packets(u64(r, "tx_packets")),
        rx_packets(u64(r, "rx_packets")) {}
    Four() = default;
    bool empty() const { return tx_bytes == 0 && rx_bytes == 0 && tx_packets == 0 && rx_packets == 0; }
    Four& operator+=(const Four& o) {
        tx_bytes += o.tx_bytes;
        rx_bytes += o.rx_bytes;
        tx_packets += o.tx_packets;
        rx_packets += o.rx_packets;
        return *this;
    }
};

uint64_t last_stat(const std::vector<json::object>& recs, const char* key) {
    uint64_t v = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "agent_stats")
            v = u64(r, key);
    return v;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(flow_delta_records_come_at_most_once_a_second_and_add_up_to_the_close, Lab) {
    auto srv = serve(link.b_ip4());
    // The peer's replies shaped to 256 Mbit/s: 80 MB take about 2.5 s, so
    // alice's flow moves bytes across several sweeps and a report, and at
    // that rate packets arrive within any tick, however short.
    run_ok(peer.exec("tc qdisc add dev " + link.b_name() + " root tbf rate 256mbit burst 64kb latency 200ms"));
    start_agent({"-t", "2"});
    auto slow = start_transfer(alice, link.b_ip4(), 50'000, 80'000'000);
    // bob moves his bytes at once, then holds the connection idle for 3 s.
    transfer(bob, link.b_ip4(), 100'000, 100'000, 1, {"--hold-ms", "3000"});
    auto st = slow->wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << slow->err());
    auto recs = stop_agent();

    struct Seen {
        std::vector<double> delta_ts;
        Four deltas, close;
        bool closed = false;
        int64_t uid = 0;
        uint64_t duration_ms = 0;
    };
    std::map<std::string, Seen> flows;
    for (const auto& r : recs) {
        std::string type = str(r, "type");
        if (type != "flow_delta" && type != "flow_close")
            continue;
        Seen& f = flows[flow_of(r)];
        f.uid = i64(r, "uid");
        Four c(r);
        if (type == "flow_delta") {
            BOOST_TEST_INFO("flow_delta " << json::serialize(r));
            BOOST_TEST(!c.empty(), "a delta that moved nothing");
            BOOST_TEST(!f.closed, "a delta after the flow's close");
            f.delta_ts.push_back(ts_seconds(str(r, "ts")));
            f.deltas += c;
        } else {
            f.close = c;
            f.closed = true;
            f.duration_ms = u64(r, "duration_ms");
        }
    }
    BOOST_TEST(flows.size() == 2u);
    for (const auto& [id, f] : flows) {
        BOOST_TEST_CONTEXT("flow " << id << " of uid " << f.uid) {
            BOOST_TEST(f.closed);
            // Sweeps are a second apart; half a second leaves room for a late
            // one, and none for two records in one tick.
            for (size_t i = 1; i < f.delta_ts.size(); i++)
                BOOST_TEST(f.delta_ts[i] - f.delta_ts[i - 1] >= 0.5, "deltas " << i - 1 << " and " << i << " are "
                                                                               << f.delta_ts[i] - f.delta_ts[i - 1]
                                                                               << " s apart");
            BOOST_TEST(f.delta_ts.size() <= f.duration_ms / 1000 + 1, f.delta_ts.size()
                                                                          << " deltas in " << f.duration_ms << " ms");
            // The deltas are what moved before the close's totals.
            BOOST_TEST(f.deltas.tx_bytes <= f.close.tx_bytes);
            BOOST_TEST(f.deltas.rx_bytes <= f.close.rx_bytes);
            BOOST_TEST(f.deltas.tx_packets <= f.close.tx_packets);
            BOOST_TEST(f.deltas.rx_packets <= f.close.rx_packets);
        }
        if (f.uid == alice.uid()) {
            BOOST_TEST(f.delta_ts.size() >= 2u, "alice's flow moved bytes for over two seconds");
            BOOST_TEST(received_ok(f.close.rx_bytes, 80'000'000, resent_bytes_max(peer)));
            // Much of it went out in deltas: all but the last partial second.
            BOOST_TEST(f.deltas.rx_bytes >= 20'000'000u, f.deltas.rx_bytes);
        } else {
            BOOST_TEST(f.uid == bob.uid());
            // bob's bytes moved in a moment; his idle seconds emit nothing.
            BOOST_TEST(f.delta_ts.size() <= 1u);
        }
    }
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(a_full_ring_drops_records_but_no_byte, Lab) {
    // alice serves on this host too, so inbound flows go through the ring.
    start_agent({"-t", "1", "--ring-buffer-mib", "1"});
    auto srv = serve(link.b_ip4());
    auto alice_srv = std::make_unique<Process>(
        as_user(alice, {PDTT_TRAFFIC_BIN, "serve", "--bind", link.a_ip4(), "--port", "5002"}), host.name());
    BOOST_REQUIRE_MESSAGE(alice_srv->wait_for_line("ready", 10s), alice_srv->err());
    // Frozen, the agent consumes nothing: 1 MiB holds some 6,500 records,
    // and 4,000 flows, outbound and inbound at once, open and close (two
    // records each) meanwhile, so the ring fills while both kinds are open.
    agent->signal(SIGSTOP);
    auto out = start_transfer(bob, link.b_ip4(), 1'000, 2'000, 2'000, {"--parallel", "8"});
    Process in({PDTT_TRAFFIC_BIN, "send", "--to", link.a_ip4(), "--port", "5002", "--tx", "1500", "--rx", "500",
                "--connections", "2000", "--parallel", "8"},
               peer.name());
    for (Process* p : {out.get(), &in}) {
        auto st = p->wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << p->err());
    }
    agent->signal(SIGCONT);
    auto recs = stop_agent();

    BOOST_TEST(last_stat(recs, "ring_drops") > 0u, "the ring overflowed and agent_stats says so");
    auto closes = closes_by_uid(recs);
    BOOST_TEST(closes[bob.uid()].flows + closes[alice.uid()].flows < 4'000, "some closes were lost");
    // Every byte is still some user's or unattributed, once.
    check_wire(recs);
    auto [tx, rx] = reported_totals(recs);
    const uint64_t moved_tx = 2'000 * (1'000 + kTrafficHeader) + 2'000 * 500,
                   moved_rx = 2'000 * 2'000 + 2'000 * (1'500 + kTrafficHeader);
    BOOST_TEST(wire_ok(tx, moved_tx, resent_bytes_max(host)), tx << " vs " << moved_tx);
    BOOST_TEST(wire_ok(rx, moved_rx, resent_bytes_max(peer)), rx << " vs " << moved_rx);
}

BOOST_FIXTURE_TEST_CASE(a_udp_flow_closes_with_its_socket_long_before_the_idle_timeout, Lab) {
    start_agent({"-t", "1", "--udp-timeout", "60"});
    auto peer_srv = serve(link.b_ip4(), {"--proto", "udp"});
    auto alice_srv = std::make_unique<Process>(
        as_user(alice, {PDTT_TRAFFIC_BIN, "serve", "--proto", "udp", "--bind", link.a_ip4(), "--port", "6000"}),
        host.name());
    BOOST_REQUIRE_MESSAGE(alice_srv->wait_for_line("ready", 10s), alice_srv->err());
    // bob's client socket closes when his transfer ends; alice's server
    // socket stays open after the peer's last datagram.
    Process to_alice({PDTT_TRAFFIC_BIN, "send", "--proto", "udp", "--to", link.a_ip4(), "--port", "6000", "--tx",
                      "40000", "--rx", "20000", "--size", "1000"},
                     peer.name());
    transfer(bob, link.b_ip4(), 30'000, 60'000, 1, {"--proto", "udp", "--size", "1000"});
    auto ended = Clock::now();
    auto st = to_alice.wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "peer transfer failed: " << to_alice.err());

    auto closed = [&](const TestUser& u) {
        for (const auto& r : parse_lines(agent->out()))
            if (str(r, "type") == "flow_close" && i64(r, "uid") == u.uid())
                return true;
        return false;
    };
    // Sweeps check the socket table every second.
    BOOST_TEST(wait_until([&] { return closed(bob); }, 5s), "bob's flow_close after his socket closed");
    auto waited = std::chrono::duration<double>(Clock::now() - ended).count();
    BOOST_TEST(waited < 5.0, waited);
    BOOST_TEST(!closed(alice), "alice's socket is open and her flow idle for far less than 60 s");
    auto recs = stop_agent();
    auto closes = closes_by_uid(recs);
    BOOST_TEST(closes[bob.uid()].flows == 1);
    BOOST_TEST(closes[bob.uid()].tx == 30'000u);
    BOOST_TEST(closes[bob.uid()].rx == 60'000u);
    auto reports = reports_by_uid(recs);
    BOOST_TEST(reports[alice.uid()].rx == 40'000u);
    BOOST_TEST(reports[alice.uid()].tx == 20'000u);
    check_wire(recs);
}
