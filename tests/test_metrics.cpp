// Prometheus metrics without a kernel: the counters against the reports the
// same records make, the exposition's text, and the HTTP endpoint on
// 127.0.0.1 in this process (status codes, the token, size, time and
// connection bounds).
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include "aggregator.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "metrics_sink.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <regex>
#include <thread>

using namespace pdtt;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kMissing = UINT64_MAX;

// The value of one series line, e.g. name{user="alice",uid="1001",iface="veth0"}; kMissing if none.
uint64_t sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
            return std::stoull(line.substr(series.size() + 1));
    return kMissing;
}

std::string user_labels(const std::string& user, int64_t uid, const std::string& iface) {
    return "{user=\"" + user + "\",uid=\"" + std::to_string(uid) + "\",iface=\"" + iface + "\"}";
}

// Sum of a metric over one user's series.
uint64_t user_sum(const std::string& text, const std::string& metric, int64_t uid) {
    std::istringstream in(text);
    std::string line;
    uint64_t sum = 0;
    const std::string uid_label = "uid=\"" + std::to_string(uid) + "\"";
    while (std::getline(in, line))
        if (line.rfind(metric + "{", 0) == 0 && line.find(uid_label) != std::string::npos)
            sum += std::stoull(line.substr(line.rfind(' ') + 1));
    return sum;
}

bool fake_passwd(uint32_t uid, std::string& name) {
    if (uid != 1001 && uid != 1002)
        return false;
    name = uid == 1001 ? "alice" : "bob";
    return true;
}

// What the reports say per uid, summed over intervals.
struct Reports : Sink {
    std::map<int64_t, Counters> total;
    void user_report(const UserReport& r) override {
        total[r.uid] += Counters{r.tx_bytes, r.rx_bytes, r.tx_packets, r.rx_packets};
    }
};

struct Pipeline {
    asio::io_context io;
    SinkList sinks;
    Reports* reports;
    MetricsSink* metrics;
    UserNames names{std::chrono::seconds(600), &fake_passwd, UserNames::Threads::none};
    WallClock clock;
    Aggregator agg{sinks, names, [](uint32_t i) { return i == 3 ? std::string("veth0") : "if" + std::to_string(i); },
                   clock};
    Pipeline() {
        auto r = std::make_unique<Reports>();
        reports = r.get();
        sinks.push_back(std::move(r));
        auto m = make_metrics_sink({"", "", "1.2.3"}, io);
        metrics = m.get();
        sinks.push_back(std::move(m));
    }
    // What the agent does at the end of an interval.
    void report(uint64_t flows_active = 0) {
        agg.report({}, 1.0);
        AgentStats s;
        s.flows_active = flows_active;
        for (auto& k : sinks) {
            k->agent_stats(s);
            k->interval_end();
        }
    }
};

pdtt_event ev(uint8_t type, uint64_t flow_id, uint16_t lport, uint32_t uid, uint64_t tx, uint64_t rx,
              uint32_t ifindex = 3) {
    pdtt_event e{};
    e.type = type;
    e.flow_id = flow_id;
    uint8_t laddr[16] = {}, raddr[16] = {};
    laddr[10] = laddr[11] = raddr[10] = raddr[11] = 0xff;
    laddr[12] = 10, laddr[15] = 1;
    raddr[12] = 10, raddr[15] = 2;
    e.key = make_flow_key(laddr, lport, raddr, 5001, IPPROTO_TCP, 4026531840u);
    e.uid = uid;
    e.ifindex = ifindex;
    e.cnt = {tx, rx, tx / 1000 + 1, rx / 1000 + 1};
    e.open_ns = 1'000'000'000;
    e.ts_ns = 2'000'000'000;
    e.direction = PDTT_DIR_OUTBOUND;
    e.pid = 42;
    std::strcpy(e.comm, "rsync");
    return e;
}

} // namespace

BOOST_AUTO_TEST_SUITE(counters)

// The flow records give every byte once, wherever a flow changes hands, and
// user_report adds what the kernel counts per user only: each user's series
// sum to exactly that user's reports, interval after interval.
BOOST_FIXTURE_TEST_CASE(each_users_series_add_up_to_the_users_reports, Pipeline) {
    // Flow 1: alice, its first packet carries bytes, two deltas, then bob.
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 40001, 1001, 100, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 40001, 1001, 5000, 300));
    report(1);
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 40001, 1001, 9000, 600));
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, 40001, 1002, 9500, 700)); // 500 tx, 100 rx more were alice's
    // Same user in another cgroup: the bytes so far stay counted.
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, 40001, 1002, 12000, 900));
    // Flow 2 on another interface, closed with bytes no delta had brought.
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, 40002, 1001, 0, 0, 4));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 2, 40002, 1001, 777, 888, 4));
    // The kernel's per-user-only counts.
    agg.add_unattributed({60, 70, 1, 1});
    agg.add_overflow(1001, {1000, 2000, 3, 4});
    report(1);
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 40001, 1002, 20000, 1000));
    report(0);

    std::string text = metrics->exposition();
    BOOST_TEST_INFO(text);
    BOOST_TEST_REQUIRE(reports->total.size() == 3u);
    for (const auto& [uid, c] : reports->total) {
        BOOST_TEST_CONTEXT("uid " << uid) {
            BOOST_TEST(user_sum(text, "pdtt_transmit_bytes_total", uid) == c.tx_bytes);
            BOOST_TEST(user_sum(text, "pdtt_receive_bytes_total", uid) == c.rx_bytes);
            BOOST_TEST(user_sum(text, "pdtt_transmit_packets_total", uid) == c.tx_packets);
            BOOST_TEST(user_sum(text, "pdtt_receive_packets_total", uid) == c.rx_packets);
        }
    }
    // Per interface: flow 1's bytes on veth0 split at the owner change.
    BOOST_TEST(sample(text, "pdtt_transmit_bytes_total" + user_labels("alice", 1001, "veth0")) == 9500u);
    BOOST_TEST(sample(text, "pdtt_transmit_bytes_total" + user_labels("bob", 1002, "veth0")) == 10500u);
    BOOST_TEST(sample(text, "pdtt_receive_bytes_total" + user_labels("alice", 1001, "if4")) == 888u);
    BOOST_TEST(sample(text, "pdtt_transmit_bytes_total" + user_labels("alice", 1001, "*")) == 1000u);
    BOOST_TEST(sample(text, "pdtt_receive_bytes_total" + user_labels("unattributed", -1, "*")) == 70u);
}

// Open flows count up to their last delta, before any report.
BOOST_FIXTURE_TEST_CASE(open_flows_count_before_the_report, Pipeline) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 40001, 1001, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 40001, 1001, 4242, 0));
    BOOST_TEST(sample(metrics->exposition(), "pdtt_transmit_bytes_total" + user_labels("alice", 1001, "veth0")) ==
               4242u);
}

// A flow the agent forgot (its close was lost) leaves no state behind, and
// a live flow's deltas are not counted twice at its close.
BOOST_FIXTURE_TEST_CASE(forgotten_flows_are_dropped_live_ones_kept, Pipeline) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 40001, 1001, 100, 0)); // lost later
    report(1);
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 2, 40002, 1001, 200, 0));
    report(1); // one flow is tracked: flow 1, the quieter, goes
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 2, 40002, 1001, 250, 0));
    report(0);
    BOOST_TEST(sample(metrics->exposition(), "pdtt_transmit_bytes_total" + user_labels("alice", 1001, "veth0")) ==
               350u);
}

// A job's series: its flows' bytes per (job, user, iface), the old job's
// up to an owner change; kept while the job has a flow, gone some
// intervals after its last one closed.
BOOST_AUTO_TEST_CASE(job_series_follow_the_flows_and_expire_after_the_last_one) {
    asio::io_context io;
    auto m = make_metrics_sink({"", "", "0.1"}, io);
    auto rec = [](FlowEvent t, uint64_t id, std::optional<std::string_view> job, Counters c) {
        FlowRecord r;
        r.type = t;
        r.id.flow_id = id;
        r.id.user = "alice";
        r.id.uid = 1001;
        r.id.iface = "veth0";
        r.id.job = job;
        r.cnt = c;
        return r;
    };
    auto end_interval = [&](uint64_t active) {
        AgentStats s;
        s.flows_active = active;
        m->agent_stats(s);
        m->interval_end();
    };
    const std::string tx7 = "pdtt_job_transmit_bytes_total{job=\"7\",user=\"alice\",iface=\"veth0\"}";
    const std::string rx7 = "pdtt_job_receive_bytes_total{job=\"7\",user=\"alice\",iface=\"veth0\"}";
    const std::string tx8 = "pdtt_job_transmit_bytes_total{job=\"8\",user=\"alice\",iface=\"veth0\"}";
    m->flow_open(rec(FlowEvent::open, 1, "7", {100, 10, 1, 1}));
    m->flow_delta(rec(FlowEvent::delta, 1, "7", {400, 40, 4, 4}));
    m->flow_delta(rec(FlowEvent::delta, 2, std::nullopt, {999, 999, 9, 9})); // no job: no job series
    // Flow 1 moves to job 8: what it moved since its open (600 tx) was job 7's.
    FlowRecord own = rec(FlowEvent::owner, 1, "8", {600, 60, 6, 6});
    own.from_uid = 1001;
    own.from_user = "alice";
    own.from_job = "7";
    m->flow_owner(own);
    m->flow_close(rec(FlowEvent::close, 1, "8", {300, 30, 3, 3}));
    // Job 8's second flow stays open.
    m->flow_delta(rec(FlowEvent::delta, 3, "8", {5, 5, 1, 1}));
    std::string text = m->exposition();
    BOOST_TEST_INFO(text);
    BOOST_TEST(sample(text, tx7) == 600u);
    BOOST_TEST(sample(text, rx7) == 60u);
    BOOST_TEST(sample(text, tx8) == 305u);
    BOOST_TEST(text.find("job=\"\"") == std::string::npos);

    for (int i = 0; i < 10; ++i)
        end_interval(2);
    BOOST_TEST(sample(m->exposition(), tx7) == 600u, "kept for 10 intervals after its last flow closed");
    end_interval(2);
    text = m->exposition();
    BOOST_TEST(sample(text, tx7) == kMissing, "gone after them");
    BOOST_TEST(sample(text, tx8) == 305u, "a job with an open flow stays");
    m->flow_close(rec(FlowEvent::close, 3, "8", {5, 5, 1, 1}));
    for (int i = 0; i < 11; ++i)
        end_interval(1);
    BOOST_TEST(sample(m->exposition(), tx8) == kMissing);
    // The per-user series never expire.
    BOOST_TEST(sample(m->exposition(), "pdtt_transmit_bytes_total" + user_labels("alice", 1001, "veth0")) == 1904u);
}

// With classes, the per-user series carry the remote's class; what the
// report counted outside any flow is in class "*", so each class adds up
// to the reports' per-class totals and all of them to the user's.
BOOST_AUTO_TEST_CASE(class_series_add_up_to_the_reports_classes) {
    asio::io_context io;
    auto m = make_metrics_sink({"", "", "0.1"}, io);
    auto rec = [](uint64_t id, std::string_view cls, Counters c) {
        FlowRecord r;
        r.type = FlowEvent::delta;
        r.id.flow_id = id;
        r.id.user = "alice";
        r.id.uid = 1001;
        r.id.iface = "veth0";
        r.cls = cls;
        r.cnt = c;
        return r;
    };
    m->flow_delta(rec(1, "wan", {1000, 100, 10, 1}));
    m->flow_delta(rec(2, "storage", {20, 2000, 1, 20}));
    m->flow_delta(rec(1, "wan", {1, 1, 1, 1}));
    UserReport u;
    u.user = "alice";
    u.uid = 1001;
    // 500 tx and 5 packets more than the flows: a flow refused a slot.
    u.tx_bytes = 1521;
    u.rx_bytes = 2101;
    u.tx_packets = 17;
    u.rx_packets = 22;
    u.classes = {{"wan", 1001, 101}, {"storage", 20, 2000}, {"other", 0, 0}};
    m->user_report(u);
    m->interval_end();
    std::string text = m->exposition();
    BOOST_TEST_INFO(text);
    auto labels = [](const char* iface, const char* cls) {
        return std::string("{user=\"alice\",uid=\"1001\",iface=\"") + iface + "\",class=\"" + cls + "\"}";
    };
    BOOST_TEST(sample(text, "pdtt_transmit_bytes_total" + labels("veth0", "wan")) == 1001u);
    BOOST_TEST(sample(text, "pdtt_receive_bytes_total" + labels("veth0", "storage")) == 2000u);
    BOOST_TEST(sample(text, "pdtt_transmit_packets_total" + labels("veth0", "wan")) == 11u);
    BOOST_TEST(sample(text, "pdtt_transmit_bytes_total" + labels("*", "*")) == 500u);
    BOOST_TEST(sample(text, "pdtt_transmit_packets_total" + labels("*", "*")) == 5u);
    BOOST_TEST(user_sum(text, "pdtt_transmit_bytes_total", 1001) == 1521u);
    BOOST_TEST(user_sum(text, "pdtt_receive_bytes_total", 1001) == 2101u);
    BOOST_TEST(text.find("class=\"other\"") == std::string::npos, "no series for a class without bytes");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(exposition)

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
    BOOST_TEST(metrics_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
    BOOST_TEST(metrics_label_value("plain") == "plain");

    asio::io_context io;
    auto m = make_metrics_sink({"", "", "0.1"}, io);
    FlowRecord r;
    r.type = FlowEvent::delta;
    r.id.flow_id = 7;
    r.id.user = "we\"ird\\\nname";
    r.id.uid = 5;
    r.id.iface = "eth0";
    r.cnt = {1, 2, 3, 4};
    m->flow_delta(r);
    BOOST_TEST(sample(m->exposition(),
                      "pdtt_transmit_bytes_total{user=\"we\\\"ird\\\\\\nname\",uid=\"5\",iface=\"eth0\"}") == 1u);
}

// Every line is a comment or NAME{LABELS} VALUE; each metric has HELP and
// TYPE before its samples; the health series come from agent_stats.
BOOST_AUTO_TEST_CASE(text_format_0_0_4_with_health) {
    asio::io_context io;
    auto m = make_metrics_sink({"", "", "9.8.7"}, io);
    AgentStats s;
    s.events = 11;
    s.ring_drops = 2;
    s.flow_table_full = 3;
    s.flows_active = 10;
    s.flows_udp = 4;
    s.flow_table_size = 262144;
    s.sink_errors = 5;
    m->agent_stats(s);
    std::string text = m->exposition();
    BOOST_TEST_INFO(text);
    BOOST_TEST(sample(text, "pdtt_flows{proto=\"tcp\"}") == 6u);
    BOOST_TEST(sample(text, "pdtt_flows{proto=\"udp\"}") == 4u);
    BOOST_TEST(sample(text, "pdtt_flow_table_entries") == 10u);
    BOOST_TEST(sample(text, "pdtt_flow_table_capacity") == 262144u);
    BOOST_TEST(sample(text, "pdtt_events_total") == 11u);
    BOOST_TEST(sample(text, "pdtt_ring_drops_total") == 2u);
    BOOST_TEST(sample(text, "pdtt_flow_table_full_total") == 3u);
    BOOST_TEST(sample(text, "pdtt_sink_errors_total{sink=\"all\"}") == 5u);
    BOOST_TEST(sample(text, "pdtt_build_info{version=\"9.8.7\"}") == 1u);

    static const std::regex line_re(R"((# (HELP|TYPE) ([a-z_]+) .+)|([a-z_]+)(\{[^}]*\})? [0-9]+)");
    std::set<std::string> typed;
    std::istringstream in(text);
    std::string line;
    std::smatch mm;
    while (std::getline(in, line)) {
        BOOST_TEST_REQUIRE(std::regex_match(line, mm, line_re), "not an exposition line: " << line);
        if (mm[2] == "TYPE")
            typed.insert(mm[3]);
        else if (mm[4].matched)
            BOOST_TEST(typed.count(mm[4]), "sample before its TYPE: " << line);
    }
    BOOST_TEST(text.back() == '\n');
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

namespace fs = std::filesystem;

// A temporary file with the given mode.
struct TempFile {
    fs::path path;
    TempFile(const std::string& text, fs::perms mode) {
        char tmpl[] = "/tmp/pdtt-token-XXXXXX";
        int fd = ::mkstemp(tmpl);
        BOOST_REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
        fs::permissions(path, mode);
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

// The sink on 127.0.0.1, its loop on a thread of its own; the test is the client.
struct Server {
    asio::io_context io;
    std::unique_ptr<MetricsSink> sink;
    std::thread loop;
    explicit Server(const std::string& token_file = "") {
        sink = make_metrics_sink({"127.0.0.1:0", token_file, "0.1"}, io);
        FlowRecord r;
        r.type = FlowEvent::delta;
        r.id.flow_id = 1;
        r.id.user = "alice";
        r.id.uid = 1001;
        r.id.iface = "veth0";
        r.cnt = {1234, 0, 2, 0};
        sink->flow_delta(r);
    }
    void start() {
        loop = std::thread([this] { io.run(); });
    }
    ~Server() {
        io.stop();
        if (loop.joinable())
            loop.join();
    }
    uint16_t port() const { return sink->endpoint().port(); }
};

// Sends `request` and reads until the server closes; "" when it closed
// without a word.
std::string talk(uint16_t port, const std::string& request) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    boost::system::error_code ec;
    asio::write(s, asio::buffer(request), ec);
    std::string reply;
    asio::read(s, asio::dynamic_buffer(reply), ec);
    return reply;
}

std::string get(uint16_t port, const std::string& target, const std::string& extra = "") {
    return talk(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
}

int status(const std::string& reply) {
    return reply.size() >= 12 && reply.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(reply.substr(9, 3)) : 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(http)

BOOST_AUTO_TEST_CASE(get_metrics_200_anything_else_404) {
    Server srv;
    srv.start();
    std::string ok = get(srv.port(), "/metrics");
    BOOST_TEST(status(ok) == 200, ok);
    BOOST_TEST(ok.find("Content-Type: text/plain; version=0.0.4") != std::string::npos, ok);
    BOOST_TEST(ok.find("pdtt_transmit_bytes_total{user=\"alice\",uid=\"1001\",iface=\"veth0\"} 1234\n") !=
               std::string::npos);
    BOOST_TEST(status(get(srv.port(), "/")) == 404);
    BOOST_TEST(status(get(srv.port(), "/metrics/x")) == 404);
    BOOST_TEST(status(get(srv.port(), "/metricsx")) == 404);
    BOOST_TEST(status(talk(srv.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")) == 404);
}

BOOST_AUTO_TEST_CASE(with_a_token_only_its_bearer_is_answered) {
    TempFile token("s3cret-token\n", fs::perms::owner_read | fs::perms::owner_write);
    Server srv(token.path.string());
    srv.start();
    BOOST_TEST(status(get(srv.port(), "/metrics")) == 401);
    BOOST_TEST(status(get(srv.port(), "/metrics", "Authorization: Bearer wrong\r\n")) == 401);
    BOOST_TEST(status(get(srv.port(), "/metrics", "Authorization: Bearer s3cret-toke\r\n")) == 401);
    BOOST_TEST(status(get(srv.port(), "/metrics", "Authorization: Bearer s3cret-token2\r\n")) == 401);
    BOOST_TEST(status(get(srv.port(), "/metrics", "Authorization: Basic s3cret-token\r\n")) == 401);
    std::string ok = get(srv.port(), "/metrics", "Authorization: Bearer s3cret-token\r\n");
    BOOST_TEST(status(ok) == 200, ok);
    BOOST_TEST(ok.find("pdtt_build_info") != std::string::npos);
    BOOST_TEST(status(get(srv.port(), "/nope", "Authorization: Bearer s3cret-token\r\n")) == 404);
}

BOOST_AUTO_TEST_CASE(a_token_file_others_may_read_is_refused) {
    TempFile token("s3cret\n",
                   fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    asio::io_context io;
    try {
        make_metrics_sink({"127.0.0.1:0", token.path.string(), "0.1"}, io);
        BOOST_FAIL("a world-readable token file was accepted");
    } catch (const Error& e) {
        BOOST_TEST(e.exit_code() == kExitUsage);
        BOOST_TEST(std::string(e.what()).find("chmod 600") != std::string::npos, e.what());
    }
    TempFile empty("\n", fs::perms::owner_read | fs::perms::owner_write);
    BOOST_CHECK_THROW(make_metrics_sink({"127.0.0.1:0", empty.path.string(), "0.1"}, io), Error);
    BOOST_CHECK_THROW(make_metrics_sink({"127.0.0.1:0", "/nonexistent/token", "0.1"}, io), Error);
}

BOOST_AUTO_TEST_CASE(an_address_in_use_is_an_error) {
    Server srv;
    asio::io_context io;
    BOOST_CHECK_THROW(make_metrics_sink({"127.0.0.1:" + std::to_string(srv.port()), "", "0.1"}, io), Error);
    BOOST_CHECK_THROW(make_metrics_sink({"localhost:99", "", "0.1"}, io), Error);
}

// A huge request is dropped without an answer, at once.
BOOST_AUTO_TEST_CASE(a_huge_request_is_dropped) {
    Server srv;
    srv.start();
    auto t0 = std::chrono::steady_clock::now();
    std::string reply = get(srv.port(), "/metrics", "X-Pad: " + std::string(64 * 1024, 'a') + "\r\n");
    BOOST_TEST(reply.empty(), reply.substr(0, 200));
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 2s));
    BOOST_TEST(status(get(srv.port(), "/metrics")) == 200, "the server still answers");
}

// A client that sends half a request is cut off after the timeout, and
// meanwhile the loop runs everything else on time (the ring consumer is a
// handler there too), others' scrapes included.
BOOST_AUTO_TEST_CASE(a_slow_request_is_dropped_and_stalls_nothing) {
    Server srv;
    uint64_t late_ms = 0, fired = 0;
    asio::steady_timer timer(srv.io);
    auto due = std::chrono::steady_clock::now();
    std::function<void()> arm = [&] {
        due += 100ms;
        timer.expires_at(due);
        timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec)
                return;
            auto late = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - due);
            late_ms = std::max<uint64_t>(late_ms, late.count());
            fired++;
            arm();
        });
    };
    arm();
    srv.start();

    asio::io_context io;
    tcp::socket slow(io);
    slow.connect({asio::ip::make_address("127.0.0.1"), srv.port()});
    asio::write(slow, asio::buffer(std::string("GET /metrics HTTP/1.1\r\nHo")));
    auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(status(get(srv.port(), "/metrics")) == 200, "another client is answered meanwhile");
    std::string reply;
    boost::system::error_code ec;
    asio::read(slow, asio::dynamic_buffer(reply), ec); // until the server closes it
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(reply.empty());
    BOOST_TEST((took >= std::chrono::seconds(kMetricsTimeoutSeconds - 1)));
    BOOST_TEST((took < std::chrono::seconds(kMetricsTimeoutSeconds + 2)));
    BOOST_TEST(fired >= 30u);
    BOOST_TEST(late_ms < 50u, "a timer on the loop ran " << late_ms << " ms late");
}

// Beyond the bound a new connection is closed at once; once one of the
// open ones goes, scrapes are answered again.
BOOST_AUTO_TEST_CASE(open_connections_are_bounded) {
    Server srv;
    srv.start();
    asio::io_context io;
    std::vector<tcp::socket> idle;
    for (std::size_t i = 0; i < kMetricsMaxConnections; i++) {
        idle.emplace_back(io);
        idle.back().connect({asio::ip::make_address("127.0.0.1"), srv.port()});
    }
    std::this_thread::sleep_for(200ms); // all accepted
    auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(get(srv.port(), "/metrics").empty(), "a connection over the bound was answered");
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 2s));
    idle.pop_back();
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(status(get(srv.port(), "/metrics")) == 200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(options)

// --metrics-listen takes an IP address and a port; a host name or a port
// out of range is a usage error that names the option.
BOOST_AUTO_TEST_CASE(metrics_listen_is_an_address_and_a_port) {
    auto parse = [](std::vector<const char*> args) {
        args.insert(args.begin(), {"pdtt-agent", "-i", "eth0"});
        std::ostringstream out;
        return parse_config(static_cast<int>(args.size()), args.data(), out, "/nonexistent/pdtt.conf");
    };
    auto ok = parse({"--metrics-listen", "127.0.0.1:9877", "--metrics-token-file", "/etc/pdtt/token"});
    BOOST_TEST_REQUIRE(ok.has_value());
    BOOST_TEST(ok->metrics_listen == "127.0.0.1:9877");
    BOOST_TEST(ok->metrics_token_file == "/etc/pdtt/token");
    BOOST_TEST(parse({"--metrics-listen", "[::1]:9877"})->metrics_listen == "[::1]:9877");
    BOOST_TEST(parse({})->metrics_listen.empty());
    for (const char* bad : {"localhost:9877", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9877", "[::1]"}) {
        BOOST_TEST_CONTEXT(bad) {
            try {
                parse({"--metrics-listen", bad});
                BOOST_FAIL("accepted");
            } catch (const Error& e) {
                BOOST_TEST(e.exit_code() == kExitUsage);
                BOOST_TEST(std::string(e.what()).find("metrics-listen") != std::string::npos, e.what());
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
