// Shared by the root integration tests: a private lab of two namespaces
// joined by veth, real test users, the real agent binary, and readers for
// what the agent writes (JSON lines, per-user files).
#pragma once

#include "netns.hpp"
#include "pdtt.h"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <bpf/bpf.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace pdtt::test {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr const char* kPort = "5001";
inline constexpr uint64_t kTrafficHeader = 16;   // pdtt-traffic's per-connection header, payload too

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

inline bool near(uint64_t got, uint64_t want, double tolerance = 0.01) {
    double d = got > want ? double(got - want) : double(want - got);
    return d <= tolerance * double(want);
}

// TCP counts what crossed the wire, so retransmitted payload counts again
// (SPEC). Sent bytes are checked net of the kernel's own retransmit count
// (flow_close tcp_bytes_retrans); received duplicates only the peer could
// count, so received bytes may not fall short but get 10% room above;
// where no retransmit count is at hand (console text), both get that room.
inline bool sent_ok(uint64_t tx, uint64_t retrans, uint64_t want) { return near(tx - retrans, want); }
inline bool wire_ok(uint64_t got, uint64_t want) { return got + want / 100 >= want && got <= want + want / 10; }
inline bool received_ok(uint64_t rx, uint64_t want) { return wire_ok(rx, want); }

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

// Two namespaces joined by veth; the agent side is "host", the servers are in
// "peer". Members are destroyed in reverse: processes, then links, then users.
struct Lab {
    TestUser alice{"pdtt-test1"};
    TestUser bob{"pdtt-test2"};
    Netns host, peer;
    VethPair link{&host, &peer, 7};
    fs::path dir;
    std::unique_ptr<Process> agent;

    Lab() {
        char tmpl[] = "/tmp/pdtt-lab-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
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

    fs::path user_file(const TestUser& u) const { return dir / ("pdtt-" + u.name() + ".log"); }

    // The agent in the host namespace on the lab's link (unless extra names -i).
    void start_agent(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_AGENT_BIN, "--stdout", "json", "-l", (dir / "pdtt").string()};
        if (std::find(extra.begin(), extra.end(), "-i") == extra.end())
            argv.insert(argv.end(), {"-i", link.a_name()});
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

    // pdtt-traffic send from the host namespace as user u.
    std::unique_ptr<Process> start_transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx,
                                            int connections = 1, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{PDTT_TRAFFIC_BIN, "send", "--to", to, "--port", kPort,
                                      "--tx", std::to_string(tx), "--rx", std::to_string(rx),
                                      "--connections", std::to_string(connections),
                                      "--uid", std::to_string(u.uid())};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return std::make_unique<Process>(argv, host.name());
    }

    void transfer(const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx, int connections = 1,
                  std::vector<std::string> extra = {}) {
        auto c = start_transfer(u, to, tx, rx, connections, std::move(extra));
        auto st = c->wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << c->err());
    }

    // What is still attached to the monitored interface. TCX is asked of the
    // kernel directly: Debian's bpftool predates it.
    std::string attached() const { return attached_to(link.a_name(), link.a_ifindex()); }
    std::string attached_to(const std::string& dev, int ifindex) const {
        std::string ipl = capture("ip -n " + host.name() + " -d link show dev " + dev);
        std::string net = capture(host.exec("tc filter show dev " + dev + " egress"));
        std::string left;
        if (ipl.find("prog/xdp") != std::string::npos || ipl.find("xdpgeneric") != std::string::npos)
            left += "xdp ";
        EnterNetns in(host);
        LIBBPF_OPTS(bpf_prog_query_opts, q);
        if (bpf_prog_query_opts(ifindex, static_cast<bpf_attach_type>(PDTT_BPF_TCX_EGRESS), &q) == 0 &&
            q.prog_cnt > 0)
            left += "tcx ";
        if (net.find("pdtt") != std::string::npos || net.find("bpf") != std::string::npos)
            left += "clsact ";
        return left;
    }
};

} // namespace pdtt::test
