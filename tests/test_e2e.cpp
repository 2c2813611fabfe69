// End to end: the real agent on one end of a veth pair between two private
// namespaces, real non-root users moving known byte counts through it, and
// its JSON lines and per-user files checked against what was moved and
// against what nftables counted on the wire.
#define BOOST_TEST_MODULE e2e
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// The lab with TCP servers on the peer's IPv4 and IPv6 addresses.
struct E2e : Lab {
    std::unique_ptr<Process> srv4 = serve(link.b_ip4()), srv6 = serve(link.b_ip6());
};

struct Expect {
    uint64_t tx = 0, rx = 0, retrans = 0;
    int flows = 0;
};

// What tcp_sock's bytes_acked and bytes_received hold beyond the payload
// when the socket closes: sequence space of SYN and FIN. An outbound flow's
// SYN is acked (tcp_ack in SYN_SENT); an accepted socket is born with its
// SYN-ACK acked. Each side's own FIN is acked before it closes. The peer's
// FIN is received before an inbound flow closes (pdtt-traffic's client
// closes first), but an outbound flow, closed first and orphaned, may go
// to TIME_WAIT on the bare ACK of its FIN, before the peer's FIN arrives.
constexpr uint64_t kAckedExtraOutbound = 2;   // SYN + FIN
constexpr uint64_t kAckedExtraInbound = 1;    // FIN

bool acked_ok(const json::object& r) {
    uint64_t extra = str(r, "direction") == "inbound" ? kAckedExtraInbound : kAckedExtraOutbound;
    return u64(r, "tcp_bytes_acked") == u64(r, "tx_bytes") - u64(r, "tcp_bytes_retrans") + extra;
}

bool tcp_received_ok(const json::object& r, uint64_t want_rx) {
    uint64_t got = u64(r, "tcp_bytes_received");
    return str(r, "direction") == "inbound" ? got == want_rx + 1 : (got == want_rx || got == want_rx + 1);
}

} // namespace

BOOST_FIXTURE_TEST_CASE(two_users_bytes_match_in_json_files_and_on_the_wire, E2e) {
    start_agent({"-t", "1"});
    std::map<int64_t, Expect> want;
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> per_flow;   // (uid, remote) -> tx, rx
    auto move = [&](const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx, int n = 1) {
        transfer(u, to, tx, rx, n);
        auto& w = want[u.uid()];
        w.tx += n * (tx + kTrafficHeader);
        w.rx += n * rx;
        w.flows += n;
        per_flow[{u.uid(), to}] = {tx + kTrafficHeader, rx};
    };
    move(alice, link.b_ip4(), 3'000'000, 1'000'000);
    move(alice, link.b_ip6(), 1'000'000, 250'000);
    move(bob, link.b_ip4(), 500'000, 2'000'000);
    move(bob, link.b_ip6(), 100'000, 300'000, 2);
    auto recs = stop_agent();
    const uint64_t peer_resent = resent_bytes_max(peer);

    std::map<int64_t, Expect> closes, reports;
    std::map<int64_t, int> opens;
    for (const auto& r : recs) {
        BOOST_TEST_REQUIRE(r.begin()->key() == "v");
        std::string type = str(r, "type");
        if (type == "flow_open") {
            opens[i64(r, "uid")]++;
            BOOST_TEST(str(r, "iface") == link.a_name());
        } else if (type == "flow_close") {
            int64_t uid = i64(r, "uid");
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            BOOST_TEST(str(r, "direction") == "outbound");
            BOOST_TEST(str(r, "comm") == "pdtt-traffic");
            BOOST_TEST(r.at("pid").is_number());
            BOOST_TEST(str(r, "user") == (uid == alice.uid() ? alice.name() : bob.name()));
            auto [ftx, frx] = per_flow.at({uid, str(r, "remote")});
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), ftx));
            BOOST_TEST(received_ok(u64(r, "rx_bytes"), frx, peer_resent), u64(r, "rx_bytes") << " vs " << frx);
            BOOST_TEST(acked_ok(r));
            BOOST_TEST(tcp_received_ok(r, frx));
            closes[uid].tx += u64(r, "tx_bytes");
            closes[uid].retrans += u64(r, "tcp_bytes_retrans");
            closes[uid].rx += u64(r, "rx_bytes");
            closes[uid].flows++;
        } else if (type == "user_report") {
            int64_t uid = i64(r, "uid");
            reports[uid].tx += u64(r, "tx_bytes");
            reports[uid].rx += u64(r, "rx_bytes");
        }
    }
    // The kernel's resend count agrees with the namespace's own.
    BOOST_TEST(retrans_of(recs) <= resent_bytes_max(host));
    // Handshakes, ACKs and FINs around the flows are unattributed; with the
    // users' bytes they make up exactly what crossed the link.
    check_wire(recs);

    for (const TestUser* u : {&alice, &bob}) {
        BOOST_TEST_CONTEXT("user " << u->name()) {
            const Expect& w = want.at(u->uid());
            BOOST_TEST(opens[u->uid()] == w.flows);
            BOOST_TEST(closes[u->uid()].flows == w.flows);
            const Expect& c = closes[u->uid()];
            BOOST_TEST(sent_ok(c.tx, c.retrans, w.tx), c.tx << " (" << c.retrans << " resent) vs " << w.tx);
            BOOST_TEST(received_ok(c.rx, w.rx, peer_resent), c.rx << " vs " << w.rx);
            // Interval reports add up to the flows' totals: nothing twice, nothing lost.
            BOOST_TEST(reports[u->uid()].tx == closes[u->uid()].tx);
            BOOST_TEST(reports[u->uid()].rx == closes[u->uid()].rx);

            FileSums f = read_user_file(user_file(*u));
            BOOST_TEST(f.reports > 0);
            BOOST_TEST(f.tx == reports[u->uid()].tx);
            BOOST_TEST(f.rx == reports[u->uid()].rx);
            BOOST_TEST(f.total == f.tx + f.rx);
            std::set<std::string> pairs{link.a_ip4() + " -> " + link.b_ip4(), link.a_ip6() + " -> " + link.b_ip6()};
            BOOST_TEST((f.pairs == pairs));
        }
    }
    BOOST_TEST(attached().empty(), "left attached after SIGTERM: " << attached());
}

BOOST_FIXTURE_TEST_CASE(transfer_started_before_the_agent_is_attributed, E2e) {
    // Connected before the agent starts; the bytes move after it is up. The
    // client waits 2 s after connecting, and is frozen within that pause
    // until the agent is ready, however long its start takes.
    auto early = start_transfer(bob, link.b_ip4(), 400'000, 600'000, 1, {"--pause-before-ms", "2000"});
    BOOST_REQUIRE(wait_until([&] { return capture(host.exec("ss -Htn state established")).find(link.b_ip4()) !=
                                          std::string::npos; },
                             5s, 1ms));
    early->signal(SIGSTOP);
    BOOST_REQUIRE_MESSAGE(capture(host.exec("ss -Htni state established")).find("bytes_sent:") == std::string::npos,
                          "the client sent before it was frozen");
    start_agent({"-t", "1"});
    early->signal(SIGCONT);
    auto st = early->wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << early->err());
    auto recs = stop_agent();
    int found = 0;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close")
            continue;
        found++;
        BOOST_TEST(i64(r, "uid") == bob.uid());
        BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), 400'000 + kTrafficHeader));
        BOOST_TEST(received_ok(u64(r, "rx_bytes"), 600'000, resent_bytes_max(peer)));
        BOOST_TEST(r.at("pid").is_null());   // the kernel never ran in the owner while we watched
    }
    BOOST_TEST(found == 1);
}

BOOST_FIXTURE_TEST_CASE(sigterm_writes_the_final_partial_report, E2e) {
    start_agent({"-t", "3600"});
    transfer(alice, link.b_ip4(), 700'000, 300'000);
    auto recs = stop_agent();
    FileSums f = read_user_file(user_file(alice));
    BOOST_TEST(f.reports == 1);
    BOOST_TEST(sent_ok(f.tx, retrans_of(recs), 700'000 + kTrafficHeader));
    BOOST_TEST(received_ok(f.rx, 300'000, resent_bytes_max(peer)));
    int stats = 0;
    for (const auto& r : recs)
        stats += str(r, "type") == "agent_stats";
    BOOST_TEST(stats == 1);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(sighup_after_rotation_starts_a_new_file_and_loses_nothing, E2e) {
    start_agent({"-t", "1"});
    transfer(alice, link.b_ip4(), 800'000, 100'000);
    fs::path file = user_file(alice), rotated = file.string() + ".1";
    BOOST_REQUIRE(wait_until([&] { return read_user_file(file).tx >= 800'000; }, 10s));
    fs::rename(file, rotated);
    agent->signal(SIGHUP);
    transfer(alice, link.b_ip6(), 200'000, 900'000);
    auto recs = stop_agent();
    BOOST_TEST_REQUIRE(fs::exists(file));
    FileSums a = read_user_file(rotated), b = read_user_file(file);
    BOOST_TEST(sent_ok(a.tx + b.tx, retrans_of(recs), 1'000'000 + 2 * kTrafficHeader));
    BOOST_TEST(received_ok(a.rx + b.rx, 1'000'000, resent_bytes_max(peer)));
    BOOST_TEST(b.pairs.count(link.a_ip6() + " -> " + link.b_ip6()) == 1u);
}

BOOST_FIXTURE_TEST_CASE(kill_9_leaves_nothing_attached_and_the_next_start_works, E2e) {
    start_agent();
    BOOST_TEST(attached() == "xdp tcx ");
    agent->signal(SIGKILL);
    BOOST_REQUIRE(agent->wait(5s).has_value());
    BOOST_TEST(wait_until([&] { return attached().empty(); }, 5s), "left attached after kill -9: " << attached());
    start_agent({"-t", "1"});
    transfer(bob, link.b_ip4(), 100'000, 100'000);
    auto recs = stop_agent();
    int closes = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && i64(r, "uid") == bob.uid()) {
            closes++;
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), 100'000 + kTrafficHeader));
        }
    BOOST_TEST(closes == 1);
}

BOOST_FIXTURE_TEST_CASE(the_original_command_line_works_under_the_original_name, E2e) {
    fs::path alias = dir / "pdtt_xdp_user";
    fs::create_symlink(PDTT_AGENT_BIN, alias);
    // The original README's form: pdtt_xdp_user -i IFACE -l PREFIX -t SECONDS,
    // text on the console; -c only keeps a host's /etc/pdtt.conf out.
    agent = std::make_unique<Process>(std::vector<std::string>{alias.string(), "-i", link.a_name(), "-l",
                                                               (dir / "traffic").string(), "-t", "1", "-c",
                                                               no_config.string()},
                                      host.name());
    BOOST_REQUIRE_MESSAGE(agent_ready(*agent), agent->err());
    transfer(alice, link.b_ip4(), 250'000, 50'000);
    tcp_settled(host);
    tcp_settled(peer);
    agent->signal(SIGINT);
    auto st = agent->wait(2s);
    BOOST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 0);
    // No resend count in text: sent bytes may exceed what was written by at
    // most what this namespace resent.
    FileSums f = read_user_file(dir / ("traffic-" + alice.name() + ".log"));
    BOOST_TEST(wire_ok(f.tx, 250'000 + kTrafficHeader, resent_bytes_max(host)), f.tx);
    BOOST_TEST(received_ok(f.rx, 50'000, resent_bytes_max(peer)), f.rx);
    // Every file together, unattributed's too, holds what crossed the link.
    uint64_t tx = 0, rx = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind("traffic-", 0) == 0) {
            FileSums s = read_user_file(e.path());
            tx += s.tx;
            rx += s.rx;
        }
    WireCount::Totals w = wire.read();
    BOOST_TEST(w.unclassified == 0u);
    BOOST_TEST(tx == w.tx);
    BOOST_TEST(rx == w.rx);
    // The console table names the user on a row of its own.
    BOOST_TEST(agent->out().find("\n" + alice.name() + " ") != std::string::npos, agent->out());
}
