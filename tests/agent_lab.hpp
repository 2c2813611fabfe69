// Shared by the root integration tests: a private lab of two namespaces
// joined by veth, real test users, the real agent binary, and readers for
// what the agent writes (JSON lines, per-user files).
#pragma once

#include "netns.hpp"
#include "pdtt.h"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <bpf/bpf.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

namespace pdtt::test {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr const char* kPort = "5001";
inline constexpr uint64_t kTrafficHeader = 16; // pdtt-traffic's per-connection header, payload too

// What one per-user file says.
struct FileSums {
    int reports = 0;
    uint64_t tx = 0, rx = 0, total = 0;
    std::set<std::string> pairs;
};

inline FileSums read_user_file(const fs::path& p) {
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

// ---- what moved, counted without the agent ----

// Largest TCP payload one segment carries on the lab's 1500-byte links
// (IPv4, no options): a resent segment adds at most this many bytes.
inline constexpr uint64_t kMaxSegmentPayload = 1500 - 20 - 20;

// TCP segments the kernel of `ns` sent again, from its own SNMP counters
// (nstat, read without touching its history file). Every test namespace
// is new, so the absolute value is this test's.
inline uint64_t resent_segments(const Netns& ns) {
    std::string out = capture("nsenter --net=" + ns.path() + " nstat -asz TcpRetransSegs");
    static const std::regex row(R"(TcpRetransSegs\s+(\d+))");
    std::smatch m;
    if (!std::regex_search(out, m, row))
        throw std::runtime_error("nstat printed no TcpRetransSegs: " + out);
    return std::stoull(m[1]);
}

// Upper bound of the payload bytes `ns` sent twice.
inline uint64_t resent_bytes_max(const Netns& ns) { return resent_segments(ns) * kMaxSegmentPayload; }

// TCP counts what crossed the wire, so resent payload counts again.
// Sent bytes net of the kernel's own resend count are exactly what the
// application wrote. Received duplicates only the sender can count: what
// was received lies between what was moved and that plus everything the
// sender resent (nstat in its namespace).
inline bool sent_ok(uint64_t tx, uint64_t retrans, uint64_t want) { return tx >= retrans && tx - retrans == want; }
inline bool wire_ok(uint64_t got, uint64_t want, uint64_t resent_max) {
    return got >= want && got <= want + resent_max;
}
inline bool received_ok(uint64_t rx, uint64_t want, uint64_t resent_max) { return wire_ok(rx, want, resent_max); }

// Transport payload that crossed one interface, counted by nftables at the
// netdev ingress and egress hooks (where the agent's XDP and tc programs
// see packets) with no help from the agent. nft counts whole packets, so
// every rule matches one header layout and payload = bytes - packets x
// headers, the agent's definition: IP payload less the transport header
// (all of it for ICMP and later fragments). Egress bytes include the
// Ethernet header (14, no VLAN in the lab), ingress bytes start at IP.
// A GSO or GRO packet carries one set of headers for all its segments,
// so the formula holds for it too. IP packets that fit no layout are
// counted apart; a test that trusts these totals requires none.
class WireCount {
public:
    struct Totals {
        uint64_t tx = 0, rx = 0;   // payload bytes sent / received by the namespace
        uint64_t unclassified = 0; // IP packets of a layout the rules do not know
    };

    WireCount(const Netns& ns, const std::string& dev) : ns_(ns.name()), table_("pdtt_wire_" + sanitise(dev)) {
        std::string rules;
        auto rule = [&](const std::string& match, int headers) {
            rules += "    " + match + " counter accept comment \"h" + std::to_string(headers) + "\"\n";
        };
        rule("ip hdrlength 5 ip frag-off & 0x1fff != 0", 20); // later fragment: no L4 header
        for (int doff = 5; doff <= 15; doff++)
            rule("ip hdrlength 5 ip protocol tcp tcp doff " + std::to_string(doff), 20 + 4 * doff);
        rule("ip hdrlength 5 ip protocol udp", 28);
        rule("ip hdrlength 5 ip protocol != { tcp, udp }", 20);
        for (int doff = 5; doff <= 15; doff++)
            rule("ip6 nexthdr tcp tcp doff " + std::to_string(doff), 40 + 4 * doff);
        rule("ip6 nexthdr udp", 48);
        rule("ip6 nexthdr ipv6-icmp", 40);
        rule("ip6 nexthdr 0 hbh hdrlength 0 hbh nexthdr ipv6-icmp", 48); // MLD: router alert
        rules += "    meta protocol { ip, ip6 } counter comment \"unclassified\"\n";
        std::string script = "table netdev " + table_ + " {\n";
        for (const char* hook : {"ingress", "egress"})
            script += std::string("  chain ") + hook + " {\n    type filter hook " + hook + " device \"" + dev +
                      "\" priority -500; policy accept;\n" + rules + "  }\n";
        script += "}\n";
        fs::path file = fs::temp_directory_path() / (table_ + "-" + std::to_string(::getpid()) + ".nft");
        std::ofstream(file) << script;
        int rc = run("ip netns exec " + ns_ + " nft -f " + file.string());
        fs::remove(file);
        if (rc != 0)
            throw std::runtime_error("nft could not install the wire counters on " + dev +
                                     " (is the nftables package installed?)");
    }
    ~WireCount() { run("ip netns exec " + ns_ + " nft delete table netdev " + table_ + " 2>/dev/null"); }
    WireCount(const WireCount&) = delete;
    WireCount& operator=(const WireCount&) = delete;

    Totals read() const {
        json::value v = json::parse(capture("ip netns exec " + ns_ + " nft -j list table netdev " + table_));
        Totals t;
        for (const auto& item : v.at("nftables").as_array()) {
            const json::object& o = item.as_object();
            if (!o.contains("rule"))
                continue;
            const json::object& r = o.at("rule").as_object();
            bool egress = r.at("chain").as_string() == "egress";
            std::string comment = json::value_to<std::string>(r.at("comment"));
            for (const auto& e : r.at("expr").as_array()) {
                if (!e.as_object().contains("counter"))
                    continue;
                const json::object& c = e.at("counter").as_object();
                uint64_t packets = json::value_to<uint64_t>(c.at("packets")),
                         bytes = json::value_to<uint64_t>(c.at("bytes"));
                if (comment == "unclassified") {
                    t.unclassified += packets;
                    continue;
                }
                uint64_t headers = packets * (std::stoull(comment.substr(1)) + (egress ? 14 : 0));
                if (bytes < headers)
                    throw std::runtime_error("nft rule '" + comment + "' counted fewer bytes than headers");
                (egress ? t.tx : t.rx) += bytes - headers;
            }
        }
        return t;
    }

private:
    static std::string sanitise(std::string s) {
        for (char& c : s)
            if (!std::isalnum(static_cast<unsigned char>(c)))
                c = '_';
        return s;
    }

    std::string ns_, table_;
};

// ---- a quiet link ----

// New interfaces in `ns` stay silent unless a test moves bytes: no IPv6
// link-local address (so no DAD and no router solicitations), and the MLD
// reports of their addresses go out within milliseconds of link-up rather
// than over seconds. Then nothing crosses a lab link while the agent starts
// or stops, and its totals can be held to the wire's exactly. Call before
// the interfaces are made.
inline void quiet(const Netns& ns) {
    run_ok(ns.exec("sysctl -qw net.ipv6.conf.default.addr_gen_mode=1 net.ipv6.conf.default.accept_ra=0 "
                   "net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.default.dad_transmits=0 "
                   "net.ipv6.conf.default.mldv2_unsolicited_report_interval=1"));
}

// Drops the MLD reports `dev` sends, at netdev egress, which runs before
// tc egress: the agent never sees them. They go out at link-up, and on the
// other end's link-up (even one that comes a second later), with no
// multicast router to hear them in the lab.
inline void drop_mld(const Netns& ns, const std::string& dev) {
    run_ok(ns.exec("nft add table netdev pdtt_quiet"));
    run_ok(ns.exec("nft add chain netdev pdtt_quiet " + dev + "_out '{ type filter hook egress device \"" + dev +
                   "\" priority -1000; }'"));
    run_ok(ns.exec("nft add rule netdev pdtt_quiet " + dev +
                   "_out icmpv6 type '{ mld-listener-report, mld2-listener-report, mld-listener-done }' drop"));
}

// Both ends of a lab link silent for MLD (drop_mld).
struct NoMld {
    NoMld(const Netns& a, const std::string& a_dev, const Netns& b, const std::string& b_dev) {
        drop_mld(a, a_dev);
        drop_mld(b, b_dev);
    }
};

// A namespace whose interfaces are quiet from the start.
struct QuietNetns : Netns {
    QuietNetns() { quiet(*this); }
};

inline std::string mac_of(const std::string& ns, const std::string& dev) {
    std::istringstream in(capture("ip -n " + ns + " -br link show dev " + dev));
    std::string name, state, mac;
    in >> name >> state >> mac;
    return mac;
}

// Permanent neighbour entries on both ends of a pair: no ARP, and above
// all no neighbour discovery (ICMPv6, which the agent counts) at any time.
inline void pin_neighbours(const VethPair& v, const Netns& a, const Netns& b) {
    std::string mac_a = mac_of(a.name(), v.a_name()), mac_b = mac_of(b.name(), v.b_name());
    for (const auto& [ip, mac, ns, dev] :
         {std::tuple{v.b_ip4(), mac_b, &a, v.a_name()}, std::tuple{v.b_ip6(), mac_b, &a, v.a_name()},
          std::tuple{v.a_ip4(), mac_a, &b, v.b_name()}, std::tuple{v.a_ip6(), mac_a, &b, v.b_name()}})
        run_ok("ip -n " + ns->name() + " neigh replace " + ip + " lladdr " + mac + " dev " + dev + " nud permanent");
}

// Removes directories a test made (cgroups), deepest first, retrying for
// 2 s while the processes in them exit; an error if any is left.
inline void remove_dirs(const std::vector<fs::path>& deepest_first) {
    for (int i = 0; i < 200; ++i) {
        const fs::path* left = nullptr;
        for (const fs::path& p : deepest_first)
            if (::rmdir(p.c_str()) != 0 && errno != ENOENT && !left)
                left = &p;
        if (!left)
            return;
        if (i == 199)
            BOOST_ERROR("directories left behind: " << *left);
        std::this_thread::sleep_for(10ms);
    }
}

// Waits until no TCP connection in ns is still opening or closing (the
// last FIN and ACK of a finished transfer), so that the agent's final
// report sees every packet the wire count sees.
inline bool tcp_settled(const Netns& ns, std::chrono::milliseconds timeout = 3s) {
    return wait_until(
        [&] {
            return capture(ns.exec("ss -Htn state syn-sent state syn-recv state fin-wait-1 state fin-wait-2 "
                                   "state close-wait state last-ack state closing"))
                .empty();
        },
        timeout, 10ms);
}

inline std::vector<json::object> parse_lines(const std::string& out) {
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

inline uint64_t u64(const json::object& o, const char* k) { return json::value_to<uint64_t>(o.at(k)); }
inline int64_t i64(const json::object& o, const char* k) { return json::value_to<int64_t>(o.at(k)); }
inline std::string str(const json::object& o, const char* k) { return json::value_to<std::string>(o.at(k)); }

// tcp_bytes_retrans summed over the flow_close records (of one uid).
inline uint64_t retrans_of(const std::vector<json::object>& recs, std::optional<int64_t> uid = {}) {
    uint64_t sum = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && (!uid || i64(r, "uid") == *uid))
            sum += u64(r, "tcp_bytes_retrans");
    return sum;
}

// Waits for the agent's "monitoring ..." line on stderr, which it prints
// once everything is attached; false if it exited or timed out first.
inline bool agent_ready(Process& agent, std::chrono::milliseconds timeout = 15s) {
    wait_until([&] { return agent.err().find("monitoring") != std::string::npos || !agent.running(); }, timeout);
    return agent.err().find("monitoring") != std::string::npos && agent.running();
}

// Sums of the user_report records, every user (unattributed too).
inline std::pair<uint64_t, uint64_t> reported_totals(const std::vector<json::object>& recs) {
    uint64_t tx = 0, rx = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "user_report") {
            tx += u64(r, "tx_bytes");
            rx += u64(r, "rx_bytes");
        }
    return {tx, rx};
}

// Two namespaces joined by veth; the agent side is "host", the servers are in
// "peer". Members are destroyed in reverse: processes, then links, then users.
// The link is quiet and its payload counted by nftables from the start, so
// a test can hold the agent's totals to the wire's (check_wire).
struct Lab {
    TestUser alice{"pdtt-test1"};
    TestUser bob{"pdtt-test2"};
    QuietNetns host, peer;
    VethPair link{&host, &peer, 7};
    NoMld no_mld{host, link.a_name(), peer, link.b_name()};
    WireCount wire{host, link.a_name()};
    fs::path dir;
    fs::path no_config; // an empty config file: a host's /etc/pdtt.conf must not leak in
    std::unique_ptr<Process> agent;

    Lab() {
        pin_neighbours(link, host, peer);
        char tmpl[] = "/tmp/pdtt-lab-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        no_config = dir / "empty.conf";
        std::ofstream{no_config};
        // Readable by the test users too (an agent run without privilege).
        fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        fs::permissions(no_config, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                       fs::perms::others_read);
    }
    ~Lab() {
        agent.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // A pdtt-traffic server in the peer namespace (or `ns`), as root.
    std::unique_ptr<Process> serve(const std::string& addr, std::vector<std::string> extra = {},
                                   const Netns* ns = nullptr) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "serve", "--bind", addr, "--port", kPort};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto p = std::make_unique<Process>(argv, (ns ? *ns : peer).name());
        BOOST_REQUIRE_MESSAGE(p->wait_for_line("ready", 10s), "server did not start: " << p->err());
        return p;
    }

    // argv that runs pdtt-traffic as user u (the peer's side, or a server here).
    static std::vector<std::string> as_user(const TestUser& u, std::vector<std::string> argv) {
        std::vector<std::string> out{
            "setpriv", "--reuid", std::to_string(u.uid()), "--regid", std::to_string(u.gid()), "--clear-groups"};
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }

    fs::path user_file(const TestUser& u) const { return dir / ("pdtt-" + u.name() + ".log"); }

    // The agent in the host namespace on the lab's link (unless extra names -i),
    // with an empty config file.
    void start_agent(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_AGENT_BIN, "-c", no_config.string(),     "--stdout",
                                      "json",         "-l", (dir / "pdtt").string()};
        if (std::find(extra.begin(), extra.end(), "-i") == extra.end())
            argv.insert(argv.end(), {"-i", link.a_name()});
        argv.insert(argv.end(), extra.begin(), extra.end());
        agent = std::make_unique<Process>(argv, host.name());
        bool up = agent_ready(*agent);
        if (!up) // an agent that exited: give the reader its last line
            wait_until([&] { return !agent->err().empty(); }, 1s);
        BOOST_REQUIRE_MESSAGE(up, "agent did not start: " << agent->err());
    }

    // SIGTERM once the last connections have closed; the agent must exit 0
    // within two seconds.
    std::vector<json::object> stop_agent() {
        tcp_settled(host);
        tcp_settled(peer);
        agent->signal(SIGTERM);
        auto st = agent->wait(2s);
        BOOST_REQUIRE_MESSAGE(st.has_value(), "agent still running 2 s after SIGTERM");
        BOOST_TEST(*st == 0, "agent exit status after SIGTERM: " << *st << "; stderr: " << agent->err());
        return parse_lines(agent->out());
    }

    // The users' totals (unattributed included) are what crossed the link.
    // Only meaningful after the agent has stopped.
    // `more`: the other monitored links' counts.
    void check_wire(const std::vector<json::object>& recs, std::vector<const WireCount*> more = {}) const {
        WireCount::Totals w = wire.read();
        for (const WireCount* m : more) {
            WireCount::Totals t = m->read();
            w.tx += t.tx;
            w.rx += t.rx;
            w.unclassified += t.unclassified;
        }
        auto [tx, rx] = reported_totals(recs);
        BOOST_TEST(w.unclassified == 0u, "IP packets the wire count cannot split into headers and payload");
        BOOST_TEST(tx == w.tx, "all users' tx_bytes " << tx << " vs the payload nftables saw leave " << w.tx);
        BOOST_TEST(rx == w.rx, "all users' rx_bytes " << rx << " vs the payload nftables saw arrive " << w.rx);
    }

    // pdtt-traffic send from the host namespace as user u.
    std::unique_ptr<Process> start_transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx,
                                            int connections = 1, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "send",
                                      "--to",           to,
                                      "--port",         kPort,
                                      "--tx",           std::to_string(tx),
                                      "--rx",           std::to_string(rx),
                                      "--connections",  std::to_string(connections),
                                      "--uid",          std::to_string(u.uid())};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return std::make_unique<Process>(argv, host.name());
    }

    void transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx, int connections = 1,
                  std::vector<std::string> extra = {}) {
        auto c = start_transfer(u, to, tx, rx, connections, std::move(extra));
        auto st = c->wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << c->err());
    }

    // pdtt-traffic send from the peer namespace (as root) to a server here.
    void peer_transfer(const std::string& to, const std::string& port, uint64_t tx, uint64_t rx, int connections = 1,
                       std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "send",
                                      "--to",           to,
                                      "--port",         port,
                                      "--tx",           std::to_string(tx),
                                      "--rx",           std::to_string(rx),
                                      "--connections",  std::to_string(connections)};
        argv.insert(argv.end(), extra.begin(), extra.end());
        Process c(argv, peer.name());
        auto st = c.wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer from the peer failed: " << c.err());
    }

    // "native", "generic" or "" (no XDP program) on the monitored interface.
    std::string xdp_mode() const {
        std::string ipl = capture("ip -n " + host.name() + " -d link show dev " + link.a_name());
        if (ipl.find("xdpgeneric") != std::string::npos)
            return "generic";
        return ipl.find("prog/xdp") != std::string::npos ? "native" : "";
    }

    // What is still attached to the monitored interface. TCX is asked of the
    // kernel directly: Debian's bpftool predates it.
    std::string attached() const { return attached_to(link.a_name(), link.a_ifindex()); }
    std::string attached_to(const std::string& dev, int ifindex) const {
        std::string ipl = capture("ip -n " + host.name() + " -d link show dev " + dev);
        std::string net = capture(host.exec("tc filter show dev " + dev + " ingress")) +
                          capture(host.exec("tc filter show dev " + dev + " egress"));
        std::string left;
        if (ipl.find("prog/xdp") != std::string::npos || ipl.find("xdpgeneric") != std::string::npos)
            left += "xdp ";
        EnterNetns in(host);
        for (auto [type, name] :
             {std::pair{PDTT_BPF_TCX_INGRESS, "tcx-ingress "}, {PDTT_BPF_TCX_EGRESS, "tcx-egress "}}) {
            LIBBPF_OPTS(bpf_prog_query_opts, q);
            if (bpf_prog_query_opts(ifindex, static_cast<bpf_attach_type>(type), &q) == 0 && q.prog_cnt > 0)
                left += name;
        }
        if (net.find("pdtt") != std::string::npos || net.find("bpf") != std::string::npos)
            left += "clsact ";
        return left;
    }
};

} // namespace pdtt::test
