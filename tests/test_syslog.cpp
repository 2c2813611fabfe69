// Syslog sink end to end: the real agent and a real rsyslog (in a private
// namespace, on its loopback) over UDP and TCP, including a receiver
// outage; then what only root can watch of the TCP sink: its connection
// attempts (a raw socket), its name lookups (a namespace's own /etc/hosts)
// and the agent's exit with a dead receiver. The messages alone are
// test_syslog_format, the transports against in-process receivers
// test_syslog_transport.
#define BOOST_TEST_MODULE syslog
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"
#include "fd.hpp"
#include "syslog_lab.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace pdtt;
using namespace pdtt::test;

namespace {

// A file of ns's own /etc: `ip netns exec`, and so a Process in ns, sees
// /etc/netns/NAME/FILE mounted over /etc/FILE. Rewritten in place, so a
// running process sees every change.
class NetnsEtcFile {
public:
    static constexpr const char* kRoot = "/etc/netns";

    NetnsEtcFile(const Netns& ns, const std::string& file, const std::string& text) :
        dir_(fs::path(kRoot) / ns.name()), path_(dir_ / file) {
        fs::create_directories(dir_);
        write(text);
    }
    ~NetnsEtcFile() { remove(dir_); }
    NetnsEtcFile(const NetnsEtcFile&) = delete;
    NetnsEtcFile& operator=(const NetnsEtcFile&) = delete;

    void write(const std::string& text) const {
        std::ofstream f(path_, std::ios::trunc); // the same inode: the mount stays
        f << text;
        f.close();
        if (!f)
            throw std::runtime_error("cannot write " + path_.string());
    }

    static void remove(const fs::path& dir) {
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::remove(kRoot, ec); // only when empty
    }
    // What a crashed run left: the directories of namespaces that are gone.
    static void remove_stale() {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(kRoot, ec))
            if (e.path().filename().string().rfind("pdtt-t-", 0) == 0 &&
                !fs::exists("/run/netns" / e.path().filename()))
                remove(e.path());
    }

private:
    fs::path dir_, path_;
};

struct Global {
    Global() {
        cleanup_stale();
        NetnsEtcFile::remove_stale();
    }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// The times of TCP SYNs to port in this thread's network namespace, as a
// raw socket sees them: connection attempts, refused ones too.
class SynWatch {
public:
    explicit SynWatch(uint16_t port) :
        port_(port), fd_(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP)) {
        if (!fd_)
            throw std::runtime_error(std::string("raw socket: ") + std::strerror(errno));
    }

    void read(std::vector<Steady::time_point>& at) const {
        unsigned char pkt[2048];
        for (ssize_t n; (n = ::recv(fd_.get(), pkt, sizeof pkt, 0)) > 0;) {
            std::size_t ihl = (pkt[0] & 0x0fu) * 4;
            if (static_cast<std::size_t>(n) < ihl + 14)
                continue;
            const unsigned char* tcp = pkt + ihl;
            bool syn = (tcp[13] & 0x02) && !(tcp[13] & 0x10); // SYN without ACK
            if (syn && (tcp[2] << 8 | tcp[3]) == port_)
                at.push_back(Steady::now());
        }
    }

private:
    uint16_t port_;
    Fd fd_;
};

constexpr int kUdpPort = 5514, kTcpPort = 5515, kTlsPort = 6514;

// A CA and a server certificate it signed for localhost and 127.0.0.1,
// made with openssl in dir: ca.pem, server.pem, server.key; and another CA
// (other-ca.pem) that signed nothing the receiver shows.
void make_certificates(const fs::path& dir) {
    fs::create_directories(dir);
    const std::string d = dir.string();
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::ofstream(dir / "san.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    for (const std::string& cmd : {
             "openssl req -x509" + ec + " -keyout " + d + "/ca.key -out " + d +
                 "/ca.pem -days 2 -subj /CN=pdtt-test-ca",
             "openssl req -x509" + ec + " -keyout " + d + "/other-ca.key -out " + d +
                 "/other-ca.pem -days 2 -subj /CN=pdtt-other-ca",
             "openssl req" + ec + " -keyout " + d + "/server.key -out " + d + "/server.csr -subj /CN=localhost",
             "openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
                 "/ca.key -CAcreateserial -out " + d + "/server.pem -days 2 -extfile " + d + "/san.ext",
         })
        BOOST_REQUIRE_MESSAGE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0, "failed: " << cmd);
    // rsyslogd reads the key as root, but keep it private anyway.
    fs::permissions(dir / "server.key", fs::perms::owner_read | fs::perms::owner_write);
}

// One message as rsyslog parsed it.
struct Received {
    std::string input, facility, severity, hostname, app, procid, msgid, msg;
    std::map<std::string, std::string> sd;
};

// rsyslogd with its own config, work directory and pid file, inside ns.
struct Rsyslog {
    const Netns& ns;
    fs::path dir;
    int udp_port, tcp_port;
    std::unique_ptr<Process> proc;

    Rsyslog(const Netns& ns, const fs::path& dir, const std::string& conf, int udp_port, int tcp_port) :
        ns(ns), dir(dir), udp_port(udp_port), tcp_port(tcp_port) {
        fs::create_directories(dir / "work");
        std::ofstream(dir / "rsyslog.conf") << "global(workDirectory=\"" << (dir / "work").string() << "\")\n" << conf;
        start();
    }
    ~Rsyslog() { proc.reset(); }

    void start() {
        proc = std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/rsyslogd", "-n", "-f",
                                                                  (dir / "rsyslog.conf").string(), "-i",
                                                                  (dir / "rsyslogd.pid").string()},
                                         ns.name());
        bool up = wait_until(
            [&] {
                return !proc->running() ||
                       (capture(ns.exec("ss -Hltn")).find(":" + std::to_string(tcp_port) + " ") != std::string::npos &&
                        (udp_port == 0 ||
                         capture(ns.exec("ss -Hlun")).find(":" + std::to_string(udp_port) + " ") != std::string::npos));
            },
            10s);
        BOOST_REQUIRE_MESSAGE(up && proc->running(), "rsyslogd did not start: " << proc->err() << proc->out());
    }

    void stop() {
        proc->signal(SIGTERM);
        BOOST_REQUIRE_MESSAGE(proc->wait(5s).has_value(), "rsyslogd did not stop");
    }
};

// The test receiver: 127.0.0.1, kUdpPort and kTcpPort; it parses the
// STRUCTURED-DATA (mmpstrucdata) and writes one line per message to
// received.log: the header fields, then MSG and the parsed data as JSON.
struct TestRsyslog : Rsyslog {
    TestRsyslog(const Netns& ns, const fs::path& dir) : Rsyslog(ns, dir, conf(dir), kUdpPort, kTcpPort) {}

    // With tls, a TLS receiver only (rsyslog-gnutls), on all of lo at port
    // kTlsPort, showing the certificate dir/server.pem.
    static constexpr bool kTls = true;
    TestRsyslog(const Netns& ns, const fs::path& dir, bool) : Rsyslog(ns, dir, conf(dir, true), 0, kTlsPort) {}

    static std::string conf(const fs::path& dir, bool tls = false) {
        std::ostringstream c;
        if (tls)
            c << "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"" << (dir / "ca.pem").string()
              << "\" DefaultNetstreamDriverCertFile=\"" << (dir / "server.pem").string()
              << "\" DefaultNetstreamDriverKeyFile=\"" << (dir / "server.key").string() << "\")\n"
              << "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" "
                 "StreamDriver.AuthMode=\"anon\")\n";
        else
            c << "module(load=\"imudp\")\nmodule(load=\"imtcp\")\n";
        c << R"(
module(load="mmpstrucdata")
template(name="pdtt" type="list") {
  property(name="inputname") constant(value=" ")
  property(name="syslogfacility-text") constant(value=" ")
  property(name="syslogseverity-text") constant(value=" ")
  property(name="hostname") constant(value=" ")
  property(name="app-name") constant(value=" ")
  property(name="procid") constant(value=" ")
  property(name="msgid") constant(value=" {\"msg\":\"")
  property(name="msg" format="json") constant(value="\",\"vars\":")
  property(name="$!") constant(value="}\n")
}
ruleset(name="pdtt") {
  action(type="mmpstrucdata")
  action(type="omfile" file=")"
          << (dir / "received.log").string() << R"(" template="pdtt")
}
input(type="imudp" address="127.0.0.1" port=")"
          << kUdpPort << R"(" ruleset="pdtt")
input(type="imtcp" address="127.0.0.1" port=")"
          << kTcpPort << R"(" ruleset="pdtt")
)";
        if (tls) { // the plain inputs above were for another receiver
            std::string t = c.str();
            t = t.substr(0, t.find("input(type=\"imudp\""));
            return t + "input(type=\"imtcp\" port=\"" + std::to_string(kTlsPort) + "\" ruleset=\"pdtt\")\n";
        }
        return c.str();
    }

    std::vector<Received> received() const {
        std::vector<Received> out;
        std::ifstream f(dir / "received.log");
        std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::istringstream in(all.substr(0, all.rfind('\n') + 1)); // a line still being written waits
        for (std::string line; std::getline(in, line);) {
            std::istringstream ls(line);
            Received r;
            ls >> r.input >> r.facility >> r.severity >> r.hostname >> r.app >> r.procid >> r.msgid;
            std::string rest;
            std::getline(ls, rest);
            json::object o = json::parse(rest).as_object();
            r.msg = json::value_to<std::string>(o.at("msg"));
            for (const auto& [k, v] : o.at("vars").at("rfc5424-sd").at("pdtt@32473").as_object())
                r.sd[std::string(k)] = json::value_to<std::string>(v);
            out.push_back(std::move(r));
        }
        return out;
    }
};

// Sums of one user's user_report records as a receiver got them over input.
FileSums syslog_sums(const std::vector<Received>& recs, const std::string& input, const std::string& user) {
    FileSums s;
    for (const auto& r : recs)
        if (r.input == input && r.msgid == "user_report" && r.sd.at("user") == user && r.sd.count("tx_bytes")) {
            s.tx += std::stoull(r.sd.at("tx_bytes"));
            s.rx += std::stoull(r.sd.at("rx_bytes"));
        }
    return s;
}

std::string wall_now() {
    return rfc3339_utc(std::chrono::time_point_cast<std::chrono::microseconds>(pdtt::Clock::now()));
}

// How many records of type the agent has printed (complete JSON lines) with a ts after since.
std::size_t records_since(const Process& agent, const std::string& type, const std::string& since) {
    std::string out = agent.out();
    std::size_t n = 0;
    for (const auto& r : parse_lines(out.substr(0, out.rfind('\n') + 1)))
        n += str(r, "type") == type && str(r, "ts") > since;
    return n;
}

// The shared lab with TCP servers on the peer and rsyslog on the agent's
// side; the agent reports every second.
struct SyslogLab : Lab {
    std::unique_ptr<Process> srv4 = serve(link.b_ip4()), srv6 = serve(link.b_ip6());
    std::unique_ptr<TestRsyslog> rsyslog = std::make_unique<TestRsyslog>(host, dir / "rsyslog");

    void start_agent(std::vector<std::string> extra) {
        extra.insert(extra.begin(), {"-t", "1"});
        Lab::start_agent(std::move(extra));
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(rsyslog)

BOOST_FIXTURE_TEST_CASE(records_arrive_over_udp_and_tcp_and_match_json_and_files, SyslogLab) {
    start_agent({"--syslog", "udp://127.0.0.1:" + std::to_string(kUdpPort), "--syslog",
                 "tcp://127.0.0.1:" + std::to_string(kTcpPort), "--syslog-facility", "local3", "--syslog-app-name",
                 "pdtt-test"});
    transfer(alice, link.b_ip4(), 3'000'000, 1'000'000);
    transfer(alice, link.b_ip6(), 500'000, 200'000);
    transfer(bob, link.b_ip4(), 700'000, 2'000'000);
    auto json_recs = stop_agent();

    std::vector<json::object> want; // what syslog carries
    for (const auto& r : json_recs) {
        std::string type = str(r, "type");
        if (type == "flow_close" || type == "user_report" || type == "agent_stats")
            want.push_back(r);
    }
    BOOST_TEST_REQUIRE(want.size() > 5u);
    // The final records were flushed at exit; give rsyslog a moment to write them.
    wait_until([&] { return rsyslog->received().size() >= 2 * want.size(); }, 5s);
    auto got = rsyslog->received();
    BOOST_TEST_MESSAGE(want.size() << " records sent, " << got.size() << " received");

    char hostname[256] = {};
    ::gethostname(hostname, sizeof hostname - 1);
    for (const char* input : {"imudp", "imtcp"}) {
        BOOST_TEST_CONTEXT("input " << input) {
            // Every record arrived once, its STRUCTURED-DATA equal to the JSON record's fields.
            std::multiset<std::pair<std::string, std::map<std::string, std::string>>> sent, arrived;
            for (const auto& r : want)
                sent.emplace(str(r, "type"), sd_of_json(r));
            for (const auto& r : got) {
                if (r.input != input)
                    continue;
                arrived.emplace(r.msgid, r.sd);
                BOOST_TEST(r.facility == "local3");
                BOOST_TEST(r.severity == "info");
                BOOST_TEST(r.hostname == hostname);
                BOOST_TEST(r.app == "pdtt-test");
                BOOST_TEST(r.procid == std::to_string(agent->pid()));
                BOOST_TEST(!r.msg.empty());
            }
            BOOST_TEST(arrived.size() == sent.size());
            BOOST_TEST((arrived == sent));

            for (const TestUser* u : {&alice, &bob}) {
                FileSums file = read_user_file(user_file(*u)), sys = syslog_sums(got, input, u->name());
                BOOST_TEST(sys.tx == file.tx, u->name() << " tx " << sys.tx << " vs file " << file.tx);
                BOOST_TEST(sys.rx == file.rx, u->name() << " rx " << sys.rx << " vs file " << file.rx);
            }
            FileSums a = syslog_sums(got, input, alice.name());
            BOOST_TEST(wire_ok(a.tx, 3'500'000 + 2 * kTrafficHeader, resent_bytes_max(host)), a.tx);
            BOOST_TEST(wire_ok(a.rx, 1'200'000, resent_bytes_max(peer)), a.rx);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(tcp_receiver_outage_queues_reconnects_and_never_stalls_the_ring, SyslogLab) {
    start_agent({"--syslog", "tcp://127.0.0.1:" + std::to_string(kTcpPort)});
    transfer(alice, link.b_ip4(), 1'000'000, 300'000);
    BOOST_TEST_REQUIRE(wait_until([&] { return syslog_sums(rsyslog->received(), "imtcp", alice.name()).tx > 0; }, 10s));

    rsyslog->stop();
    BOOST_TEST_REQUIRE(wait_until([&] { return count_of(agent->err(), "connection lost") == 1; }, 10s), agent->err());
    std::string outage_start = wall_now();
    transfer(alice, link.b_ip6(), 2'000'000, 500'000);
    // Two reports while the receiver is away, so the queue holds something.
    BOOST_TEST_REQUIRE(wait_until([&] { return records_since(*agent, "agent_stats", outage_start) >= 2; }, 10s));
    BOOST_TEST_REQUIRE(agent->running());
    std::string outage_end = wall_now();
    rsyslog->start();
    BOOST_TEST_REQUIRE(wait_until([&] { return count_of(agent->err(), "connected again") == 1; }, 40s), agent->err());

    // What the queue held arrives once the agent is connected again.
    bool caught_up = wait_until(
        [&] {
            return syslog_sums(rsyslog->received(), "imtcp", alice.name()).tx == read_user_file(user_file(alice)).tx;
        },
        20s);
    BOOST_TEST(caught_up);
    auto json_recs = stop_agent();
    std::string last_stats;
    for (const auto& r : json_recs)
        if (str(r, "type") == "agent_stats")
            last_stats = str(r, "ts");
    wait_until(
        [&] {
            for (const auto& r : rsyslog->received())
                if (r.msgid == "agent_stats" && r.sd.at("ts") == last_stats)
                    return true;
            return false;
        },
        5s);
    auto got = rsyslog->received();

    FileSums file = read_user_file(user_file(alice)), sys = syslog_sums(got, "imtcp", alice.name());
    BOOST_TEST(sys.tx == file.tx);
    BOOST_TEST(sys.rx == file.rx);
    BOOST_TEST(wire_ok(sys.tx, 3'000'000 + 2 * kTrafficHeader, resent_bytes_max(host)), sys.tx);
    BOOST_TEST(wire_ok(sys.rx, 800'000, resent_bytes_max(peer)), sys.rx);

    std::multiset<std::pair<std::string, std::map<std::string, std::string>>> arrived;
    for (const auto& r : got)
        arrived.emplace(r.msgid, r.sd);
    int during = 0;
    uint64_t lost = 0, sink_errors = 0;
    for (const auto& r : json_recs) {
        std::string type = str(r, "type");
        if (type != "flow_close" && type != "user_report" && type != "agent_stats")
            continue;
        std::string ts = str(r, "ts");
        bool in_outage = ts > outage_start && ts < outage_end;
        if (auto it = arrived.find({type, sd_of_json(r)}); it != arrived.end()) {
            arrived.erase(it);
        } else {
            ++lost;
            BOOST_TEST(!in_outage, type << " of " << ts << " was queued during the outage and lost");
        }
        if (type != "agent_stats")
            continue;
        // The kernel-side loss counter stays zero: the outage never held up the ring consumer.
        BOOST_TEST(json::value_to<uint64_t>(r.at("ring_drops")) == 0u, "at " << ts);
        sink_errors = json::value_to<uint64_t>(r.at("sink_errors"));
        during += in_outage;
    }
    BOOST_TEST(during >= 2);
    // The queue had room, so a sink error can only be a record lost; and every record lost is one.
    BOOST_TEST_MESSAGE(lost << " records lost, " << sink_errors << " sink errors");
    BOOST_TEST(lost <= sink_errors, lost << " records lost, " << sink_errors << " counted");
}

BOOST_AUTO_TEST_CASE(rsyslog_reads_escaped_and_repaired_values_as_sent) {
    Netns ns;
    char tmpl[] = "/tmp/pdtt-syslog-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl));
    struct Remove {
        fs::path p;
        ~Remove() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } remove{tmpl};
    TestRsyslog rs(ns, remove.p);
    {
        EnterNetns in(ns); // this thread's sockets live next to rsyslog
        asio::io_context io;
        auto udp_sink = make_syslog_sink({"udp://127.0.0.1:" + std::to_string(kUdpPort), 16, "pdtt"}, io);
        auto tcp_sink = make_syslog_sink({"tcp://localhost:" + std::to_string(kTcpPort), 16, "pdtt"}, io);
        FlowRecord r = sample_flow();
        r.id.user = "x\"y\\z]w [=] caf\xC3\xA9";
        r.id.comm = "bad\xFF\xC0utf8";
        udp_sink->flow_close(r);
        tcp_sink->flow_close(r);
        pump(
            io, [&] { return rs.received().size() >= 2; }, 5s);
    }
    auto got = rs.received();
    BOOST_TEST_REQUIRE(got.size() == 2u);
    for (const auto& g : got) {
        BOOST_TEST_CONTEXT("input " << g.input) {
            BOOST_TEST(g.msgid == "flow_close");
            BOOST_TEST(g.sd.at("user") == "x\"y\\z]w [=] caf\xC3\xA9");
            BOOST_TEST(g.sd.at("comm") == "bad\xEF\xBF\xBD\xEF\xBF\xBDutf8");
            BOOST_TEST(g.sd.at("tx_bytes") == "524288");
        }
    }
}

BOOST_FIXTURE_TEST_CASE(the_rsyslog_example_writes_one_file_per_host_and_user, SyslogLab) {
    // conf/rsyslog-pdtt.conf as shipped, its output moved under the test's directory.
    std::ifstream f(fs::path(PDTT_SOURCE_DIR) / "conf" / "rsyslog-pdtt.conf");
    std::string conf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    fs::path central = dir / "central";
    const std::string shipped = "/var/log/pdtt-central";
    BOOST_TEST_REQUIRE(conf.find(shipped) != std::string::npos);
    for (std::size_t at; (at = conf.find(shipped)) != std::string::npos;)
        conf.replace(at, shipped.size(), central.string());
    Rsyslog example(host, dir / "example", conf, 514, 514);

    start_agent({"--syslog", "tcp://127.0.0.1:514"});
    transfer(alice, link.b_ip4(), 600'000, 100'000);
    transfer(bob, link.b_ip6(), 200'000, 900'000);
    auto json_recs = stop_agent();

    char hostname[256] = {};
    ::gethostname(hostname, sizeof hostname - 1);
    fs::path host_dir = central / hostname;
    auto read_lines = [](const fs::path& p) {
        std::vector<json::object> out;
        std::ifstream in(p);
        for (std::string line; std::getline(in, line);)
            out.push_back(json::parse(line).as_object());
        return out;
    };
    auto sums = [&](const TestUser& u) {
        FileSums s;
        for (const auto& o : read_lines(host_dir / "users" / (u.name() + ".log")))
            if (str(o, "type") == "user_report" && o.contains("tx_bytes")) {
                s.tx += std::stoull(str(o, "tx_bytes"));
                s.rx += std::stoull(str(o, "rx_bytes"));
            }
        return s;
    };
    std::size_t stats = 0;
    for (const auto& r : json_recs)
        stats += str(r, "type") == "agent_stats";
    BOOST_TEST(wait_until([&] { return read_lines(host_dir / "agent.log").size() == stats; }, 5s));

    for (const TestUser* u : {&alice, &bob}) {
        BOOST_TEST_CONTEXT("user " << u->name()) {
            FileSums file = read_user_file(user_file(*u)), central_sums = sums(*u);
            BOOST_TEST(central_sums.tx == file.tx);
            BOOST_TEST(central_sums.rx == file.rx);
            BOOST_TEST(file.tx > 0u);
            for (const auto& o : read_lines(host_dir / "users" / (u->name() + ".log"))) {
                BOOST_TEST(str(o, "host") == hostname);
                BOOST_TEST(str(o, "user") == u->name());
                BOOST_TEST((str(o, "type") == "user_report" || str(o, "type") == "flow_close"));
            }
        }
    }
    for (const auto& o : read_lines(host_dir / "agent.log"))
        BOOST_TEST(str(o, "type") == "agent_stats");
}

BOOST_AUTO_TEST_CASE(a_syslog_host_that_does_not_resolve_is_a_usage_error) {
    // A namespace with nothing but lo, whose name service is /etc/hosts
    // alone: the name does not exist (EAI_NONAME), and no DNS is asked,
    // which could only fail for now (EAI_AGAIN) here.
    Netns ns;
    NetnsEtcFile nss(ns, "nsswitch.conf", "hosts: files\n");
    Process agent({PDTT_AGENT_BIN, "-i", "lo", "--no-files", "--stdout", "none", "--syslog",
                   "tcp://pdtt-no-such-host.invalid:514"},
                  ns.name());
    auto st = agent.wait(30s);
    BOOST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 2);
    std::string err = agent.err();
    BOOST_TEST(err.rfind("pdtt-agent: syslog host 'pdtt-no-such-host.invalid' does not resolve: ", 0) == 0, err);
    BOOST_TEST(std::count(err.begin(), err.end(), '\n') == 1, err);
}

BOOST_AUTO_TEST_SUITE_END()

// tls:// against rsyslog-gnutls: the records as over TCP, and a receiver
// that fails verification gets nothing, not even in clear.
BOOST_AUTO_TEST_SUITE(tls)

BOOST_FIXTURE_TEST_CASE(records_arrive_over_tls_and_match_json_and_files, SyslogLab) {
    make_certificates(dir / "tls");
    TestRsyslog receiver(host, dir / "tls", TestRsyslog::kTls);
    start_agent(
        {"--syslog", "tls://localhost:" + std::to_string(kTlsPort), "--syslog-ca", (dir / "tls" / "ca.pem").string()});
    transfer(alice, link.b_ip4(), 1'000'000, 300'000);
    transfer(bob, link.b_ip6(), 200'000, 700'000);
    auto json_recs = stop_agent();

    std::multiset<std::pair<std::string, std::map<std::string, std::string>>> sent, arrived;
    for (const auto& r : json_recs) {
        std::string type = str(r, "type");
        if (type == "flow_close" || type == "user_report" || type == "agent_stats")
            sent.emplace(type, sd_of_json(r));
    }
    BOOST_TEST_REQUIRE(sent.size() > 3u);
    wait_until([&] { return receiver.received().size() >= sent.size(); }, 5s);
    auto got = receiver.received();
    for (const auto& r : got)
        arrived.emplace(r.msgid, r.sd);
    BOOST_TEST(arrived.size() == sent.size());
    BOOST_TEST((arrived == sent));
    for (const TestUser* u : {&alice, &bob}) {
        FileSums file = read_user_file(user_file(*u)), sys = syslog_sums(got, "imtcp", u->name());
        BOOST_TEST(sys.tx == file.tx, u->name() << " tx " << sys.tx << " vs file " << file.tx);
        BOOST_TEST(sys.rx == file.rx, u->name() << " rx " << sys.rx << " vs file " << file.rx);
        BOOST_TEST(file.tx > 0u);
    }
    BOOST_TEST(count_of(agent->err(), "refused") == 0u, agent->err());
}

BOOST_AUTO_TEST_CASE(a_wrong_ca_or_a_wrong_name_is_refused_counted_and_nothing_is_sent) {
    Netns ns;
    char tmpl[] = "/tmp/pdtt-tls-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl));
    struct Remove {
        fs::path p;
        ~Remove() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } remove{tmpl};
    make_certificates(remove.p);
    TestRsyslog rs(ns, remove.p, TestRsyslog::kTls);
    const std::string port = std::to_string(kTlsPort);
    struct Case {
        const char* what;
        std::string url, ca;
    } cases[] = {
        {"a CA that did not sign the receiver's certificate", "tls://localhost:" + port,
         (remove.p / "other-ca.pem").string()},
        {"an address the certificate does not name", "tls://127.0.0.2:" + port, (remove.p / "ca.pem").string()},
        {"the system's CAs", "tls://127.0.0.1:" + port, ""},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            StderrCapture err;
            EnterNetns in(ns);
            asio::io_context io;
            SyslogOptions o{c.url, 16, "pdtt"};
            o.ca_file = c.ca;
            auto sink = make_syslog_sink(o, io);
            sink->agent_stats(sample_stats(1));
            BOOST_TEST(pump(
                           io, [&] { return sink->errors() >= 2; }, 5s),
                       "errors " << sink->errors());
            BOOST_TEST(err.count("refused: ") == 1u, err.text()); // said once, however often it retries
            BOOST_TEST(err.text().find("certificate verify failed") != std::string::npos, err.text());
        }
    }
    // Nothing arrived: a refused connection carries no message, in clear or not.
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(rs.received().empty());

    // And the right CA and name are accepted by the same receiver.
    {
        EnterNetns in(ns);
        asio::io_context io;
        SyslogOptions o{"tls://127.0.0.1:" + port, 16, "pdtt"};
        o.ca_file = (remove.p / "ca.pem").string();
        auto sink = make_syslog_sink(o, io);
        sink->agent_stats(sample_stats(7));
        BOOST_TEST(pump(
            io, [&] { return rs.received().size() == 1; }, 5s));
        BOOST_TEST(sink->errors() == 0u);
    }
    auto got = rs.received();
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].sd.at("events") == "7");
}

BOOST_AUTO_TEST_CASE(a_tls_file_that_cannot_be_read_is_a_usage_error) {
    Netns ns;
    Process agent({PDTT_AGENT_BIN, "-i", "lo", "--no-files", "--stdout", "none", "--syslog", "tls://127.0.0.1:6514",
                   "--syslog-ca", "/nonexistent/ca.pem"},
                  ns.name());
    auto st = agent.wait(10s);
    BOOST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 2, agent.err());
    BOOST_TEST(agent.err().find("--syslog-ca '/nonexistent/ca.pem'") != std::string::npos, agent.err());
}

BOOST_AUTO_TEST_SUITE_END()

// Start and stop an administrator can rely on.
BOOST_AUTO_TEST_SUITE(lifecycle)

// DNS not up yet at boot: the lookup fails with EAI_AGAIN (a resolver that
// no server answers), which is said once; the agent starts, and records
// arrive once the name resolves.
BOOST_AUTO_TEST_CASE(a_syslog_host_that_does_not_resolve_yet_is_retried_not_fatal) {
    Netns ns;
    const std::string name = "pdtt-late-receiver.test";
    // Nothing listens on port 53 of this namespace's lo: "Temporary failure in name resolution".
    NetnsEtcFile resolv(ns, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    NetnsEtcFile hosts(ns, "hosts", "127.0.0.1 localhost\n");
    asio::io_context io;
    std::unique_ptr<TcpReceiver> rx;
    {
        EnterNetns in(ns);
        rx = std::make_unique<TcpReceiver>(io);
    }
    rx->listen();
    Process agent({PDTT_AGENT_BIN, "-i", "lo", "--no-files", "--stdout", "none", "-t", "1", "--syslog",
                   "tcp://" + name + ":" + std::to_string(rx->port())},
                  ns.name());
    BOOST_TEST_REQUIRE(
        wait_until([&] { return agent.err().find("does not resolve yet") != std::string::npos || !agent.running(); },
                   15s),
        agent.err());
    BOOST_TEST_REQUIRE(agent.running(), agent.err());
    BOOST_TEST(agent.err().find("warning: syslog host '" + name + "' does not resolve yet") != std::string::npos,
               agent.err());
    BOOST_TEST(!rx->accept(1500ms));

    hosts.write("127.0.0.1 localhost\n127.0.0.1 " + name + "\n");
    BOOST_TEST_REQUIRE(rx->accept(40s), "no connection once the name resolved: " << agent.err());
    BOOST_TEST_REQUIRE(rx->read(1, 5s));
    must_parse(rx->messages[0]);
    agent.signal(SIGTERM);
    auto st = agent.wait(3s);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 0, agent.err());
}

// A DNS server that never answers (its queries dropped) must not hold up
// exit while a lookup for a reconnect is in flight.
BOOST_AUTO_TEST_CASE(a_name_lookup_in_flight_does_not_hold_up_exit) {
    Netns ns;
    NetnsEtcFile resolv(ns, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:4 attempts:1\n");
    NetnsEtcFile hosts(ns, "hosts", "127.0.0.1 localhost\n");
    for (const char* rule :
         {"add table inet pdtt_dns", "add chain inet pdtt_dns in '{ type filter hook input priority 0; }'",
          "add rule inet pdtt_dns in udp dport 53 drop", "add rule inet pdtt_dns in tcp dport 53 drop"})
        BOOST_REQUIRE_MESSAGE(std::system(ns.exec(std::string("nft ") + rule).c_str()) == 0, rule);
    auto started = Steady::now();
    Process agent(
        {PDTT_AGENT_BIN, "-i", "lo", "--no-files", "--stdout", "none", "--syslog", "tcp://pdtt-silent-dns.test:514"},
        ns.name());
    // Queries are dropped where they arrive, unanswered: the start-up lookup
    // times out (EAI_AGAIN), and the sink's own lookup starts at once.
    BOOST_TEST_REQUIRE(
        wait_until([&] { return agent.err().find("monitoring") != std::string::npos || !agent.running(); }, 30s),
        agent.err());
    BOOST_TEST_REQUIRE(agent.running(), agent.err());
    BOOST_TEST_REQUIRE((Steady::now() - started >= 3s), "the lookup did not hang: " << agent.err());
    auto t0 = Steady::now();
    agent.signal(SIGTERM);
    auto st = agent.wait(10s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 0, agent.err());
    BOOST_TEST(took < 2000ms, "exit took " << took.count() << " ms with a lookup in flight");
}

// "shutdown takes at most 2 s in all, whatever the sinks are doing":
// two receivers that accept and never read, and stdout a pipe nobody reads.
BOOST_FIXTURE_TEST_CASE(sigint_exits_within_2_s_with_two_stalled_receivers_and_a_stalled_stdout, SyslogLab) {
    asio::io_context io;
    std::vector<std::unique_ptr<TcpReceiver>> rxs;
    {
        EnterNetns in(host);
        for (int i = 0; i < 2; ++i) {
            rxs.push_back(std::make_unique<TcpReceiver>(io));
            int small = 2048; // a window that fills at once
            ::setsockopt(rxs.back()->acceptor.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
            rxs.back()->listen();
        }
    }
    fs::path fifo = dir / "stdout.fifo";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    Fd hold(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)); // a reader that never reads
    BOOST_REQUIRE(hold);
    ::fcntl(hold.get(), F_SETPIPE_SZ, 4096);
    std::vector<std::string> argv{"sh",
                                  "-c",
                                  "exec \"$@\" >" + fifo.string(),
                                  "sh",
                                  PDTT_AGENT_BIN,
                                  "-c",
                                  no_config.string(),
                                  "--stdout",
                                  "json",
                                  "-l",
                                  (dir / "pdtt").string(),
                                  "-i",
                                  link.a_name(),
                                  "-t",
                                  "0.1"};
    for (const auto& rx : rxs)
        argv.insert(argv.end(), {"--syslog", rx->url()});
    Process stalled(argv, host.name());
    for (const auto& rx : rxs)
        BOOST_TEST_REQUIRE(rx->accept(10s), stalled.err());
    transfer(alice, link.b_ip4(), 2'000'000, 500'000, 20); // records for every sink
    // The pipe is full, and the receivers' windows are.
    BOOST_TEST(wait_until(
        [&] {
            int queued = 0;
            return ::ioctl(hold.get(), FIONREAD, &queued) == 0 && queued >= 2048; // no room for another record
        },
        10s));
    std::this_thread::sleep_for(3s);
    BOOST_TEST_MESSAGE("agent's send queues: " << capture(host.exec("ss -Htn state established")));
    BOOST_TEST_REQUIRE(stalled.running(), stalled.err());

    auto t0 = Steady::now();
    stalled.signal(SIGINT);
    auto st = stalled.wait(5s);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0);
    BOOST_TEST_REQUIRE(st.has_value(), "still running 5 s after SIGINT");
    BOOST_TEST(*st == 0, stalled.err());
    BOOST_TEST(took < 2000ms, "exit took " << took.count() << " ms");
}

BOOST_AUTO_TEST_SUITE_END()

// The TCP sink where only root can look: its connection attempts, its name
// lookups, and the agent's exit.
BOOST_AUTO_TEST_SUITE(tcp)

BOOST_AUTO_TEST_CASE(backoff_doubles_while_the_receiver_is_absent) {
    Netns ns;
    EnterNetns in(ns); // the sink's attempts and the watch alone on this loopback
    SynWatch syns(kTcpPort);
    asio::io_context io;
    auto sink = make_syslog_sink({"tcp://127.0.0.1:" + std::to_string(kTcpPort), 16, "pdtt"}, io);
    std::vector<Steady::time_point> at;
    pump(
        io,
        [&] {
            syns.read(at);
            return at.size() >= 6;
        },
        25s);
    BOOST_TEST_REQUIRE(at.size() == 6u); // the first attempt and five retries, all refused
    check_backoff(at);
}

BOOST_AUTO_TEST_CASE(the_host_name_is_looked_up_again_on_reconnect) {
    Netns ns;
    const std::string name = "pdtt-receiver.test";
    NetnsEtcFile hosts(ns, "hosts", "127.0.0.1 " + name + "\n");
    asio::io_context io;
    std::unique_ptr<TcpReceiver> first, second;
    {
        EnterNetns in(ns);
        first = std::make_unique<TcpReceiver>(io);
        second = std::make_unique<TcpReceiver>(io, "127.0.0.2", first->port());
    }
    first->listen();
    second->listen();
    Process agent({PDTT_AGENT_BIN, "-i", "lo", "--no-files", "--stdout", "none", "-t", "1", "--syslog",
                   "tcp://" + name + ":" + std::to_string(first->port())},
                  ns.name());
    BOOST_TEST_REQUIRE(first->accept(15s), "agent: " << agent.err());
    BOOST_TEST_REQUIRE(first->read(1, 5s));
    BOOST_TEST(!second->accept(0ms));

    // The name moves; the first receiver goes away.
    hosts.write("127.0.0.2 " + name + "\n");
    first->peer.close();
    first->acceptor.close();
    BOOST_TEST_REQUIRE(second->accept(10s), "the agent did not reconnect to the name's new address: " << agent.err());
    BOOST_TEST_REQUIRE(second->read(1, 5s));
    must_parse(second->messages[0]);
    BOOST_TEST(count_of(agent.err(), "connected again") == 1u, agent.err());
    agent.signal(SIGTERM);
    auto st = agent.wait(3s);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 0, agent.err());
}

// README: "At exit every sink shares one deadline"; with no receiver
// there is nothing to spend it on, and what did not arrive is said, exactly.
BOOST_FIXTURE_TEST_CASE(exit_with_a_dead_receiver_is_prompt_and_says_what_was_not_delivered, SyslogLab) {
    const int nobody_listens = kTcpPort + 10;
    start_agent({"--syslog", "tcp://127.0.0.1:" + std::to_string(nobody_listens)});
    transfer(alice, link.b_ip4(), 300'000, 100'000);
    BOOST_TEST_REQUIRE(wait_until([&] { return records_since(*agent, "user_report", "") >= 1; }, 10s));
    auto t0 = Steady::now();
    auto json_recs = stop_agent();
    auto took = Steady::now() - t0;
    BOOST_TEST(took < 2s, "exit took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    std::size_t sent = 0;
    for (const auto& r : json_recs) {
        std::string type = str(r, "type");
        sent += type == "flow_close" || type == "user_report" || type == "agent_stats";
    }
    BOOST_TEST(sent > 3u);
    BOOST_TEST(undelivered(agent->err()).value_or(0) == sent, agent->err());
}

BOOST_AUTO_TEST_SUITE_END()
