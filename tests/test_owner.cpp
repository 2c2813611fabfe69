// Issue #10: the owner of a byte is the process that moves it. Root daemons
// that accept a connection and hand it to a user's process (sshd for rsync
// and scp, forking setuid and seteuid servers, a socket passed over
// SCM_RIGHTS) and one socket written by two users in turn: each user's
// share must come out exactly, in flow_owner + flow_close and in user_report.
#define BOOST_TEST_MODULE owner
#include <boost/test/unit_test.hpp>

#include "cgroups.hpp"
#include "lab_sshd.hpp"

#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// What pdtt-handover's protocol moves besides the payload asked for.
constexpr uint64_t kBanner = 64;   // root -> client, before the hand-over
constexpr uint64_t kHello = 32;    // client -> root, before the hand-over
constexpr uint64_t kGreeting = 16; // user -> client, the user's first write
constexpr uint64_t kConfirm = 8;   // a peer's confirmation of a part (two-writers)
constexpr const char* kDaemonPort = "5002";
constexpr const char* kSinkPort = "5003";

// ---- the agent's books ----

// Readers that let a missing field fail an assertion instead of the test:
// a number that is absent or null reads as kAbsent (uids start at -1).
constexpr int64_t kAbsent = -2;
constexpr int64_t kUnattributed = -1;
int64_t opt_i64(const json::object& o, const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_number() ? json::value_to<int64_t>(*v) : kAbsent;
}
uint64_t opt_u64(const json::object& o, const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_number() ? json::value_to<uint64_t>(*v) : 0;
}
std::string opt_str(const json::object& o, const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
bool is_flow_record(const std::string& type) { return type.rfind("flow_", 0) == 0; }

struct Moved {
    uint64_t tx = 0, rx = 0;
};

// One flow's records in the order the agent wrote them.
struct FlowBook {
    json::object open;                // its first record
    std::vector<json::object> owners; // flow_owner
    std::optional<json::object> close;

    int64_t lport() const { return opt_i64(open, "lport"); }
    int64_t rport() const { return opt_i64(open, "rport"); }
    std::string proto() const { return opt_str(open, "proto"); }
    uint64_t retrans() const { return close ? opt_u64(*close, "tcp_bytes_retrans") : 0; }

    // This flow's bytes counted for uid: under it before each hand-over it
    // gave away, and at the close if it was the last owner.
    Moved under(int64_t uid) const {
        Moved m;
        for (const auto& o : owners)
            if (opt_i64(o, "from_uid") == uid) {
                m.tx += opt_u64(o, "tx_bytes");
                m.rx += opt_u64(o, "rx_bytes");
            }
        if (close && opt_i64(*close, "uid") == uid) {
            m.tx += opt_u64(*close, "tx_bytes");
            m.rx += opt_u64(*close, "rx_bytes");
        }
        return m;
    }
    // The owners in turn: the flow's first, then each flow_owner's new one.
    std::vector<int64_t> chain() const {
        std::vector<int64_t> c{opt_i64(open, "uid")};
        for (const auto& o : owners)
            c.push_back(opt_i64(o, "uid"));
        return c;
    }
};

std::string show(const std::vector<int64_t>& chain) {
    std::string s;
    for (int64_t u : chain)
        s += (s.empty() ? "" : " -> ") + std::to_string(u);
    return s;
}

struct Books {
    std::vector<FlowBook> flows;      // by first appearance
    std::map<int64_t, Moved> shares;  // flow_owner by from_uid + flow_close by uid
    std::map<int64_t, Moved> reports; // user_report by uid, over the run
    int flow_records = 0, without_flow_id = 0;

    std::vector<const FlowBook*> where(const std::function<bool(const FlowBook&)>& pred) const {
        std::vector<const FlowBook*> out;
        for (const auto& f : flows)
            if (pred(f))
                out.push_back(&f);
        return out;
    }
};

// Records of one flow share its flow_id; without one (today's agent) the
// 5-tuple stands in, which is unique within one of these tests.
std::string flow_key(const json::object& r) {
    if (const json::value* id = r.if_contains("flow_id"))
        return "id " + json::serialize(*id);
    return opt_str(r, "proto") + " " + opt_str(r, "local") + " " + std::to_string(opt_i64(r, "lport")) + " " +
           opt_str(r, "remote") + " " + std::to_string(opt_i64(r, "rport"));
}

Books read_books(const std::vector<json::object>& recs) {
    Books b;
    std::map<std::string, std::size_t> index;
    for (const auto& r : recs) {
        std::string type = opt_str(r, "type");
        if (type == "user_report") {
            auto& m = b.reports[opt_i64(r, "uid")];
            m.tx += opt_u64(r, "tx_bytes");
            m.rx += opt_u64(r, "rx_bytes");
            continue;
        }
        if (!is_flow_record(type))
            continue;
        b.flow_records++;
        b.without_flow_id += !r.contains("flow_id");
        auto [it, fresh] = index.try_emplace(flow_key(r), b.flows.size());
        if (fresh)
            b.flows.push_back({r, {}, {}});
        FlowBook& f = b.flows[it->second];
        if (type == "flow_owner") {
            f.owners.push_back(r);
            auto& m = b.shares[opt_i64(r, "from_uid")];
            m.tx += opt_u64(r, "tx_bytes");
            m.rx += opt_u64(r, "rx_bytes");
        } else if (type == "flow_close") {
            f.close = r;
            auto& m = b.shares[opt_i64(r, "uid")];
            m.tx += opt_u64(r, "tx_bytes");
            m.rx += opt_u64(r, "rx_bytes");
        }
    }
    return b;
}

// The agent's lines so far; a line still being written is left for later.
std::vector<json::object> lines_so_far(const Process& agent) {
    std::string out = agent.out();
    out.erase(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    std::vector<json::object> recs;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (!ec && v.is_object())
            recs.push_back(v.as_object());
    }
    return recs;
}

// Waits until n flows matching pred were closed, so that the books are final.
bool wait_for_closes(const Process& agent, std::size_t n, const std::function<bool(const FlowBook&)>& pred) {
    return wait_until(
        [&] {
            auto b = read_books(lines_so_far(agent));
            return b.where([&](const FlowBook& f) { return f.close && pred(f); }).size() >= n;
        },
        15s, 50ms);
}

// Every flow record names its flow, and the per-user totals of the flow
// records (flow_owner by from_uid, flow_close by uid) are user_report's.
void check_books_balance(const Books& b) {
    BOOST_TEST(b.without_flow_id == 0, b.without_flow_id << " of " << b.flow_records << " flow records lack flow_id");
    std::set<int64_t> uids;
    for (const auto& [u, m] : b.shares)
        uids.insert(u);
    for (const auto& [u, m] : b.reports)
        if (u != kUnattributed) // ARP, ND and handshakes: no flow, so no flow record
            uids.insert(u);
    for (int64_t u : uids) {
        BOOST_TEST_CONTEXT("uid " << u << ": flow_owner + flow_close vs user_report") {
            Moved s = b.shares.count(u) ? b.shares.at(u) : Moved{}, r = b.reports.count(u) ? b.reports.at(u) : Moved{};
            BOOST_TEST(s.tx == r.tx);
            BOOST_TEST(s.rx == r.rx);
        }
    }
}

std::string summary(const Books& b) {
    std::ostringstream os;
    for (const auto& [u, m] : b.reports)
        os << " uid " << u << ": tx " << m.tx << " rx " << m.rx << ";";
    return os.str();
}

// Sent: exactly want, plus what TCP sent again. Received: duplicates only
// the peer could tell apart, so up to 2% over, or one resent copy of a
// message shorter than a segment (a hello, a confirmation).
bool sent_exactly(uint64_t got, uint64_t want, uint64_t retrans) { return got >= want && got <= want + retrans; }
// resent: what the sender's namespace says it resent (nstat), which the
// receiver counts again; on a loaded machine it exceeds the 2% allowed.
bool received_exactly(uint64_t got, uint64_t want, uint64_t resent = 0) {
    return got >= want && got <= want + std::max(want / 50, std::min<uint64_t>(want, 1400)) + resent;
}

// pid of the "owner pid=P uid=U euid=E" line of the process that has euid.
std::optional<int64_t> owner_pid(const std::string& out, uid_t euid) {
    static const std::regex re(R"(owner pid=(\d+) uid=\d+ euid=(\d+))");
    for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it)
        if (std::stoul((*it)[2]) == euid)
            return std::stol((*it)[1]);
    return std::nullopt;
}

// ---- sshd ----

constexpr uint64_t kUpload = 20'000'000, kDownload = 10'000'000;

// Uploads kUpload bytes and downloads kDownload with `tool` through root's
// sshd as alice, each in a connection of its own, and checks that alice was
// charged for them: per flow, in flow_owner + flow_close, and per user.
void ssh_round_trip(SshLab& lab, const std::string& tool, bool v6) {
    const TestUser& alice = lab.alice;
    const fs::path up = lab.dir / "up.bin", down = lab.home / "down.bin", got = lab.dir / "down.bin";
    random_file(up, kUpload);
    random_file(down, kDownload);
    lab.start_agent({"-t", "1"});
    lab.copy(tool, up.string(), lab.login(v6) + ":" + (lab.home / "up.bin").string());
    lab.copy(tool, lab.login(v6) + ":" + down.string(), got.string());
    BOOST_REQUIRE_EQUAL(run("cmp -s " + up.string() + " " + (lab.home / "up.bin").string()), 0);
    BOOST_REQUIRE_EQUAL(run("cmp -s " + down.string() + " " + got.string()), 0);
    auto on_ssh = [](const FlowBook& f) { return f.lport() == std::stoi(kSshPort); };
    BOOST_TEST(wait_for_closes(*lab.agent, 2, on_ssh), "both ssh connections closed");
    Books b = read_books(lab.stop_agent());
    BOOST_TEST_MESSAGE(tool << (v6 ? " v6" : " v4") << " user_report totals:" << summary(b));

    auto ssh = b.where(on_ssh);
    BOOST_TEST_REQUIRE(ssh.size() == 2u, "one flow per ssh connection");
    for (int i = 0; i < 2; i++) {
        const FlowBook& f = *ssh[i];
        const bool upload = i == 0;
        BOOST_TEST_CONTEXT(tool << (upload ? " upload" : " download") << " flow " << flow_key(f.open)) {
            BOOST_TEST(opt_str(f.open, "direction") == "inbound");
            // root's sshd accepts and swaps banners, its unprivileged
            // preauth child (user sshd) does key exchange and login, then
            // alice's sshd moves the data: each wrote and read the socket.
            auto chain = f.chain();
            BOOST_TEST(!f.owners.empty(), "no flow_owner record: root's sshd kept the flow");
            BOOST_TEST((chain == lab.owners_of_a_login()),
                       "owners " << show(chain) << ", not " << show(lab.owners_of_a_login()));
            for (std::size_t k = 0; k < f.owners.size(); k++) {
                BOOST_TEST(opt_i64(f.owners[k], "from_uid") == chain[k],
                           "flow_owner " << k << " hands on " << json::serialize(f.owners[k]));
                BOOST_TEST(opt_i64(f.owners[k], "uid") != opt_i64(f.owners[k], "from_uid"));
            }
            if (!f.owners.empty()) {
                BOOST_TEST(opt_str(f.owners.front(), "from_user") == "root");
                BOOST_TEST(opt_str(f.owners.back(), "user") == alice.name());
                BOOST_TEST(opt_str(f.owners.back(), "comm") == "sshd");
            }
            BOOST_TEST_REQUIRE(f.close.has_value());
            BOOST_TEST(opt_i64(*f.close, "uid") == int64_t(alice.uid()));
            Moved m = f.under(alice.uid());
            if (upload)
                BOOST_TEST(m.rx >= kUpload / 100 * 99, m.rx << " of " << kUpload << " uploaded bytes under alice");
            else
                BOOST_TEST(m.tx - std::min(m.tx, f.retrans()) >= kDownload / 100 * 99,
                           m.tx << " (" << f.retrans() << " resent) of " << kDownload
                                << " downloaded bytes under alice");
        }
    }
    Moved r = b.reports[alice.uid()];
    BOOST_TEST(r.rx >= kUpload / 100 * 99, "user_report: " << r.rx << " of " << kUpload << " uploaded bytes for alice");
    BOOST_TEST(r.tx >= kDownload / 100 * 99,
               "user_report: " << r.tx << " of " << kDownload << " downloaded bytes for alice");
    check_books_balance(b);
}

// ---- daemons that hand a connection to a user's process ----

constexpr uint64_t kDaemonRx = 3'000'000, kDaemonTx = 2'000'000; // as the daemon's user sees them

// The daemon in the agent's namespace as root, its client in the peer: root
// moves kBanner out and kHello in, then alice's process everything else.
void daemon_hand_over(Lab& lab, const std::string& mode, bool v6) {
    const TestUser& alice = lab.alice;
    const std::string addr = v6 ? lab.link.a_ip6() : lab.link.a_ip4();
    lab.start_agent({"-t", "1"});
    Process daemon({PDTT_HANDOVER_BIN, mode, "--bind", addr, "--port", kDaemonPort, "--uid",
                    std::to_string(alice.uid()), "--rx", std::to_string(kDaemonRx), "--tx", std::to_string(kDaemonTx)},
                   lab.host.name());
    BOOST_REQUIRE_MESSAGE(daemon.wait_for_line("ready", 10s), "daemon did not start: " << daemon.err());
    Process client({PDTT_HANDOVER_BIN, "client", "--to", addr, "--port", kDaemonPort, "--tx", std::to_string(kDaemonRx),
                    "--rx", std::to_string(kDaemonTx)},
                   lab.peer.name());
    auto cst = client.wait(30s);
    BOOST_REQUIRE_MESSAGE(cst && *cst == 0, "client: " << client.err() << "; daemon: " << daemon.err());
    auto dst = daemon.wait(10s);
    BOOST_REQUIRE_MESSAGE(dst && *dst == 0, "daemon: " << daemon.err());
    const uint64_t resent = resent_bytes_max(lab.peer);
    auto child = owner_pid(daemon.out(), alice.uid());
    BOOST_REQUIRE_MESSAGE(child, "no owner line for alice: " << daemon.out());

    auto on_daemon = [](const FlowBook& f) { return f.lport() == std::stoi(kDaemonPort); };
    BOOST_TEST(wait_for_closes(*lab.agent, 1, on_daemon), "the daemon's connection closed");
    Books b = read_books(lab.stop_agent());
    BOOST_TEST_MESSAGE(mode << (v6 ? " v6" : " v4") << " user_report totals:" << summary(b));
    auto flows = b.where(on_daemon);
    BOOST_TEST_REQUIRE(flows.size() == 1u);
    const FlowBook& f = *flows[0];
    BOOST_TEST_REQUIRE(f.close.has_value());
    const uint64_t retrans = f.retrans();

    // Until a process moved bytes: the socket's uid and the listener.
    BOOST_TEST(opt_i64(f.open, "uid") == 0);
    BOOST_TEST(opt_i64(f.open, "pid") == int64_t(daemon.pid()));
    BOOST_TEST(opt_str(f.open, "direction") == "inbound");

    // One hand-over, to the process that moved the bytes, at the byte.
    BOOST_TEST(f.owners.size() == 1u, "flow_owner records: " << f.owners.size() << ", owners " << show(f.chain()));
    if (!f.owners.empty()) {
        const json::object& o = f.owners[0];
        BOOST_TEST_CONTEXT("flow_owner " << json::serialize(o)) {
            BOOST_TEST(opt_i64(o, "from_uid") == 0);
            BOOST_TEST(opt_str(o, "from_user") == "root");
            BOOST_TEST(opt_i64(o, "uid") == int64_t(alice.uid()));
            BOOST_TEST(opt_str(o, "user") == alice.name());
            BOOST_TEST(opt_i64(o, "pid") == *child);
            BOOST_TEST(opt_str(o, "comm") == "pdtt-handover");
            BOOST_TEST(opt_i64(o, "lport") == std::stoi(kDaemonPort));
        }
    }
    BOOST_TEST(opt_i64(*f.close, "uid") == int64_t(alice.uid()), "flow_close " << json::serialize(*f.close));
    BOOST_TEST(opt_i64(*f.close, "pid") == *child);
    Moved r = f.under(0), a = f.under(alice.uid());
    BOOST_TEST(sent_exactly(r.tx, kBanner, retrans), "root sent " << r.tx << ", the banner is " << kBanner);
    BOOST_TEST(received_exactly(r.rx, kHello, resent), "root received " << r.rx << ", the hello is " << kHello);
    BOOST_TEST(sent_exactly(a.tx, kGreeting + kDaemonTx, retrans),
               "alice sent " << a.tx << " of " << kGreeting + kDaemonTx);
    BOOST_TEST(received_exactly(a.rx, kDaemonRx, resent), "alice received " << a.rx << " of " << kDaemonRx);
    Moved ra = b.reports[alice.uid()], rr = b.reports[0];
    BOOST_TEST(sent_exactly(ra.tx, kGreeting + kDaemonTx, retrans), "user_report alice tx " << ra.tx);
    BOOST_TEST(received_exactly(ra.rx, kDaemonRx, resent), "user_report alice rx " << ra.rx);
    BOOST_TEST(sent_exactly(rr.tx, kBanner, retrans), "user_report root tx " << rr.tx);
    BOOST_TEST(received_exactly(rr.rx, kHello, resent), "user_report root rx " << rr.rx);
    check_books_balance(b);
}

// ---- one socket, two writers ----

constexpr uint64_t kFirst = 1'500'000, kSecond = 2'500'000; // TCP: alice's part, then bob's

struct Writers {
    std::optional<int64_t> a, b; // pids
};

Writers two_writers(Lab& lab, const TestUser& a, const TestUser& b, const std::string& to, const char* port,
                    std::vector<std::string> extra) {
    std::vector<std::string> argv{
        PDTT_HANDOVER_BIN, "two-writers",          "--to", to, "--port", port, "--uid", std::to_string(a.uid()),
        "--uid-b",         std::to_string(b.uid())};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p(argv, lab.host.name());
    auto st = p.wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "two-writers: " << p.err());
    std::string out = p.out();
    auto nl = out.find('\n');
    // The first owner line is A's (B prints only after A handed over).
    return {owner_pid(out.substr(0, nl), a.uid()), owner_pid(out.substr(nl == std::string::npos ? 0 : nl), b.uid())};
}

// Alice writes kFirst bytes, then bob kSecond, on one TCP connection to the
// sink (started, taking both parts); the agent's books once it closed, and
// that connection's flow.
struct TwoWriterRun {
    Writers w;
    Books books;
    const FlowBook* flow = nullptr;
};
bool to_sink(const FlowBook& f) { return f.rport() == std::stoi(kSinkPort); }
TwoWriterRun two_writers_to_sink(Lab& lab, Process& sink, const std::string& what) {
    TwoWriterRun run;
    run.w = two_writers(lab, lab.alice, lab.bob, lab.link.b_ip4(), kSinkPort,
                        {"--tx", std::to_string(kFirst), "--tx-b", std::to_string(kSecond)});
    BOOST_REQUIRE(run.w.a && run.w.b);
    auto st = sink.wait(10s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "sink: " << sink.err());
    BOOST_TEST(wait_for_closes(*lab.agent, 1, to_sink), "the connection closed");
    run.books = read_books(lab.stop_agent());
    BOOST_TEST_MESSAGE(what << " user_report totals:" << summary(run.books));
    auto flows = run.books.where(to_sink);
    BOOST_TEST_REQUIRE(flows.size() == 1u);
    run.flow = flows[0];
    BOOST_TEST_REQUIRE(run.flow->close.has_value());
    return run;
}

} // namespace

// ---- sshd: rsync and scp through root's sshd to a user ----

BOOST_FIXTURE_TEST_CASE(rsync_over_ssh_ipv4_counts_the_transfer_for_the_user, SshLab) {
    ssh_round_trip(*this, "rsync", false);
}

BOOST_FIXTURE_TEST_CASE(rsync_over_ssh_ipv6_counts_the_transfer_for_the_user, SshLab) {
    ssh_round_trip(*this, "rsync", true);
}

BOOST_FIXTURE_TEST_CASE(scp_ipv4_counts_the_transfer_for_the_user, SshLab) { ssh_round_trip(*this, "scp", false); }

BOOST_FIXTURE_TEST_CASE(scp_ipv6_counts_the_transfer_for_the_user, SshLab) { ssh_round_trip(*this, "scp", true); }

// ---- daemons ----

BOOST_FIXTURE_TEST_CASE(fork_setuid_child_owns_what_it_moves_ipv4, Lab) {
    daemon_hand_over(*this, "fork-setuid", false);
}

BOOST_FIXTURE_TEST_CASE(fork_setuid_child_owns_what_it_moves_ipv6, Lab) {
    daemon_hand_over(*this, "fork-setuid", true);
}

BOOST_FIXTURE_TEST_CASE(seteuid_child_is_owned_by_its_effective_uid, Lab) { daemon_hand_over(*this, "seteuid", false); }

BOOST_FIXTURE_TEST_CASE(socket_passed_over_scm_rights_belongs_to_the_receiver, Lab) {
    daemon_hand_over(*this, "scm-rights", true);
}

// ---- two writers ----

BOOST_FIXTURE_TEST_CASE(tcp_socket_written_by_two_users_splits_exactly, Lab) {
    Process sink({PDTT_HANDOVER_BIN, "sink", "--bind", link.b_ip4(), "--port", kSinkPort, "--parts",
                  std::to_string(kFirst) + "," + std::to_string(kSecond)},
                 peer.name());
    BOOST_REQUIRE_MESSAGE(sink.wait_for_line("ready", 10s), "sink did not start: " << sink.err());
    start_agent({"-t", "1"});
    TwoWriterRun run = two_writers_to_sink(*this, sink, "two writers tcp");
    const Writers& w = run.w;
    Books& b = run.books;
    const FlowBook& f = *run.flow;
    BOOST_TEST(opt_i64(f.open, "uid") == int64_t(alice.uid()));
    BOOST_TEST(opt_i64(f.open, "pid") == *w.a);
    BOOST_TEST(opt_str(f.open, "direction") == "outbound");
    BOOST_TEST(f.owners.size() == 1u, "flow_owner records: " << f.owners.size() << ", owners " << show(f.chain()));
    if (!f.owners.empty()) {
        const json::object& o = f.owners[0];
        BOOST_TEST_CONTEXT("flow_owner " << json::serialize(o)) {
            BOOST_TEST(opt_i64(o, "from_uid") == int64_t(alice.uid()));
            BOOST_TEST(opt_str(o, "from_user") == alice.name());
            BOOST_TEST(opt_i64(o, "uid") == int64_t(bob.uid()));
            BOOST_TEST(opt_str(o, "user") == bob.name());
            BOOST_TEST(opt_i64(o, "pid") == *w.b);
        }
    }
    const uint64_t retrans = f.retrans();
    Moved a = f.under(alice.uid()), bb = f.under(bob.uid());
    BOOST_TEST(sent_exactly(a.tx, kFirst, retrans), "alice sent " << a.tx << " of " << kFirst);
    BOOST_TEST(received_exactly(a.rx, kConfirm), "alice received " << a.rx);
    BOOST_TEST(sent_exactly(bb.tx, kSecond, retrans), "bob sent " << bb.tx << " of " << kSecond);
    BOOST_TEST(received_exactly(bb.rx, kConfirm), "bob received " << bb.rx);
    BOOST_TEST(sent_exactly(b.reports[alice.uid()].tx, kFirst, retrans));
    BOOST_TEST(sent_exactly(b.reports[bob.uid()].tx, kSecond, retrans));
    check_books_balance(b);
}

BOOST_FIXTURE_TEST_CASE(udp_socket_written_by_two_users_splits_within_one_datagram, Lab) {
    constexpr uint64_t kSize = 1000, kA = 200 * kSize, kB = 300 * kSize;
    auto srv = serve(link.b_ip4(), {"--proto", "udp"});
    start_agent({"-t", "1", "--udp-timeout", "2"});
    Writers w = two_writers(
        *this, alice, bob, link.b_ip4(), kPort,
        {"--proto", "udp", "--size", std::to_string(kSize), "--tx", std::to_string(kA), "--tx-b", std::to_string(kB)});
    BOOST_REQUIRE(w.a && w.b);
    auto to_srv = [](const FlowBook& f) { return f.proto() == "udp" && f.rport() == std::stoi(kPort); };
    BOOST_TEST(wait_for_closes(*agent, 1, to_srv), "the UDP flow closed");
    Books b = read_books(stop_agent());
    BOOST_TEST_MESSAGE("two writers udp user_report totals:" << summary(b));
    auto flows = b.where(to_srv);
    BOOST_TEST_REQUIRE(flows.size() == 1u);
    const FlowBook& f = *flows[0];
    BOOST_TEST(f.close.has_value());
    BOOST_TEST(opt_i64(f.open, "uid") == int64_t(alice.uid()));
    BOOST_TEST(f.owners.size() == 1u, "flow_owner records: " << f.owners.size() << ", owners " << show(f.chain()));
    if (!f.owners.empty()) {
        BOOST_TEST(opt_i64(f.owners[0], "from_uid") == int64_t(alice.uid()));
        BOOST_TEST(opt_i64(f.owners[0], "uid") == int64_t(bob.uid()));
        BOOST_TEST(opt_i64(f.owners[0], "pid") == *w.b);
    }
    Moved a = f.under(alice.uid()), bb = f.under(bob.uid());
    // Each datagram once (no resends); the hand-over may fall one datagram late.
    BOOST_TEST(a.tx + bb.tx == kA + kB);
    BOOST_TEST(a.rx + bb.rx == (kA + kB) / kSize * kConfirm);
    BOOST_TEST((a.tx >= kA && a.tx <= kA + kSize), "alice sent " << a.tx << " of " << kA);
    BOOST_TEST((a.rx >= kA / kSize * kConfirm && a.rx <= (kA / kSize + 1) * kConfirm), "alice received " << a.rx);
    BOOST_TEST((bb.tx + kSize >= kB && bb.tx <= kB), "bob sent " << bb.tx << " of " << kB);
    BOOST_TEST(b.reports[bob.uid()].tx + kSize >= kB, "user_report bob tx " << b.reports[bob.uid()].tx);
    check_books_balance(b);
}

// A new process of the same user takes the socket over: noted, not a new owner.
BOOST_FIXTURE_TEST_CASE(same_user_hand_over_is_no_change_of_owner, Lab) {
    Process sink({PDTT_HANDOVER_BIN, "sink", "--bind", link.b_ip6(), "--port", kSinkPort, "--parts",
                  std::to_string(kFirst) + "," + std::to_string(kSecond)},
                 peer.name());
    BOOST_REQUIRE_MESSAGE(sink.wait_for_line("ready", 10s), "sink did not start: " << sink.err());
    start_agent({"-t", "1"});
    two_writers(*this, alice, alice, link.b_ip6(), kSinkPort,
                {"--tx", std::to_string(kFirst), "--tx-b", std::to_string(kSecond)});
    auto st = sink.wait(10s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "sink: " << sink.err());
    auto to_sink = [](const FlowBook& f) { return f.rport() == std::stoi(kSinkPort); };
    BOOST_TEST(wait_for_closes(*agent, 1, to_sink), "the connection closed");
    Books b = read_books(stop_agent());
    auto flows = b.where(to_sink);
    BOOST_TEST_REQUIRE(flows.size() == 1u);
    const FlowBook& f = *flows[0];
    BOOST_TEST_REQUIRE(f.close.has_value());
    BOOST_TEST(f.owners.empty(), "flow_owner records: " << f.owners.size() << ", owners " << show(f.chain()));
    BOOST_TEST(opt_i64(*f.close, "uid") == int64_t(alice.uid()));
    BOOST_TEST(sent_exactly(f.under(alice.uid()).tx, kFirst + kSecond, f.retrans()));
    BOOST_TEST(received_exactly(f.under(alice.uid()).rx, 2 * kConfirm));
    check_books_balance(b);
}

// ---- UDP ports shared between addresses ----

namespace {

constexpr int kSharedPort = 5004;
constexpr uint64_t kDgram = 1000, kReply = 100, kPerHalf = 200;

// alice's UDP socket on the wildcard address (SO_REUSEADDR, not connected):
// kPerHalf datagrams to the peer's server, each answered, then waits for
// `go` to exist and sends kPerHalf more.
const char* kAliceUdp = R"(import os,socket,struct,sys,time
peer,port,sport,n,size,reply,go=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]),int(sys.argv[6]),sys.argv[7]
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('0.0.0.0',sport))
s.settimeout(5)
def half():
    for i in range(n):
        s.sendto(struct.pack('>Q',reply)+b'a'*(size-8),(peer,port))
        s.recvfrom(65536)
half()
print('half',flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
half()
print('done',flush=True)
)";

// bob's socket bound to the same port on 127.0.0.1, receiving and answering
// his own datagrams over loopback.
const char* kBobUdp = R"(import socket,sys
sport,n=int(sys.argv[1]),int(sys.argv[2])
r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
r.bind(('127.0.0.1',sport))
c=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
c.settimeout(5)
for i in range(n):
    c.sendto(b'b'*1000,('127.0.0.1',sport))
    d,a=r.recvfrom(65536)
    r.sendto(b'r'*100,a)
    c.recvfrom(65536)
print('done',flush=True)
)";

} // namespace

// bob binds alice's UDP port on another local address and moves bytes
// there, between two halves of alice's transfer: her flow on the monitored
// link stays hers, to the byte.
BOOST_FIXTURE_TEST_CASE(udp_port_bound_by_another_user_elsewhere_takes_no_bytes, Lab) {
    auto srv = serve(link.b_ip4(), {"--proto", "udp"});
    start_agent({"-t", "1", "--udp-timeout", "2"});
    const fs::path go = dir / "go";
    Process a(as_user(alice, {"/usr/bin/python3", "-c", kAliceUdp, link.b_ip4(), kPort, std::to_string(kSharedPort),
                              std::to_string(kPerHalf), std::to_string(kDgram), std::to_string(kReply), go.string()}),
              host.name());
    BOOST_REQUIRE_MESSAGE(a.wait_for_line("half", 20s), "alice's first half: " << a.err());
    Process bob_io(as_user(bob, {"/usr/bin/python3", "-c", kBobUdp, std::to_string(kSharedPort), "200"}), host.name());
    auto bst = bob_io.wait(20s);
    BOOST_REQUIRE_MESSAGE(bst && *bst == 0, "bob's loopback traffic: " << bob_io.err());
    std::ofstream{go};
    auto ast = a.wait(20s);
    BOOST_REQUIRE_MESSAGE(ast && *ast == 0, "alice's second half: " << a.err());

    auto alices = [](const FlowBook& f) { return f.proto() == "udp" && f.lport() == kSharedPort; };
    BOOST_TEST(wait_for_closes(*agent, 1, alices), "alice's UDP flow closed");
    Books b = read_books(stop_agent());
    BOOST_TEST_MESSAGE("shared udp port user_report totals:" << summary(b));
    auto flows = b.where(alices);
    BOOST_TEST_REQUIRE(flows.size() == 1u, "one flow on the monitored link");
    const FlowBook& f = *flows[0];
    BOOST_TEST(opt_i64(f.open, "uid") == int64_t(alice.uid()));
    BOOST_TEST(f.owners.empty(), "flow_owner records: " << f.owners.size() << ", owners " << show(f.chain()));
    Moved m = f.under(alice.uid());
    BOOST_TEST(m.tx == 2 * kPerHalf * kDgram, "alice sent " << m.tx);
    BOOST_TEST(m.rx == 2 * kPerHalf * kReply, "alice received " << m.rx);
    BOOST_TEST(b.reports[bob.uid()].tx == 0u, "bob's loopback bytes are not on the link");
    BOOST_TEST(b.reports[bob.uid()].rx == 0u);
    check_books_balance(b);
}

namespace {

// Two sockets of one process on one UDP 5-tuple (SO_REUSEADDR, the same
// port, the same peer), written in turn under two effective uids: b's
// owner entry is made first (one datagram elsewhere), then a, b, a, b, a
// send n datagrams each. No server: the peer answers with port
// unreachables, which are not UDP.
const char* kTwoSockets = R"(import os,socket,sys,time
peer,port,sport,ua,ub,n,size=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]),int(sys.argv[6]),int(sys.argv[7])
def sock():
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
    s.bind(('0.0.0.0',sport))
    return s
a,b=sock(),sock()
def send(uid,s,k,dst):
    os.seteuid(uid)
    for i in range(k):
        s.sendto(b'x'*size,dst)
    os.seteuid(0)
send(ub,b,1,(peer,port+1))
for who in 'ababa':
    send(ua if who=='a' else ub,a if who=='a' else b,n,(peer,port))
    time.sleep(0.05)
print('done',flush=True)
)";

} // namespace

// Each datagram is its sending socket's owner's, even when another socket
// shares the flow's 5-tuple: a turn of the other socket must not leave the
// flow with the other owner once its own socket sends again.
BOOST_FIXTURE_TEST_CASE(udp_5_tuple_shared_by_two_sockets_follows_the_sending_socket, Lab) {
    constexpr uint64_t n = 50, size = 1000;
    constexpr int sport = 5006;
    start_agent({"-t", "1"});
    Process p({"/usr/bin/python3", "-c", kTwoSockets, link.b_ip4(), kPort, std::to_string(sport),
               std::to_string(alice.uid()), std::to_string(bob.uid()), std::to_string(n), std::to_string(size)},
              host.name());
    auto st = p.wait(20s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "the two sockets: " << p.err());
    Books b = read_books(stop_agent());
    BOOST_TEST_MESSAGE("two sockets, one 5-tuple:" << summary(b));
    // A socket's first datagram leaves before its first hook: it is its
    // creator's (root made both), then every one is its sender's.
    BOOST_TEST(b.reports[0].tx == 2 * size, "root sent " << b.reports[0].tx);
    BOOST_TEST(b.reports[alice.uid()].tx == 3 * n * size - size, "alice sent " << b.reports[alice.uid()].tx);
    BOOST_TEST(b.reports[bob.uid()].tx == 2 * n * size, "bob sent " << b.reports[bob.uid()].tx);
    check_books_balance(b);
}

// ---- one user, two cgroups, one socket ----

namespace {

constexpr uint64_t kTurns = 3000, kChunk = 1000; // writes per process, bytes per write

// One TCP connection to a pdtt-traffic server, written in turn by two
// processes of one user, each in a cgroup of its own: kTurns writes each.
const char* kTwoCgroups = R"(import os,socket,struct,sys
peer,port,uid,gid,cga,cgb,n,chunk=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),sys.argv[5],sys.argv[6],int(sys.argv[7]),int(sys.argv[8])
s=socket.create_connection((peer,port))
ab_r,ab_w=os.pipe()
ba_r,ba_w=os.pipe()
pid=os.fork()
with open(os.path.join(cgb if pid==0 else cga,'cgroup.procs'),'w') as f:
    f.write('0')
os.setgroups([])
os.setresgid(gid,gid,gid)
os.setresuid(uid,uid,uid)
buf=b'x'*chunk
if pid:
    s.sendall(struct.pack('>QQ',2*n*chunk,0))
    for i in range(n):
        s.sendall(buf)
        os.write(ab_w,b'.')
        os.read(ba_r,1)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    os.waitpid(pid,0)
    print('done',flush=True)
else:
    for i in range(n):
        os.read(ab_r,1)
        s.sendall(buf)
        os.write(ba_w,b'.')
    os._exit(0)
)";

// Two sibling cgroups below the cgroup2 root, removed when done.
struct TwoCgroups {
    fs::path top, a, b;
    TwoCgroups() {
        auto m = pdtt::find_cgroup2_mount();
        BOOST_TEST_REQUIRE(m.has_value(), "no cgroup2 mount");
        top = fs::path(m->mount_point) / ("pdtt-test-" + std::to_string(::getpid()));
        a = top / "a";
        b = top / "b";
        fs::create_directories(a);
        fs::create_directories(b);
    }
    ~TwoCgroups() { remove_dirs({a, b, top}); }
};

} // namespace

// Every turn is a change of cgroup alone: it must not cost a ring record
// each (thousands a second), only move the bytes' job at a bounded rate.
// The user's bytes stay exact, nothing is lost, and bob's transfer beside
// it is counted exactly.
BOOST_FIXTURE_TEST_CASE(cgroup_only_changes_do_not_flood_the_ring, Lab) {
    TwoCgroups cg;
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    // Outside `ip netns exec`, whose own /sys hides the cgroup2 mount.
    Process writers({"nsenter", "--net=/run/netns/" + host.name(), "/usr/bin/python3", "-c", kTwoCgroups, link.b_ip4(),
                     kPort, std::to_string(alice.uid()), std::to_string(alice.gid()), cg.a.string(), cg.b.string(),
                     std::to_string(kTurns), std::to_string(kChunk)});
    constexpr uint64_t kBobTx = 2'000'000, kBobRx = 1'000'000;
    Process bobs(as_user(bob, {PDTT_TRAFFIC_BIN, "send", "--to", link.b_ip4(), "--port", kPort, "--tx",
                               std::to_string(kBobTx), "--rx", std::to_string(kBobRx)}),
                 host.name());
    auto wst = writers.wait(60s);
    BOOST_REQUIRE_MESSAGE(wst && *wst == 0, "the two writers: " << writers.err());
    auto bst = bobs.wait(60s);
    BOOST_REQUIRE_MESSAGE(bst && *bst == 0, "bob's transfer: " << bobs.err());
    const uint64_t resent = resent_bytes_max(host);

    auto to_srv = [](const FlowBook& f) { return f.proto() == "tcp" && f.rport() == std::stoi(kPort); };
    BOOST_TEST(wait_for_closes(*agent, 2, to_srv), "both connections closed");
    std::vector<json::object> recs = stop_agent();
    Books b = read_books(recs);
    BOOST_TEST_MESSAGE("two cgroups user_report totals:" << summary(b));
    uint64_t events = 0, drops = 0;
    for (const auto& r : recs)
        if (opt_str(r, "type") == "agent_stats") {
            events = opt_u64(r, "events"); // cumulative: the last one has all
            drops = opt_u64(r, "ring_drops");
        }
    BOOST_TEST(events < 200u, events << " ring records for " << 2 * kTurns << " writes in turn");
    BOOST_TEST(drops == 0u);

    auto flows = b.where(to_srv);
    BOOST_TEST_REQUIRE(flows.size() == 2u);
    for (const FlowBook* f : flows) {
        BOOST_TEST_REQUIRE(f->close.has_value());
        const int64_t uid = opt_i64(*f->close, "uid");
        const uint64_t retrans = f->retrans();
        BOOST_TEST_CONTEXT("flow " << flow_key(f->open) << " of uid " << uid) {
            if (uid == int64_t(alice.uid())) {
                BOOST_TEST(sent_exactly(f->under(uid).tx, kTrafficHeader + 2 * kTurns * kChunk, retrans),
                           "alice sent " << f->under(uid).tx);
                BOOST_TEST(f->under(0).tx == 0u, "root wrote nothing");
            } else {
                BOOST_TEST(uid == int64_t(bob.uid()));
                BOOST_TEST(sent_exactly(f->under(uid).tx, kTrafficHeader + kBobTx, retrans));
                BOOST_TEST(received_exactly(f->under(uid).rx, kBobRx, resent));
            }
        }
    }
    check_books_balance(b);
}

// ---- without tcp_sendmsg_locked ----

namespace {

// PDTT_TEST_FORCE for the agents started while it lives (they inherit it).
struct Force {
    explicit Force(const char* what) { ::setenv("PDTT_TEST_FORCE", what, 1); }
    ~Force() { ::unsetenv("PDTT_TEST_FORCE"); }
    Force(const Force&) = delete;
    Force& operator=(const Force&) = delete;
};

constexpr uint64_t kHandoverWrite = 256 * 1024; // pdtt-handover's largest send()

} // namespace

// Kernels 6.4 to 6.15 have sock_send_length but not tcp_sendmsg_locked: the
// agent loads without it and says so once; a hand-over is still counted,
// the new owner's first write (some of it already sent when the hook runs)
// going to the previous owner.
BOOST_FIXTURE_TEST_CASE(without_tcp_sendmsg_locked_a_hand_over_errs_by_at_most_one_write, Lab) {
    Force force("no-tcp-sendmsg-locked");
    Process sink({PDTT_HANDOVER_BIN, "sink", "--bind", link.b_ip4(), "--port", kSinkPort, "--parts",
                  std::to_string(kFirst) + "," + std::to_string(kSecond)},
                 peer.name());
    BOOST_REQUIRE_MESSAGE(sink.wait_for_line("ready", 10s), "sink did not start: " << sink.err());
    start_agent({"-t", "1", "-v"});
    const std::string err = agent->err();
    auto count = [&](const std::string& part) {
        std::size_t n = 0;
        for (auto at = err.find(part); at != std::string::npos; at = err.find(part, at + 1))
            n++;
        return n;
    };
    BOOST_TEST(count("tcp_sendmsg_locked is not available") == 1u, "said once at start: " << err);
    BOOST_TEST(count("attached tp_btf/tcp_sendmsg_locked") == 0u);
    BOOST_TEST(count("attached tp_btf/sock_send_length") == 1u);
    TwoWriterRun run = two_writers_to_sink(*this, sink, "forced no tcp_sendmsg_locked");
    Books& b = run.books;
    const FlowBook& f = *run.flow;
    BOOST_TEST((f.chain() == std::vector<int64_t>{int64_t(alice.uid()), int64_t(bob.uid())}),
               "owners " << show(f.chain()));
    const uint64_t retrans = f.retrans();
    Moved a = f.under(alice.uid()), bb = f.under(bob.uid());
    BOOST_TEST(sent_exactly(a.tx + bb.tx, kFirst + kSecond, retrans), "sent " << a.tx + bb.tx);
    BOOST_TEST((a.tx >= kFirst && a.tx <= kFirst + kHandoverWrite + retrans),
               "alice sent " << a.tx << " of " << kFirst << ", bob's first write at most " << kHandoverWrite);
    check_books_balance(b);
}

// ---- subordinate uids ----

namespace {

constexpr uint32_t kSubuidBase = 2'100'000'000, kSubuidCount = 65536; // above any useradd range

// /etc/subuid as it was, put back when the test ends, however it ends.
struct SubuidBackup {
    const fs::path path = "/etc/subuid";
    std::optional<std::string> was;
    SubuidBackup() {
        if (std::ifstream in(path); in) {
            std::ostringstream s;
            s << in.rdbuf();
            was = s.str();
        }
    }
    ~SubuidBackup() {
        if (was)
            std::ofstream(path, std::ios::trunc) << *was;
        else
            fs::remove(path);
    }
    // Adds a line the way useradd does: a new file renamed over the old.
    void add(const std::string& line) const {
        const fs::path tmp = path.string() + ".pdtt-test";
        std::string text = was.value_or("");
        if (!text.empty() && text.back() != '\n')
            text += '\n';
        std::ofstream(tmp) << text << line << "\n";
        fs::rename(tmp, path);
    }
};

} // namespace

// A process running as a uid of alice's /etc/subuid range (a rootless
// container's uid 5, say) moves bytes on the monitored link: they are
// alice's, with the raw uid beside, in her file. The range is added while
// the agent runs: it reads the file again when it changes.
BOOST_FIXTURE_TEST_CASE(subordinate_uid_is_reported_as_its_range_owner, Lab) {
    SubuidBackup backup;
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    backup.add(alice.name() + ":" + std::to_string(kSubuidBase) + ":" + std::to_string(kSubuidCount));
    std::this_thread::sleep_for(2500ms); // two ticks: seen changed, then read
    const uint32_t raw = kSubuidBase + 5;
    constexpr uint64_t kTx = 300'000, kRx = 200'000;
    Process p({PDTT_TRAFFIC_BIN, "send", "--to", link.b_ip4(), "--port", kPort, "--tx", std::to_string(kTx), "--rx",
               std::to_string(kRx), "--uid", std::to_string(raw)},
              host.name());
    auto st = p.wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer as uid " << raw << ": " << p.err());
    auto to_srv = [](const FlowBook& f) { return f.proto() == "tcp" && f.rport() == std::stoi(kPort); };
    BOOST_TEST(wait_for_closes(*agent, 1, to_srv), "the connection closed");
    Books b = read_books(stop_agent());
    BOOST_TEST_MESSAGE("subordinate uid user_report totals:" << summary(b));
    auto flows = b.where(to_srv);
    BOOST_TEST_REQUIRE(flows.size() == 1u);
    const FlowBook& f = *flows[0];
    BOOST_TEST_REQUIRE(f.close.has_value());
    for (const json::object* r : {&f.open, &*f.close}) {
        BOOST_TEST_CONTEXT(json::serialize(*r)) {
            BOOST_TEST(opt_i64(*r, "uid") == int64_t(alice.uid()));
            BOOST_TEST(opt_str(*r, "user") == alice.name());
            BOOST_TEST(opt_i64(*r, "raw_uid") == int64_t(raw));
        }
    }
    BOOST_TEST(f.owners.empty(), "owners " << show(f.chain()));
    BOOST_TEST(sent_exactly(f.under(alice.uid()).tx, kTrafficHeader + kTx, f.retrans()));
    BOOST_TEST(b.reports.count(int64_t(raw)) == 0u, "no user_report under the raw uid");
    BOOST_TEST(sent_exactly(b.reports[alice.uid()].tx, kTrafficHeader + kTx, f.retrans()));
    FileSums file = read_user_file(user_file(alice));
    BOOST_TEST(sent_exactly(file.tx, kTrafficHeader + kTx, f.retrans()), "alice's file: tx " << file.tx);
    BOOST_TEST(!fs::exists(dir / ("pdtt-uid-" + std::to_string(raw) + ".log")), "no file for the raw uid");
    check_books_balance(b);
}

// A rootless container's 65,536 uids are one person: their flows count in
// the range owner's share of the flow table, not one share per uid. With a
// share of 4, eight connections from eight uids of alice's range hold 4
// slots; the others' bytes are still alice's (her overflow row).
BOOST_FIXTURE_TEST_CASE(subordinate_uids_share_their_owners_slots, Lab) {
    SubuidBackup backup;
    backup.add(alice.name() + ":" + std::to_string(kSubuidBase) + ":" + std::to_string(kSubuidCount));
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1", "--max-flows-per-user", "4"});
    constexpr int kConns = 8;
    constexpr uint64_t kTx = 20'000, kRx = 5'000;
    std::vector<std::unique_ptr<Process>> senders;
    for (int i = 0; i < kConns; i++)
        senders.push_back(std::make_unique<Process>(
            std::vector<std::string>{PDTT_TRAFFIC_BIN, "send", "--to", link.b_ip4(), "--port", kPort, "--tx",
                                     std::to_string(kTx), "--rx", std::to_string(kRx), "--hold-ms", "2000", "--uid",
                                     std::to_string(kSubuidBase + 100 + i)},
            host.name()));
    for (auto& s : senders) {
        auto st = s->wait(30s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "sender: " << s->err());
    }
    std::this_thread::sleep_for(1500ms); // the last closes and overflow reach a report
    std::vector<json::object> recs = stop_agent();
    Books b = read_books(recs);
    BOOST_TEST_MESSAGE("subordinate uid shares user_report totals:" << summary(b));
    uint64_t share_full = 0, retrans = 0;
    for (const auto& r : recs) {
        if (opt_str(r, "type") == "agent_stats")
            share_full = opt_u64(r, "flow_share_full");
        if (opt_str(r, "type") == "flow_close")
            retrans += opt_u64(r, "tcp_bytes_retrans");
    }
    BOOST_TEST(share_full >= uint64_t(kConns - 4), "connections refused a slot: " << share_full);
    auto slots = b.where([](const FlowBook& f) { return f.rport() == std::stoi(kPort); });
    BOOST_TEST(slots.size() <= 4u, "flows with a slot: " << slots.size());
    BOOST_TEST(sent_exactly(b.reports[alice.uid()].tx, kConns * (kTrafficHeader + kTx), retrans),
               "alice's user_report tx " << b.reports[alice.uid()].tx);
    for (int i = 0; i < kConns; i++)
        BOOST_TEST(b.reports.count(int64_t(kSubuidBase + 100 + i)) == 0u, "no report under a raw uid");
}
