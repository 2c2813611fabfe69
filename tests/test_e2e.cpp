// End to end: the real agent on one end of a veth pair between two private
// namespaces, real non-root users moving known byte counts through it, and
// its JSON lines and per-user files checked against what was moved and
// against what nftables counted on the wire.
#define BOOST_TEST_MODULE e2e
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>

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
constexpr uint64_t kAckedExtraOutbound = 2; // SYN + FIN
constexpr uint64_t kAckedExtraInbound = 1;  // FIN

bool acked_ok(const json::object& r) {
    uint64_t extra = str(r, "direction") == "inbound" ? kAckedExtraInbound : kAckedExtraOutbound;
    return u64(r, "tcp_bytes_acked") == u64(r, "tx_bytes") - u64(r, "tcp_bytes_retrans") + extra;
}

bool tcp_received_ok(const json::object& r, uint64_t want_rx) {
    uint64_t got = u64(r, "tcp_bytes_received");
    return str(r, "direction") == "inbound" ? got == want_rx + 1 : (got == want_rx || got == want_rx + 1);
}

// A do-nothing XDP program attached the way other tools do (netlink,
// generic mode), removed again on destruction.
class ForeignXdp {
public:
    ForeignXdp(const Netns& ns, const std::string& dev) : ns_(ns) {
        bpf_insn insns[2] = {};
        insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
        insns[0].dst_reg = BPF_REG_0;
        insns[0].imm = XDP_PASS;
        insns[1].code = BPF_JMP | BPF_EXIT;
        fd_ = bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign_pass", "GPL", insns, 2, nullptr);
        BOOST_REQUIRE_MESSAGE(fd_ >= 0, "cannot load a test XDP program: " << std::strerror(errno));
        EnterNetns in(ns_);
        ifindex_ = static_cast<int>(::if_nametoindex(dev.c_str()));
        BOOST_REQUIRE(ifindex_ > 0);
        BOOST_REQUIRE_MESSAGE(bpf_xdp_attach(ifindex_, fd_, XDP_FLAGS_SKB_MODE, nullptr) == 0,
                              "cannot attach the test XDP program");
        id_ = attached_id();
        BOOST_REQUIRE(id_ != 0u);
    }
    ~ForeignXdp() {
        EnterNetns in(ns_);
        bpf_xdp_detach(ifindex_, XDP_FLAGS_SKB_MODE, nullptr);
        ::close(fd_);
    }
    ForeignXdp(const ForeignXdp&) = delete;
    ForeignXdp& operator=(const ForeignXdp&) = delete;

    uint32_t id() const { return id_; }
    // The generic-mode program on the interface now (0: none).
    uint32_t attached_id() const {
        EnterNetns in(ns_);
        uint32_t id = 0;
        bpf_xdp_query_id(ifindex_, XDP_FLAGS_SKB_MODE, &id);
        return id;
    }

private:
    const Netns& ns_;
    int fd_ = -1, ifindex_ = 0;
    uint32_t id_ = 0;
};

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

} // namespace

BOOST_FIXTURE_TEST_CASE(two_users_bytes_match_in_json_files_and_on_the_wire, E2e) {
    start_agent({"-t", "1"});
    std::map<int64_t, Expect> want;
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> per_flow; // (uid, remote) -> tx, rx
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

BOOST_FIXTURE_TEST_CASE(inbound_and_outbound_tcp_each_have_their_direction_and_bytes, E2e) {
    // alice serves on this host; the peer connects to her. bob connects out.
    const std::string port = "5002";
    auto server = [&](const std::string& addr) {
        auto p = std::make_unique<Process>(as_user(alice, {PDTT_TRAFFIC_BIN, "serve", "--bind", addr, "--port", port}),
                                           host.name());
        BOOST_REQUIRE_MESSAGE(p->wait_for_line("ready", 10s), "alice's server: " << p->err());
        return p;
    };
    // After the agent, so that it sees the listen() that names the process.
    start_agent({"-t", "1"});
    auto a4 = server(link.a_ip4()), a6 = server(link.a_ip6());
    peer_transfer(link.a_ip4(), port, 700'000, 1'300'000);
    peer_transfer(link.a_ip6(), port, 200'000, 90'000);
    transfer(bob, link.b_ip4(), 400'000, 600'000);
    auto recs = stop_agent();
    const uint64_t host_resent = resent_bytes_max(host), peer_resent = resent_bytes_max(peer);

    // Seen from this host: alice received the peer's tx and sent its rx.
    std::map<std::string, std::pair<uint64_t, uint64_t>> alice_want{
        {link.b_ip4(), {1'300'000, 700'000 + kTrafficHeader}}, {link.b_ip6(), {90'000, 200'000 + kTrafficHeader}}};
    int inbound = 0, outbound = 0;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close")
            continue;
        BOOST_TEST_INFO("flow_close " << json::serialize(r));
        BOOST_TEST(acked_ok(r));
        if (i64(r, "uid") == alice.uid()) {
            inbound++;
            BOOST_TEST(str(r, "direction") == "inbound");
            BOOST_TEST(u64(r, "lport") == std::stoul(port));
            BOOST_TEST(str(r, "comm") == "pdtt-traffic"); // the process that called listen()
            auto [tx, rx] = alice_want.at(str(r, "remote"));
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), tx));
            BOOST_TEST(received_ok(u64(r, "rx_bytes"), rx, peer_resent));
            BOOST_TEST(tcp_received_ok(r, rx));
        } else {
            outbound++;
            BOOST_TEST(i64(r, "uid") == bob.uid());
            BOOST_TEST(str(r, "direction") == "outbound");
            BOOST_TEST(u64(r, "rport") == std::stoul(kPort));
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), 400'000 + kTrafficHeader));
            BOOST_TEST(received_ok(u64(r, "rx_bytes"), 600'000, peer_resent));
            BOOST_TEST(tcp_received_ok(r, 600'000));
        }
    }
    BOOST_TEST(inbound == 2);
    BOOST_TEST(outbound == 1);
    BOOST_TEST(retrans_of(recs) <= host_resent);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(an_outbound_flow_closed_before_the_peers_fin_received_no_fin, Lab) {
    // The peer's server is frozen while bob closes: its kernel acks bob's
    // FIN, bob's orphaned socket goes to TIME_WAIT on that ACK, and the
    // peer's FIN comes only after the flow has closed.
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    auto c = start_transfer(bob, link.b_ip4(), 300'000, 200'000, 1, {"--hold-ms", "1000"});
    // Frozen once bob has everything, within his 1 s hold before he closes.
    BOOST_REQUIRE(wait_until(
        [&] {
            return capture(host.exec("ss -Htni state established")).find("bytes_received:200000") != std::string::npos;
        },
        10s, 1ms));
    srv->signal(SIGSTOP);
    auto st = c->wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << c->err());
    BOOST_REQUIRE(wait_until(
        [&] {
            for (const auto& r : parse_lines(agent->out()))
                if (str(r, "type") == "flow_close")
                    return true;
            return false;
        },
        5s));
    srv->signal(SIGCONT);
    auto recs = stop_agent();
    int found = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close") {
            found++;
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            BOOST_TEST(acked_ok(r));
            BOOST_TEST(u64(r, "tcp_bytes_received") == 200'000u);
        }
    BOOST_TEST(found == 1);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(resent_bytes_count_again_and_tcp_bytes_retrans_says_how_many, E2e) {
    // Every tenth data packet is lost on its way in, on both ends (on ours
    // after the wire count, as a NIC's drop after XDP would be): both sides
    // resend, and the resent bytes crossed the wire twice.
    for (auto [ns, dev] : {std::pair{&peer, link.b_name()}, std::pair{&host, link.a_name()}}) {
        run_ok(ns->exec("nft add table netdev pdtt_loss"));
        run_ok(ns->exec("nft add chain netdev pdtt_loss in '{ type filter hook ingress device \"" + dev +
                        "\" priority 0; }'"));
        run_ok(ns->exec("nft add rule netdev pdtt_loss in meta l4proto tcp meta length '>' 200 numgen inc mod 10 5 "
                        "drop"));
    }
    start_agent({"-t", "1"});
    transfer(alice, link.b_ip4(), 3'000'000, 2'000'000);
    auto recs = stop_agent();
    int found = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close") {
            found++;
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            BOOST_TEST(u64(r, "tcp_bytes_retrans") > 0u, "the lost segments were resent");
            BOOST_TEST(u64(r, "tcp_bytes_retrans") <= resent_bytes_max(host));
            BOOST_TEST(sent_ok(u64(r, "tx_bytes"), u64(r, "tcp_bytes_retrans"), 3'000'000 + kTrafficHeader));
            BOOST_TEST(u64(r, "rx_bytes") > 2'000'000u, "the peer's resent bytes arrived twice");
            BOOST_TEST(received_ok(u64(r, "rx_bytes"), 2'000'000, resent_bytes_max(peer)));
            BOOST_TEST(acked_ok(r));
            BOOST_TEST(tcp_received_ok(r, 2'000'000));
        }
    BOOST_TEST(found == 1);
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(native_xdp_on_a_veth_attaches_and_counts_exactly, E2e) {
    start_agent({"-t", "1", "--ingress", "xdp", "--xdp-mode", "native"});
    BOOST_TEST(xdp_mode() == "native");
    transfer(alice, link.b_ip4(), 900'000, 2'500'000);
    transfer(bob, link.b_ip6(), 2'000'000, 300'000);
    auto recs = stop_agent();
    const uint64_t peer_resent = resent_bytes_max(peer);
    std::map<int64_t, Expect> got;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close") {
            auto& g = got[i64(r, "uid")];
            g.tx += u64(r, "tx_bytes");
            g.retrans += u64(r, "tcp_bytes_retrans");
            g.rx += u64(r, "rx_bytes");
            g.flows++;
        }
    BOOST_TEST(got.size() == 2u);
    BOOST_TEST(got[alice.uid()].flows == 1);
    BOOST_TEST(sent_ok(got[alice.uid()].tx, got[alice.uid()].retrans, 900'000 + kTrafficHeader));
    BOOST_TEST(received_ok(got[alice.uid()].rx, 2'500'000, peer_resent));
    BOOST_TEST(got[bob.uid()].flows == 1);
    BOOST_TEST(sent_ok(got[bob.uid()].tx, got[bob.uid()].retrans, 2'000'000 + kTrafficHeader));
    BOOST_TEST(received_ok(got[bob.uid()].rx, 300'000, peer_resent));
    check_wire(recs);
    BOOST_TEST(attached().empty(), "left attached after SIGTERM: " << attached());
}

BOOST_FIXTURE_TEST_CASE(exit_status_3_without_privilege, Lab) {
    // bob, with no capabilities, asks for what only root may do.
    Process p(
        as_user(bob, {PDTT_AGENT_BIN, "-c", no_config.string(), "-i", link.a_name(), "--no-files", "--stdout", "none"}),
        host.name());
    auto st = p.wait(15s);
    BOOST_REQUIRE_MESSAGE(st.has_value(), "the agent did not exit");
    BOOST_TEST(*st == 3, "exit status " << *st << "; stderr: " << p.err());
    BOOST_TEST(lines(p.err()) == 1, "one line on stderr: " << p.err());
    BOOST_TEST(p.err().find("CAP_BPF") != std::string::npos, p.err());
    BOOST_TEST(attached().empty());
}

BOOST_FIXTURE_TEST_CASE(exit_status_1_when_another_xdp_program_holds_the_interface, Lab) {
    ForeignXdp other(host, link.a_name());
    // Generic mode is what the agent picks on a veth, and what `other` holds.
    Process p({PDTT_AGENT_BIN, "-c", no_config.string(), "-i", link.a_name(), "--ingress", "xdp", "--xdp-mode",
               "generic", "--no-files", "--stdout", "none"},
              host.name());
    auto st = p.wait(15s);
    BOOST_REQUIRE_MESSAGE(st.has_value(), "the agent did not exit");
    BOOST_TEST(*st == 1, "exit status " << *st << "; stderr: " << p.err());
    BOOST_TEST(lines(p.err()) == 1, "one line on stderr: " << p.err());
    BOOST_TEST(p.err().find("another XDP program") != std::string::npos, p.err());
    // Nothing of ours stays, and the other tool's program is untouched.
    BOOST_TEST(other.attached_id() == other.id());
    BOOST_TEST(attached() == "xdp ", "only the other program: " << attached());
}

BOOST_FIXTURE_TEST_CASE(transfer_started_before_the_agent_is_attributed, E2e) {
    // Connected before the agent starts; the bytes move after it is up. The
    // client waits 2 s after connecting, and is frozen within that pause
    // until the agent is ready, however long its start takes.
    auto early = start_transfer(bob, link.b_ip4(), 400'000, 600'000, 1, {"--pause-before-ms", "2000"});
    BOOST_REQUIRE(wait_until(
        [&] { return capture(host.exec("ss -Htn state established")).find(link.b_ip4()) != std::string::npos; }, 5s,
        1ms));
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
        // It moved bytes while we watched: the process that moves them owns them.
        BOOST_TEST(r.at("pid").is_number());
        BOOST_TEST(str(r, "comm") == "pdtt-traffic");
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
    BOOST_TEST(attached() == "tcx-ingress tcx-egress ", "tc on both sides of a veth: " << attached());
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
