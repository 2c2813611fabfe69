// Syslog sink: RFC 5424 formatting and RFC 6587 framing checked against the
// grammar; the TCP queue, reconnect and flush against in-process receivers;
// then the real agent and a real rsyslog (in a private namespace, on its
// loopback) over UDP and TCP, including a receiver outage.
#define BOOST_TEST_MODULE syslog
#include <boost/test/unit_test.hpp>

#include "factory.hpp"
#include "format.hpp"
#include "agent_lab.hpp"
#include "syslog_format.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;
using namespace pdtt;
using namespace pdtt::test;
using Steady = std::chrono::steady_clock;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// 2024-01-15 10:30:00 UTC plus micros.
Timestamp at(int64_t micros = 0) {
    return Timestamp(std::chrono::microseconds(int64_t{1705314600} * 1'000'000 + micros));
}

void set_tz(const char* tz) {
    setenv("TZ", tz, 1);
    tzset();
}

struct UtcZone {
    UtcZone() { set_tz("UTC"); }
};

const rfc5424::Header kHeader{16, "host.example", "pdtt", "1234"};

FlowRecord sample_flow() {
    FlowRecord r;
    r.type = FlowEvent::close;
    r.ts = at(123456);
    r.id = {"eth0", 1001, "alice", 4242, "rsync", "tcp", "ipv4", "192.168.1.100", 40000,
            "93.184.216.34", 22, Direction::outbound};
    r.cnt = {524288, 1048576, 400, 800};
    r.tcp_bytes_acked = 524289;
    r.tcp_bytes_received = 1048577;
    r.duration_ms = 1500;
    return r;
}

UserReport sample_report(std::size_t connections) {
    UserReport u;
    u.ts = at(5);
    u.user = "alice";
    u.uid = 1001;
    u.interval_s = 10;
    u.tx_bytes = 786432;
    u.rx_bytes = 1179648;
    u.tx_packets = 600;
    u.rx_packets = 1200;
    u.flows = connections;
    for (std::size_t i = 0; i < connections; ++i)
        u.connections.push_back({"fd00:200:7::1", "fd00:200:" + std::to_string(i) + "::abcd:ef01",
                                 1000000 + i, 2000000 + i});
    return u;
}

AgentStats sample_stats(uint64_t events = 1000) {
    AgentStats s;
    s.ts = at(999999);
    s.interval_s = 10;
    s.events = events;
    s.flows_active = 3;
    s.flow_table_size = 262144;
    s.sink_errors = 2;
    s.interfaces_missing = 1;
    return s;
}

// ---- RFC 5424's ABNF, as a checker ----

struct Parsed {
    int pri = -1;
    std::string timestamp, hostname, app, procid, msgid, sd_id, msg;
    std::vector<std::pair<std::string, std::string>> params;   // unescaped
    int elements = 0;

    std::map<std::string, std::string> sd() const { return {params.begin(), params.end()}; }
};

bool printusascii(std::string_view s, std::size_t max) {
    return !s.empty() && s.size() <= max &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= 33 && c <= 126; });
}

// SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']' and '"'.
bool sd_name(std::string_view s) {
    return printusascii(s, 32) && s.find_first_of("= ]\"") == std::string_view::npos;
}

// Parses m by RFC 5424's grammar; throws naming the first violation.
Parsed parse_rfc5424(const std::string& m) {
    Parsed p;
    std::size_t i = 0;
    auto fail = [&](const std::string& why) {
        throw std::runtime_error(why + " at octet " + std::to_string(i) + " of: " + m);
    };
    auto token = [&](const char* what) {
        if (i >= m.size() || m[i] != ' ')
            fail(std::string("no SP before ") + what);
        std::size_t end = m.find(' ', ++i);
        std::string t = m.substr(i, end == std::string::npos ? std::string::npos : end - i);
        i += t.size();
        return t;
    };
    static const std::regex pri_re(R"(<(\d{1,3})>1)");
    std::smatch sm;
    std::string head = m.substr(0, m.find(' '));
    if (!std::regex_match(head, sm, pri_re) || std::stoi(sm[1]) > 191 || (sm[1].length() > 1 && sm[1].str()[0] == '0'))
        fail("bad PRI or VERSION");
    p.pri = std::stoi(sm[1]);
    i = head.size();
    p.timestamp = token("TIMESTAMP");
    static const std::regex ts_re(
        R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))");
    if (p.timestamp != "-" && !std::regex_match(p.timestamp, ts_re))
        fail("bad TIMESTAMP '" + p.timestamp + "'");
    p.hostname = token("HOSTNAME");
    p.app = token("APP-NAME");
    p.procid = token("PROCID");
    p.msgid = token("MSGID");
    if (!printusascii(p.hostname, 255) || !printusascii(p.app, 48) || !printusascii(p.procid, 128) ||
        !printusascii(p.msgid, 32))
        fail("header field not 1*N PRINTUSASCII");
    if (i >= m.size() || m[i] != ' ')
        fail("no SP before STRUCTURED-DATA");
    ++i;
    if (m.compare(i, 1, "-") == 0) {
        ++i;
    } else {
        while (i < m.size() && m[i] == '[') {
            p.elements++;
            std::size_t end = m.find_first_of(" ]", ++i);
            if (end == std::string::npos)
                fail("unterminated SD-ELEMENT");
            p.sd_id = m.substr(i, end - i);
            if (!sd_name(p.sd_id))
                fail("bad SD-ID");
            i = end;
            while (m[i] == ' ') {
                std::size_t eq = m.find('=', ++i);
                if (eq == std::string::npos)
                    fail("SD-PARAM without '='");
                std::string name = m.substr(i, eq - i);
                if (!sd_name(name))
                    fail("bad PARAM-NAME '" + name + "'");
                i = eq + 1;
                if (m.compare(i, 1, "\"") != 0)
                    fail("PARAM-VALUE not quoted");
                std::string raw, value;
                for (++i;; ++i) {
                    if (i >= m.size())
                        fail("unterminated PARAM-VALUE");
                    char c = m[i];
                    if (c == '"')
                        break;
                    if (c == ']')
                        fail("']' not escaped in PARAM-VALUE");
                    raw += c;
                    if (c == '\\') {
                        if (i + 1 >= m.size() || std::string_view("\"\\]").find(m[i + 1]) == std::string_view::npos)
                            fail("'\\' not escaped in PARAM-VALUE");
                        c = m[++i];
                        raw += c;
                    }
                    value += c;
                }
                ++i;
                if (valid_utf8(raw) != raw)
                    fail("PARAM-VALUE is not UTF-8");
                p.params.emplace_back(name, value);
            }
            if (m.compare(i, 1, "]") != 0)
                fail("SD-ELEMENT not closed");
            ++i;
        }
        if (p.elements == 0)
            fail("no STRUCTURED-DATA");
    }
    if (i < m.size()) {
        if (m[i] != ' ')
            fail("no SP before MSG");
        p.msg = m.substr(i + 1);
    }
    return p;
}

Parsed must_parse(const std::string& m) {
    try {
        return parse_rfc5424(m);
    } catch (const std::exception& e) {
        BOOST_FAIL(e.what());
    }
    return {};
}

// "1.5" for 1.5 and "10" for 10, as the sink writes seconds.
std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    std::string out = buf;
    out.erase(out.find_last_not_of('0') + 1);
    if (out.back() == '.')
        out.pop_back();
    return out;
}

std::string text(const json::value& v) {
    if (v.is_string())
        return std::string(v.as_string());
    if (v.is_double())
        return seconds_text(v.as_double());
    return json::serialize(v);
}

// What a JSON record's STRUCTURED-DATA must be: the same keys and values,
// "type" being the MSGID, null left out, connections[i].K as K_i.
std::map<std::string, std::string> sd_of_json(const json::object& o) {
    std::map<std::string, std::string> sd;
    for (const auto& [k, v] : o) {
        if (k == "type" || v.is_null())
            continue;
        if (k == "connections") {
            std::size_t i = 0;
            for (const auto& row : v.as_array()) {
                for (const auto& [rk, rv] : row.as_object())
                    sd[std::string(rk) + "_" + std::to_string(i)] = text(rv);
                ++i;
            }
            continue;
        }
        sd[std::string(k)] = text(v);
    }
    return sd;
}

// The JSON sink's line for one record.
json::object json_of(const std::function<void(Sink&)>& feed) {
    std::FILE* f = std::tmpfile();
    BOOST_REQUIRE(f);
    auto sink = make_json_sink(f);
    feed(*sink);
    sink->flush();
    std::rewind(f);
    std::string line;
    for (int c; (c = std::fgetc(f)) != EOF && c != '\n';)
        line += static_cast<char>(c);
    std::fclose(f);
    return json::parse(line).as_object();
}

// Complete RFC 6587 frames at the start of buf, removed from it.
std::vector<std::string> take_frames(std::string& buf) {
    std::vector<std::string> out;
    for (;;) {
        std::size_t sp = buf.find(' ');
        if (sp == std::string::npos)
            break;
        std::size_t len = std::stoul(buf.substr(0, sp));
        if (buf.size() < sp + 1 + len)
            break;
        out.push_back(buf.substr(sp + 1, len));
        buf.erase(0, sp + 1 + len);
    }
    return out;
}

// Runs io in short slices until pred holds or timeout passes.
bool pump(asio::io_context& io, const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = Steady::now() + timeout;
    while (!pred()) {
        if (Steady::now() >= deadline)
            return false;
        io.restart();
        io.run_for(10ms);
    }
    return true;
}

// A receiver for the TCP sink in this process: a port that refuses
// connections until listen(), then accepts one connection at a time.
struct TcpReceiver {
    asio::io_context& io;
    tcp::acceptor acceptor{io};
    tcp::socket peer{io};
    std::string buf;
    std::vector<std::string> messages;

    explicit TcpReceiver(asio::io_context& io) : io(io) {
        acceptor.open(tcp::v4());
        acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor.non_blocking(true);
    }
    std::string url() const { return "tcp://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
    void listen() { acceptor.listen(); }

    bool accept(std::chrono::milliseconds timeout) {
        boost::system::error_code ec;
        bool ok = pump(io, [&] { acceptor.accept(peer, ec); return !ec; }, timeout);
        if (ok)
            peer.non_blocking(true);
        return ok;
    }
    void read_now() {
        char chunk[65536];
        boost::system::error_code ec;
        while (std::size_t n = peer.read_some(asio::buffer(chunk), ec))
            buf.append(chunk, n);
        for (auto& m : take_frames(buf))
            messages.push_back(std::move(m));
    }
    // Reads (running io meanwhile) until count messages have arrived.
    bool read(std::size_t count, std::chrono::milliseconds timeout) {
        return pump(io, [&] { read_now(); return messages.size() >= count; }, timeout);
    }
};

uint64_t events_of(const std::string& msg) { return std::stoull(must_parse(msg).sd().at("events")); }

} // namespace

BOOST_AUTO_TEST_SUITE(format)

BOOST_FIXTURE_TEST_CASE(agent_stats_message_is_exactly_rfc5424, UtcZone) {
    std::string m = rfc5424::format_agent_stats(kHeader, sample_stats());
    BOOST_TEST(m == "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 agent_stats "
                    "[pdtt@32473 v=\"1\" ts=\"2024-01-15T10:30:00.999999Z\" interval_s=\"10\" events=\"1000\" "
                    "ring_drops=\"0\" flow_table_full=\"0\" aux_table_full=\"0\" flows_active=\"3\" "
                    "flow_table_size=\"262144\" sink_errors=\"2\" interfaces_missing=\"1\"] "
                    "1000 events, 0 ring drops, 3 flows active, 2 sink errors");
    rfc5424::Header local7 = kHeader;
    local7.facility = 23;
    BOOST_TEST(must_parse(rfc5424::format_agent_stats(local7, sample_stats())).pri == 23 * 8 + 6);
}

BOOST_FIXTURE_TEST_CASE(every_record_parses_by_the_grammar, UtcZone) {
    Parsed f = must_parse(rfc5424::format_flow_close(kHeader, sample_flow()));
    BOOST_TEST(f.pri == 134);
    BOOST_TEST(f.hostname == "host.example");
    BOOST_TEST(f.app == "pdtt");
    BOOST_TEST(f.procid == "1234");
    BOOST_TEST(f.msgid == "flow_close");
    BOOST_TEST(f.sd_id == "pdtt@32473");
    BOOST_TEST(f.elements == 1);
    BOOST_TEST(f.msg == "alice: tcp 192.168.1.100:40000 -> 93.184.216.34:22 closed after 1.5 s, tx 512.0 KiB, "
                        "rx 1.0 MiB");
    Parsed u = must_parse(rfc5424::format_user_report(kHeader, sample_report(2), rfc5424::kUdpMaxMessage).at(0));
    BOOST_TEST(u.msgid == "user_report");
    BOOST_TEST(u.msg == "alice: tx 768.0 KiB, rx 1.1 MiB, 2 flows in 10 s");
    BOOST_TEST(must_parse(rfc5424::format_agent_stats(kHeader, sample_stats())).msgid == "agent_stats");
}

BOOST_AUTO_TEST_CASE(timestamp_has_microseconds_and_the_local_offset) {
    set_tz("XYZ-8");   // POSIX: eight hours east of UTC
    BOOST_TEST(rfc5424::timestamp(at(42)) == "2024-01-15T18:30:00.000042+08:00");
    set_tz("ABC+3:30");
    BOOST_TEST(rfc5424::timestamp(at(999999)) == "2024-01-15T07:00:00.999999-03:30");
    set_tz("UTC");
    BOOST_TEST(rfc5424::timestamp(at()) == "2024-01-15T10:30:00.000000+00:00");
}

BOOST_FIXTURE_TEST_CASE(sd_fields_are_the_json_records_fields, UtcZone) {
    FlowRecord known = sample_flow();
    FlowRecord unknown = sample_flow();
    unknown.id.pid.reset();
    unknown.id.comm.reset();
    unknown.id.uid = -1;
    unknown.id.user = "unattributed";
    unknown.id.family = "ipv6";
    unknown.id.local = "fd00::1";
    unknown.id.remote = "fd00::2";
    for (const FlowRecord& r : {known, unknown}) {
        auto sd = must_parse(rfc5424::format_flow_close(kHeader, r)).sd();
        BOOST_TEST((sd == sd_of_json(json_of([&](Sink& s) { s.flow_close(r); }))));
    }
    BOOST_TEST(must_parse(rfc5424::format_flow_close(kHeader, unknown)).sd().count("pid") == 0u);

    UserReport u = sample_report(3);
    u.interval_s = 1.25;
    auto usd = must_parse(rfc5424::format_user_report(kHeader, u, rfc5424::kUdpMaxMessage).at(0)).sd();
    BOOST_TEST((usd == sd_of_json(json_of([&](Sink& s) { s.user_report(u); }))));
    BOOST_TEST(usd.at("interval_s") == "1.25");
    BOOST_TEST(usd.at("remote_2") == "fd00:200:2::abcd:ef01");

    AgentStats st = sample_stats();
    auto ssd = must_parse(rfc5424::format_agent_stats(kHeader, st)).sd();
    BOOST_TEST((ssd == sd_of_json(json_of([&](Sink& s) { s.agent_stats(st); }))));
}

BOOST_AUTO_TEST_CASE(quote_backslash_and_bracket_are_escaped_and_nothing_else) {
    BOOST_TEST(rfc5424::escape_param_value(R"(a"b\c]d)") == R"(a\"b\\c\]d)");
    BOOST_TEST(rfc5424::escape_param_value(R"("\]]\")") == R"(\"\\\]\]\\\")");
    BOOST_TEST(rfc5424::escape_param_value("[= '}") == "[= '}");
    FlowRecord r = sample_flow();
    r.id.user = R"(x"y\z]w)";
    r.id.comm = R"("]\)";
    auto sd = must_parse(rfc5424::format_flow_close(kHeader, r)).sd();
    BOOST_TEST(sd.at("user") == r.id.user);
    BOOST_TEST(sd.at("comm") == *r.id.comm);
}

BOOST_AUTO_TEST_CASE(values_are_utf8_invalid_input_repaired) {
    FlowRecord r = sample_flow();
    r.id.user = "caf\xC3\xA9-\xE2\x82\xAC";     // café-€, valid: kept
    r.id.comm = "ab\xFF\xC0" "c\xE2\x82";        // invalid bytes, a truncated sequence
    std::string m = rfc5424::format_flow_close(kHeader, r);
    auto sd = must_parse(m).sd();
    BOOST_TEST(sd.at("user") == "caf\xC3\xA9-\xE2\x82\xAC");
    BOOST_TEST(sd.at("comm") == "ab\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD");
    BOOST_TEST(valid_utf8(m) == m);   // MSG too
    BOOST_TEST(rfc5424::escape_param_value("\xC3\xA9\"\xFF") == "\xC3\xA9\\\"\xEF\xBF\xBD");
}

BOOST_AUTO_TEST_CASE(header_fields_are_printable_ascii_or_nil) {
    rfc5424::Header h{16, "my host\xC3\xA9", std::string(60, 'a'), "", };
    Parsed p = must_parse(rfc5424::format_message(h, at(), "agent_stats", {{"k", "v"}}, "a\nb\x01" "c"));
    BOOST_TEST(p.hostname == "my_host__");
    BOOST_TEST(p.app == std::string(48, 'a'));
    BOOST_TEST(p.procid == "-");
    BOOST_TEST(p.msg == "a b c");   // MSG: no control characters
}

BOOST_AUTO_TEST_CASE(a_big_user_report_is_split_not_truncated) {
    UserReport u = sample_report(300);
    for (std::size_t max : {rfc5424::kUdpMaxMessage, rfc5424::kTcpMaxMessage}) {
        BOOST_TEST_CONTEXT("max " << max) {
            auto msgs = rfc5424::format_user_report(kHeader, u, max);
            BOOST_TEST(msgs.size() > 1u);
            std::map<std::string, std::string> all;
            for (std::size_t i = 0; i < msgs.size(); ++i) {
                BOOST_TEST(msgs[i].size() <= max);
                if (i + 1 < msgs.size())   // full but for less than one connection and the part fields
                    BOOST_TEST(msgs[i].size() > max - 150, msgs[i].size());
                auto sd = must_parse(msgs[i]).sd();
                BOOST_TEST(sd.at("user") == "alice");
                BOOST_TEST(sd.at("part") == std::to_string(i + 1));
                BOOST_TEST(sd.at("parts") == std::to_string(msgs.size()));
                BOOST_TEST(sd.count("tx_bytes") == (i == 0 ? 1u : 0u));   // totals once
                for (auto& [k, v] : sd)
                    if (k.find('_') != std::string::npos && std::isdigit(static_cast<unsigned char>(k.back())))
                        BOOST_TEST(all.emplace(k, v).second, k << " twice");
            }
            BOOST_TEST(all.size() == 4 * 300u);
            for (std::size_t c = 0; c < 300; ++c) {
                auto n = "_" + std::to_string(c);
                BOOST_TEST(all["remote" + n] == u.connections[c].remote);
                BOOST_TEST(all["tx_bytes" + n] == std::to_string(u.connections[c].tx_bytes));
                BOOST_TEST(all["rx_bytes" + n] == std::to_string(u.connections[c].rx_bytes));
            }
        }
    }
    auto one = rfc5424::format_user_report(kHeader, sample_report(2), rfc5424::kUdpMaxMessage);
    BOOST_TEST(one.size() == 1u);
    BOOST_TEST(must_parse(one[0]).sd().count("part") == 0u);
}

BOOST_AUTO_TEST_CASE(octet_counting_counts_octets) {
    BOOST_TEST(rfc5424::octet_frame("caf\xC3\xA9") == "5 caf\xC3\xA9");
    std::string m = rfc5424::format_agent_stats(kHeader, sample_stats());
    std::string framed = rfc5424::octet_frame(m) + rfc5424::octet_frame("x");
    auto frames = take_frames(framed);
    BOOST_TEST(frames.size() == 2u);
    BOOST_TEST(frames[0] == m);
    BOOST_TEST(frames[1] == "x");
    BOOST_TEST(framed.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(transport)

BOOST_AUTO_TEST_CASE(udp_sends_one_message_per_datagram_within_1180_octets) {
    asio::io_context io;
    udp::socket rx(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto sink = make_syslog_sink({"udp://127.0.0.1:" + std::to_string(rx.local_endpoint().port()), 16, "pdtt"}, io);
    UserReport u = sample_report(100);
    sink->user_report(u);
    sink->agent_stats(sample_stats());
    auto want = rfc5424::format_user_report(rfc5424::local_header(16, "pdtt"), u, rfc5424::kUdpMaxMessage);
    BOOST_TEST_REQUIRE(want.size() > 1u);
    rx.non_blocking(true);
    std::vector<std::string> got;
    char buf[65536];
    boost::system::error_code ec;
    while (std::size_t n = rx.receive(asio::buffer(buf), 0, ec))
        got.emplace_back(buf, n);
    BOOST_TEST_REQUIRE(got.size() == want.size() + 1);
    for (std::size_t i = 0; i < want.size(); ++i) {
        BOOST_TEST(got[i] == want[i]);
        BOOST_TEST(got[i].size() <= 1180u);
    }
    BOOST_TEST(must_parse(got.back()).msgid == "agent_stats");
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(tcp_overflow_drops_the_oldest_and_counts_them) {
    asio::io_context io;
    TcpReceiver rx(io);   // refuses connections for now
    auto one = rfc5424::octet_frame(rfc5424::format_agent_stats(rfc5424::local_header(16, "pdtt"), sample_stats(100)));
    auto sink = make_syslog_sink({rx.url(), 16, "pdtt", 10 * one.size()}, io);
    for (uint64_t e = 100; e < 125; ++e)
        sink->agent_stats(sample_stats(e));
    pump(io, [] { return false; }, 100ms);   // connection refused, retrying
    BOOST_TEST(sink->errors() == 15u);
    rx.listen();
    BOOST_TEST_REQUIRE(rx.accept(5s));
    BOOST_TEST_REQUIRE(rx.read(10, 5s));
    pump(io, [] { return false; }, 100ms);
    rx.read_now();
    BOOST_TEST_REQUIRE(rx.messages.size() == 10u);
    for (std::size_t i = 0; i < 10; ++i)
        BOOST_TEST(events_of(rx.messages[i]) == 115 + i);   // the newest ten
    BOOST_TEST(sink->errors() == 15u);
}

BOOST_AUTO_TEST_CASE(tcp_reconnects_after_the_receiver_closes) {
    asio::io_context io;
    TcpReceiver rx(io);
    rx.listen();
    auto sink = make_syslog_sink({rx.url(), 16, "pdtt"}, io);
    sink->agent_stats(sample_stats(1));
    BOOST_TEST_REQUIRE(rx.accept(5s));
    BOOST_TEST_REQUIRE(rx.read(1, 5s));
    rx.peer.close();
    pump(io, [] { return false; }, 100ms);   // the sink notices the close
    sink->agent_stats(sample_stats(2));
    sink->agent_stats(sample_stats(3));
    BOOST_TEST_REQUIRE(rx.accept(5s));   // back-off starts at 0.5 s
    BOOST_TEST_REQUIRE(rx.read(3, 5s));
    BOOST_TEST(events_of(rx.messages[1]) == 2u);
    BOOST_TEST(events_of(rx.messages[2]) == 3u);
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(tcp_flush_delivers_the_queue_without_the_loop_and_is_bounded) {
    asio::io_context io;
    TcpReceiver rx(io);
    rx.listen();
    auto sink = make_syslog_sink({rx.url(), 16, "pdtt", 64u << 20}, io);
    sink->agent_stats(sample_stats(0));
    BOOST_TEST_REQUIRE(rx.accept(5s));
    BOOST_TEST_REQUIRE(rx.read(1, 5s));
    for (uint64_t e = 1; e <= 500; ++e)
        sink->agent_stats(sample_stats(e));
    sink->flush();   // io does not run: flush itself writes
    rx.read_now();
    BOOST_TEST_REQUIRE(rx.messages.size() == 501u);
    BOOST_TEST(events_of(rx.messages.back()) == 500u);

    // A receiver that reads nothing: flush gives up after about a second.
    for (uint64_t e = 0; e < 120000; ++e)   // ~36 MB, more than the socket buffers hold
        sink->agent_stats(sample_stats(e));
    auto t0 = Steady::now();
    sink->flush();
    auto took = Steady::now() - t0;
    BOOST_TEST(took >= 900ms);
    BOOST_TEST(took < 1500ms);
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the agent and a real rsyslog ----

namespace {

constexpr int kUdpPort = 5514, kTcpPort = 5515;

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

    Rsyslog(const Netns& ns, const fs::path& dir, const std::string& conf, int udp_port, int tcp_port)
        : ns(ns), dir(dir), udp_port(udp_port), tcp_port(tcp_port) {
        fs::create_directories(dir / "work");
        std::ofstream(dir / "rsyslog.conf") << "global(workDirectory=\"" << (dir / "work").string() << "\")\n"
                                            << conf;
        start();
    }
    ~Rsyslog() { proc.reset(); }

    void start() {
        proc = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/rsyslogd", "-n", "-f", (dir / "rsyslog.conf").string(), "-i",
                                     (dir / "rsyslogd.pid").string()},
            ns.name());
        bool up = wait_until([&] {
            return !proc->running() || (capture(ns.exec("ss -Hltn")).find(":" + std::to_string(tcp_port) + " ") !=
                                            std::string::npos &&
                                        capture(ns.exec("ss -Hlun")).find(":" + std::to_string(udp_port) + " ") !=
                                            std::string::npos);
        }, 10s);
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

    static std::string conf(const fs::path& dir) {
        std::ostringstream c;
        c << R"(
module(load="imudp")
module(load="imtcp")
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
  action(type="omfile" file=")" << (dir / "received.log").string() << R"(" template="pdtt")
}
input(type="imudp" address="127.0.0.1" port=")" << kUdpPort << R"(" ruleset="pdtt")
input(type="imtcp" address="127.0.0.1" port=")" << kTcpPort << R"(" ruleset="pdtt")
)";
        return c.str();
    }

    std::vector<Received> received() const {
        std::vector<Received> out;
        std::ifstream f(dir / "received.log");
        std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::istringstream in(all.substr(0, all.rfind('\n') + 1));   // a line still being written waits
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

std::string wall_now(std::chrono::milliseconds later = 0ms) {
    return rfc3339_utc(std::chrono::time_point_cast<std::chrono::microseconds>(pdtt::Clock::now() + later));
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
                 "tcp://127.0.0.1:" + std::to_string(kTcpPort), "--syslog-facility", "local3",
                 "--syslog-app-name", "pdtt-test"});
    transfer(alice, link.b_ip4(), 3'000'000, 1'000'000);
    transfer(alice, link.b_ip6(), 500'000, 200'000);
    transfer(bob, link.b_ip4(), 700'000, 2'000'000);
    auto json_recs = stop_agent();

    std::vector<json::object> want;   // what syslog carries
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
    std::string outage_start = wall_now(200ms);   // by then the agent has seen the connection close
    transfer(alice, link.b_ip6(), 2'000'000, 500'000);
    std::this_thread::sleep_for(3s);
    BOOST_TEST_REQUIRE(agent->running());
    std::string outage_end = wall_now();
    rsyslog->start();

    // What the queue held arrives once the agent is connected again.
    bool caught_up = wait_until([&] {
        return syslog_sums(rsyslog->received(), "imtcp", alice.name()).tx == read_user_file(user_file(alice)).tx;
    }, 20s);
    BOOST_TEST(caught_up);
    auto json_recs = stop_agent();
    std::string last_stats;
    for (const auto& r : json_recs)
        if (str(r, "type") == "agent_stats")
            last_stats = str(r, "ts");
    wait_until([&] {
        for (const auto& r : rsyslog->received())
            if (r.msgid == "agent_stats" && r.sd.at("ts") == last_stats)
                return true;
        return false;
    }, 5s);
    auto got = rsyslog->received();

    FileSums file = read_user_file(user_file(alice)), sys = syslog_sums(got, "imtcp", alice.name());
    BOOST_TEST(sys.tx == file.tx);
    BOOST_TEST(sys.rx == file.rx);
    BOOST_TEST(wire_ok(sys.tx, 3'000'000 + 2 * kTrafficHeader, resent_bytes_max(host)), sys.tx);
    BOOST_TEST(wire_ok(sys.rx, 800'000, resent_bytes_max(peer)), sys.rx);

    std::set<std::string> delivered;
    for (const auto& r : got)
        if (r.msgid == "agent_stats")
            delivered.insert(r.sd.at("ts"));
    int during = 0, missing = 0;
    for (const auto& r : json_recs) {
        if (str(r, "type") != "agent_stats")
            continue;
        std::string ts = str(r, "ts");
        // The kernel-side loss counter stays zero: the outage never held up the ring consumer.
        BOOST_TEST(json::value_to<uint64_t>(r.at("ring_drops")) == 0u, "at " << ts);
        BOOST_TEST(json::value_to<uint64_t>(r.at("sink_errors")) == 0u, "at " << ts);   // the queue had room
        bool in_outage = ts > outage_start && ts < outage_end;
        during += in_outage;
        if (!delivered.count(ts)) {
            ++missing;
            BOOST_TEST(!in_outage, "agent_stats of " << ts << " was queued during the outage and lost");
        }
    }
    BOOST_TEST(during >= 2);
    BOOST_TEST(missing <= 1, missing << " agent_stats lost (one may be in flight when the receiver stops)");
    BOOST_TEST(agent->err().find("connection lost") != std::string::npos, agent->err());
    BOOST_TEST(agent->err().find("connected again") != std::string::npos, agent->err());
}

BOOST_AUTO_TEST_CASE(rsyslog_reads_escaped_and_repaired_values_as_sent) {
    Netns ns;
    char tmpl[] = "/tmp/pdtt-syslog-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl));
    struct Remove {
        fs::path p;
        ~Remove() { std::error_code ec; fs::remove_all(p, ec); }
    } remove{tmpl};
    TestRsyslog rs(ns, remove.p);
    {
        EnterNetns in(ns);   // this thread's sockets live next to rsyslog
        asio::io_context io;
        auto udp_sink = make_syslog_sink({"udp://127.0.0.1:" + std::to_string(kUdpPort), 16, "pdtt"}, io);
        auto tcp_sink = make_syslog_sink({"tcp://localhost:" + std::to_string(kTcpPort), 16, "pdtt"}, io);
        FlowRecord r = sample_flow();
        r.id.user = "x\"y\\z]w [=] caf\xC3\xA9";
        r.id.comm = "bad\xFF\xC0utf8";
        udp_sink->flow_close(r);
        tcp_sink->flow_close(r);
        pump(io, [&] { return rs.received().size() >= 2; }, 5s);
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
    // A namespace with nothing but lo: the lookup fails without any traffic leaving it.
    Netns ns;
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
