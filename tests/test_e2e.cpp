// End to end: the real agent on one end of a veth pair between two private
// namespaces, real non-root users moving known byte counts through it, and
// its JSON lines and per-user files checked against what was moved.
#define BOOST_TEST_MODULE e2e
#include <boost/test/unit_test.hpp>

#include "netns.hpp"

#include <boost/json.hpp>
#include <bpf/bpf.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pdtt::test;

namespace {

constexpr const char* kPort = "5001";
constexpr int kBpfTcxEgress = 47;   // libbpf 1.1 headers predate TCX
constexpr uint64_t kHeader = 16;   // pdtt-traffic's per-connection header, payload too

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// What one per-user file says.
struct FileSums {
    int reports = 0;
    uint64_t tx = 0, rx = 0, total = 0;
    std::set<std::string> pairs;
};

FileSums read_user_file(const fs::path& p) {
    FileSums s;
    std::ifstream in(p);
    std::string line;
    static const std::regex row(R"(  TX: (\d+) bytes \| RX: (\d+) bytes \| Total: (\d+) bytes)");
    static const std::regex total(R"(Total traffic: (\d+) bytes)");
    std::smatch m;
    while (std::getline(in, line)) {
        if (line.rfind("=== Network Statistics Report [", 0) == 0)
            s.reports++;
        else if (line.rfind("Connection: ", 0) == 0)
            s.pairs.insert(line.substr(12));
        else if (std::regex_match(line, m, row)) {
            s.tx += std::stoull(m[1]);
            s.rx += std::stoull(m[2]);
        } else if (std::regex_match(line, m, total))
            s.total += std::stoull(m[1]);
    }
    return s;
}

bool near(uint64_t got, uint64_t want, double tolerance = 0.01) {
    double d = got > want ? double(got - want) : double(want - got);
    return d <= tolerance * double(want);
}

std::vector<json::object> parse_lines(const std::string& out) {
    std::vector<json::object> recs;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        BOOST_REQUIRE_MESSAGE(!ec && v.is_object(), "not a JSON object: " << line);
        recs.push_back(v.as_object());
    }
    return recs;
}

uint64_t u64(const json::object& o, const char* k) { return json::value_to<uint64_t>(o.at(k)); }
int64_t i64(const json::object& o, const char* k) { return json::value_to<int64_t>(o.at(k)); }
std::string str(const json::object& o, const char* k) { return json::value_to<std::string>(o.at(k)); }

// Two namespaces joined by veth; the agent side is "host", the servers are in
// "peer". Members are destroyed in reverse: processes, then links, then users.
struct Lab {
    TestUser alice{"pdtt-test1"};
    TestUser bob{"pdtt-test2"};
    Netns host, peer;
    VethPair link{&host, &peer, 7};
    fs::path dir;
    std::unique_ptr<Process> srv4, srv6, agent;

    Lab() {
        char tmpl[] = "/tmp/pdtt-e2e-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        srv4 = serve(link.b_ip4());
        srv6 = serve(link.b_ip6());
    }
    ~Lab() {
        agent.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    std::unique_ptr<Process> serve(const std::string& addr) {
        auto p = std::make_unique<Process>(
            std::vector<std::string>{PDTT_TRAFFIC_BIN, "serve", "--bind", addr, "--port", kPort}, peer.name());
        BOOST_REQUIRE_MESSAGE(p->wait_for_line("ready", 10s), "server did not start: " << p->err());
        return p;
    }

    fs::path user_file(const TestUser& u) const { return dir / ("pdtt-" + u.name() + ".log"); }

    void start_agent(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_AGENT_BIN, "-i", link.a_name(), "--stdout", "json",
                                      "-l", (dir / "pdtt").string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        agent = std::make_unique<Process>(argv, host.name());
        bool up = wait_until([&] { return agent->err().find("monitoring") != std::string::npos || !agent->running(); },
                             15s);
        BOOST_REQUIRE_MESSAGE(up && agent->running(), "agent did not start: " << agent->err());
    }

    // SIGTERM; the agent must exit 0 promptly (SPEC: within two seconds).
    std::vector<json::object> stop_agent() {
        agent->signal(SIGTERM);
        auto st = agent->wait(3s);
        BOOST_REQUIRE_MESSAGE(st.has_value(), "agent still running 3 s after SIGTERM");
        BOOST_TEST(*st == 0, "agent exit status after SIGTERM: " << *st << "; stderr: " << agent->err());
        return parse_lines(agent->out());
    }

    std::unique_ptr<Process> start_transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx,
                                            int connections = 1, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "send", "--to", to, "--port", kPort,
                                      "--tx", std::to_string(tx), "--rx", std::to_string(rx),
                                      "--connections", std::to_string(connections),
                                      "--uid", std::to_string(u.uid())};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return std::make_unique<Process>(argv, host.name());
    }

    void transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx, int connections = 1) {
        auto c = start_transfer(u, to, tx, rx, connections);
        auto st = c->wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << c->err());
    }

    // What is still attached to the monitored interface. TCX is asked of the
    // kernel directly: Debian's bpftool predates it.
    std::string attached() const {
        std::string ipl = capture("ip -n " + host.name() + " -d link show dev " + link.a_name());
        std::string net = capture(host.exec("tc filter show dev " + link.a_name() + " egress"));
        std::string left;
        if (ipl.find("prog/xdp") != std::string::npos || ipl.find("xdpgeneric") != std::string::npos)
            left += "xdp ";
        EnterNetns in(host);
        LIBBPF_OPTS(bpf_prog_query_opts, q);
        if (bpf_prog_query_opts(link.a_ifindex(), static_cast<bpf_attach_type>(kBpfTcxEgress), &q) == 0 &&
            q.prog_cnt > 0)
            left += "tcx ";
        if (net.find("pdtt") != std::string::npos || net.find("bpf") != std::string::npos)
            left += "clsact ";
        return left;
    }
};

struct Expect {
    uint64_t tx = 0, rx = 0;
    int flows = 0;
};

} // namespace

BOOST_FIXTURE_TEST_CASE(two_users_bytes_match_in_json_and_files, Lab) {
    start_agent({"-t", "1"});
    std::map<int64_t, Expect> want;
    auto move = [&](const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx, int n = 1) {
        transfer(u, to, tx, rx, n);
        auto& w = want[u.uid()];
        w.tx += n * (tx + kHeader);
        w.rx += n * rx;
        w.flows += n;
    };
    move(alice, link.b_ip4(), 3'000'000, 1'000'000);
    move(alice, link.b_ip6(), 1'000'000, 250'000);
    move(bob, link.b_ip4(), 500'000, 2'000'000);
    move(bob, link.b_ip6(), 100'000, 300'000, 2);
    auto recs = stop_agent();

    std::map<int64_t, Expect> closes, reports;
    std::map<int64_t, int> opens;
    uint64_t unattributed_reports = 0;
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
            // The kernel's own totals count SYN and FIN as one byte each.
            BOOST_TEST(near(u64(r, "tcp_bytes_acked"), u64(r, "tx_bytes")));
            BOOST_TEST(near(u64(r, "tcp_bytes_received"), u64(r, "rx_bytes")));
            closes[uid].tx += u64(r, "tx_bytes");
            closes[uid].rx += u64(r, "rx_bytes");
            closes[uid].flows++;
        } else if (type == "user_report") {
            int64_t uid = i64(r, "uid");
            if (uid == -1) {
                unattributed_reports++;
                continue;
            }
            reports[uid].tx += u64(r, "tx_bytes");
            reports[uid].rx += u64(r, "rx_bytes");
        }
    }
    BOOST_TEST(unattributed_reports > 0u);   // handshakes and ARP/ND cross the link too

    for (const TestUser* u : {&alice, &bob}) {
        BOOST_TEST_CONTEXT("user " << u->name()) {
            const Expect& w = want.at(u->uid());
            BOOST_TEST(opens[u->uid()] == w.flows);
            BOOST_TEST(closes[u->uid()].flows == w.flows);
            BOOST_TEST(near(closes[u->uid()].tx, w.tx), closes[u->uid()].tx << " vs " << w.tx);
            BOOST_TEST(near(closes[u->uid()].rx, w.rx), closes[u->uid()].rx << " vs " << w.rx);
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

BOOST_FIXTURE_TEST_CASE(transfer_started_before_the_agent_is_attributed, Lab) {
    // Connected before the agent starts; the bytes move after it is up.
    auto early = start_transfer(bob, link.b_ip4(), 400'000, 600'000, 1, {"--pause-before-ms", "4000"});
    BOOST_REQUIRE(wait_until([&] { return capture(host.exec("ss -Htn state established")).find(link.b_ip4()) !=
                                          std::string::npos; },
                             5s));
    start_agent({"-t", "1"});
    auto st = early->wait(30s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << early->err());
    auto recs = stop_agent();
    int found = 0;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close")
            continue;
        found++;
        BOOST_TEST(i64(r, "uid") == bob.uid());
        BOOST_TEST(near(u64(r, "tx_bytes"), 400'000 + kHeader));
        BOOST_TEST(near(u64(r, "rx_bytes"), 600'000));
        BOOST_TEST(r.at("pid").is_null());   // the kernel never ran in the owner while we watched
    }
    BOOST_TEST(found == 1);
}

BOOST_FIXTURE_TEST_CASE(sigterm_writes_the_final_partial_report, Lab) {
    start_agent({"-t", "3600"});
    transfer(alice, link.b_ip4(), 700'000, 300'000);
    auto recs = stop_agent();
    FileSums f = read_user_file(user_file(alice));
    BOOST_TEST(f.reports == 1);
    BOOST_TEST(near(f.tx, 700'000 + kHeader));
    BOOST_TEST(near(f.rx, 300'000));
    int stats = 0;
    for (const auto& r : recs)
        stats += str(r, "type") == "agent_stats";
    BOOST_TEST(stats == 1);
}

BOOST_FIXTURE_TEST_CASE(sighup_after_rotation_starts_a_new_file_and_loses_nothing, Lab) {
    start_agent({"-t", "1"});
    transfer(alice, link.b_ip4(), 800'000, 100'000);
    fs::path file = user_file(alice), rotated = file.string() + ".1";
    BOOST_REQUIRE(wait_until([&] { return read_user_file(file).tx >= 800'000; }, 10s));
    fs::rename(file, rotated);
    agent->signal(SIGHUP);
    transfer(alice, link.b_ip6(), 200'000, 900'000);
    stop_agent();
    BOOST_TEST_REQUIRE(fs::exists(file));
    FileSums a = read_user_file(rotated), b = read_user_file(file);
    BOOST_TEST(near(a.tx + b.tx, 1'000'000 + 2 * kHeader));
    BOOST_TEST(near(a.rx + b.rx, 1'000'000));
    BOOST_TEST(b.pairs.count(link.a_ip6() + " -> " + link.b_ip6()) == 1u);
}

BOOST_FIXTURE_TEST_CASE(kill_9_leaves_nothing_attached_and_the_next_start_works, Lab) {
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
        closes += str(r, "type") == "flow_close" && i64(r, "uid") == bob.uid();
    BOOST_TEST(closes == 1);
}

BOOST_FIXTURE_TEST_CASE(the_original_command_line_works_under_the_original_name, Lab) {
    fs::path alias = dir / "pdtt_xdp_user";
    fs::create_symlink(PDTT_AGENT_BIN, alias);
    // The original README's form: pdtt_xdp_user -i IFACE -l PREFIX -t SECONDS, text on the console.
    agent = std::make_unique<Process>(
        std::vector<std::string>{alias.string(), "-i", link.a_name(), "-l", (dir / "traffic").string(), "-t", "1"},
        host.name());
    BOOST_REQUIRE(wait_until([&] { return agent->err().find("monitoring") != std::string::npos || !agent->running(); },
                             15s));
    BOOST_REQUIRE_MESSAGE(agent->running(), agent->err());
    transfer(alice, link.b_ip4(), 250'000, 50'000);
    agent->signal(SIGINT);
    auto st = agent->wait(3s);
    BOOST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 0);
    FileSums f = read_user_file(dir / ("traffic-" + alice.name() + ".log"));
    BOOST_TEST(near(f.tx, 250'000 + kHeader));
    BOOST_TEST(near(f.rx, 50'000));
    // The console table names the user on a row of its own.
    BOOST_TEST(agent->out().find("\n" + alice.name() + " ") != std::string::npos, agent->out());
}
