// A safe agent on a shared host (issue #13): the capabilities it keeps while
// running, an interface that appears only after the start, and systemd's
// notification protocol. Real agent, real namespaces, real traffic.
#define BOOST_TEST_MODULE safe_host
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

constexpr uint64_t kCapChown = 1ull << 0;
constexpr uint64_t kCapNetAdmin = 1ull << 12;
constexpr uint64_t kCapPerfmon = 1ull << 38;
constexpr uint64_t kCapBpf = 1ull << 39;

// A field of /proc/PID/status ("CapEff", "NoNewPrivs"), as text.
std::string status_field(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(key + ":")) {
            auto v = line.substr(key.size() + 1);
            return v.substr(v.find_first_not_of(" \t"));
        }
    return {};
}

uint64_t tx_of(const std::vector<json::object>& recs, const TestUser& u) {
    uint64_t tx = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && i64(r, "uid") == u.uid())
            tx += u64(r, "tx_bytes");
    return tx;
}

// NOTIFY_SOCKET for the agents started while it lives: a datagram socket
// that collects what they send.
class NotifySocket {
public:
    explicit NotifySocket(const fs::path& dir) : path_(dir / "notify") {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_.c_str());
        BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
        ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
        ::setenv("WATCHDOG_USEC", "400000", 1); // a ping every 200 ms
    }
    ~NotifySocket() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::close(fd_);
    }
    // Every message received so far, in order.
    const std::vector<std::string>& messages() {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd_, buf, sizeof(buf), 0)) > 0;)
            got_.emplace_back(buf, static_cast<size_t>(n));
        return got_;
    }
    bool has(const std::string& text) {
        for (const auto& m : messages())
            if (m.find(text) != std::string::npos)
                return true;
        return false;
    }
    size_t count(const std::string& text) {
        size_t n = 0;
        for (const auto& m : messages())
            n += m.find(text) != std::string::npos;
        return n;
    }

private:
    fs::path path_;
    int fd_ = -1;
    std::vector<std::string> got_;
};

} // namespace

BOOST_FIXTURE_TEST_CASE(the_running_agent_keeps_three_capabilities_and_still_reattaches, Lab) {
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    const pid_t pid = agent->pid();
    const uint64_t eff = std::stoull(status_field(pid, "CapEff"), nullptr, 16);
    const uint64_t prm = std::stoull(status_field(pid, "CapPrm"), nullptr, 16);
    const uint64_t bnd = std::stoull(status_field(pid, "CapBnd"), nullptr, 16);
    const uint64_t want = kCapNetAdmin | kCapPerfmon | kCapBpf;
    // CAP_CHOWN only where root is not in group adm (new files get group adm).
    BOOST_TEST((eff & ~kCapChown) == want, "CapEff " << std::hex << eff);
    BOOST_TEST(prm == eff, "CapPrm " << std::hex << prm);
    BOOST_TEST((bnd & ~kCapChown) == want, "CapBnd " << std::hex << bnd);
    BOOST_TEST(std::stoull(status_field(pid, "CapInh"), nullptr, 16) == 0u);
    BOOST_TEST(status_field(pid, "NoNewPrivs") == "1");
    BOOST_TEST(agent->err().find("capabilities kept: cap_net_admin, cap_bpf, cap_perfmon") != std::string::npos,
               agent->err());

    // Deleted and made again: attached again with the reduced set.
    const std::string ns = "ip -n " + host.name() + " ";
    run_ok(ns + "link del " + link.a_name());
    BOOST_TEST_REQUIRE(wait_until([&] { return agent->err().find("was deleted") != std::string::npos; }, 10s),
                       agent->err());
    run_ok(ns + "link add " + link.a_name() + " type veth peer name " + link.b_name() + " netns " + peer.name());
    run_ok(ns + "addr add " + link.a_ip4() + "/24 dev " + link.a_name());
    run_ok("ip -n " + peer.name() + " addr add " + link.b_ip4() + "/24 dev " + link.b_name());
    run_ok(ns + "link set " + link.a_name() + " up");
    run_ok("ip -n " + peer.name() + " link set " + link.b_name() + " up");
    BOOST_TEST_REQUIRE(wait_until([&] { return agent->err().find("is back") != std::string::npos; }, 10s),
                       agent->err());
    BOOST_TEST(agent->err().find("will retry") == std::string::npos, agent->err());
    transfer(alice, link.b_ip4(), 300'000, 40'000);
    BOOST_TEST(attached() == "tcx-ingress tcx-egress ", attached());
    auto recs = stop_agent();
    BOOST_TEST(sent_ok(tx_of(recs, alice), retrans_of(recs, alice.uid()), 300'000 + kTrafficHeader),
               "alice's bytes after the re-attach: " << tx_of(recs, alice));
}

BOOST_FIXTURE_TEST_CASE(without_the_flag_a_missing_interface_is_exit_2_at_once, Lab) {
    Process a({PDTT_AGENT_BIN, "-c", no_config.string(), "-l", (dir / "pdtt").string(), "-i", "pdttnone0"},
              host.name());
    auto st = a.wait(5s);
    BOOST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 2);
    BOOST_TEST(a.err().find("interface 'pdttnone0' does not exist") != std::string::npos, a.err());
}

BOOST_FIXTURE_TEST_CASE(a_late_interface_is_waited_for_and_counted, Lab) {
    NotifySocket notify(dir);
    auto srv = serve(link.b_ip4());
    const std::string ns = "ip -n " + host.name() + " ";
    run_ok(ns + "link del " + link.a_name());
    start_agent({"-t", "1", "--wait-for-interfaces"});
    BOOST_TEST(agent->err().find("interface " + link.a_name() + " does not exist yet: waiting for it") !=
                   std::string::npos,
               agent->err());
    // Ready, and saying what it waits for.
    BOOST_TEST_REQUIRE(wait_until([&] { return notify.has("READY=1"); }, 5s), "no READY=1");
    BOOST_TEST(notify.has("STATUS=counting; waiting for interface " + link.a_name()), notify.messages().front());
    BOOST_TEST(notify.count("READY=1") == 1u);

    run_ok(ns + "link add " + link.a_name() + " type veth peer name " + link.b_name() + " netns " + peer.name());
    run_ok(ns + "addr add " + link.a_ip4() + "/24 dev " + link.a_name());
    run_ok("ip -n " + peer.name() + " addr add " + link.b_ip4() + "/24 dev " + link.b_name());
    run_ok(ns + "link set " + link.a_name() + " up");
    run_ok("ip -n " + peer.name() + " link set " + link.b_name() + " up");
    BOOST_TEST_REQUIRE(
        wait_until([&] { return agent->err().find("appeared; counting starts") != std::string::npos; }, 10s),
        agent->err());
    BOOST_TEST(wait_until(
                   [&] {
                       const auto& m = notify.messages();
                       return std::find(m.begin(), m.end(), "STATUS=counting") != m.end();
                   },
                   5s),
               "STATUS= says nothing is awaited any more");
    transfer(bob, link.b_ip4(), 200'000, 30'000);
    // WATCHDOG_USEC=400 ms: a ping every 200 ms from the loop.
    BOOST_TEST(wait_until([&] { return notify.count("WATCHDOG=1") >= 5; }, 5s), notify.count("WATCHDOG=1"));
    auto recs = stop_agent();
    BOOST_TEST(notify.has("STOPPING=1"));
    BOOST_TEST(sent_ok(tx_of(recs, bob), retrans_of(recs, bob.uid()), 200'000 + kTrafficHeader),
               "bob's bytes on the late interface: " << tx_of(recs, bob));
}

BOOST_FIXTURE_TEST_CASE(no_notify_socket_no_notification, Lab) {
    ::unsetenv("NOTIFY_SOCKET");
    start_agent({"-t", "1"});
    BOOST_TEST(agent->err().find("notify systemd") == std::string::npos, agent->err());
    stop_agent();
}
