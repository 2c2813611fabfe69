// What the syslog tests share: sample records, RFC 5424's grammar as a
// checker, RFC 6587 frames, and an in-process TCP receiver to drive the
// sink's own I/O with.
#pragma once

#include "factory.hpp"
#include "format.hpp"
#include "syslog_format.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pdtt::test {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::asio::ip::tcp;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// 2024-01-15 10:30:00 UTC plus micros.
inline Timestamp at(int64_t micros = 0) {
    return Timestamp(std::chrono::microseconds(int64_t{1705314600} * 1'000'000 + micros));
}

inline void set_tz(const char* tz) {
    setenv("TZ", tz, 1);
    tzset();
}

struct UtcZone {
    UtcZone() { set_tz("UTC"); }
};

inline const rfc5424::Header kHeader{16, "host.example", "pdtt", "1234"};

inline FlowRecord sample_flow() {
    FlowRecord r;
    r.type = FlowEvent::close;
    r.ts = at(123456);
    r.id = {7,
            "eth0",
            1001,
            "alice",
            4242,
            "rsync",
            "tcp",
            "ipv4",
            "192.168.1.100",
            40000,
            "93.184.216.34",
            22,
            Direction::outbound,
            {},
            {},
            {}};
    r.cnt = {524288, 1048576, 400, 800};
    r.tcp_bytes_acked = 524289;
    r.tcp_bytes_received = 1048577;
    r.duration_ms = 1500;
    return r;
}

inline UserReport sample_report(std::size_t connections) {
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
        u.connections.push_back(
            {"fd00:200:7::1", "fd00:200:" + std::to_string(i) + "::abcd:ef01", 1000000 + i, 2000000 + i});
    return u;
}

inline AgentStats sample_stats(uint64_t events = 1000) {
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
    std::vector<std::pair<std::string, std::string>> params; // unescaped
    int elements = 0;

    std::map<std::string, std::string> sd() const { return {params.begin(), params.end()}; }
};

inline bool printusascii(std::string_view s, std::size_t max) {
    return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) { return c >= 33 && c <= 126; });
}

// SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']' and '"'.
inline bool sd_name(std::string_view s) {
    return printusascii(s, 32) && s.find_first_of("= ]\"") == std::string_view::npos;
}

// Parses m by RFC 5424's grammar; throws naming the first violation.
inline Parsed parse_rfc5424(const std::string& m) {
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

inline Parsed must_parse(const std::string& m) {
    try {
        return parse_rfc5424(m);
    } catch (const std::exception& e) {
        BOOST_FAIL(e.what());
    }
    return {};
}

// "1.5" for 1.5 and "10" for 10, as the sink writes seconds.
inline std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    std::string out = buf;
    out.erase(out.find_last_not_of('0') + 1);
    if (out.back() == '.')
        out.pop_back();
    return out;
}

inline std::string text(const json::value& v) {
    if (v.is_string())
        return std::string(v.as_string());
    if (v.is_double())
        return seconds_text(v.as_double());
    return json::serialize(v);
}

// What a JSON record's STRUCTURED-DATA must be: the same keys and values,
// "type" being the MSGID, null left out, connections[i].K as K_i.
inline std::map<std::string, std::string> sd_of_json(const json::object& o) {
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
inline json::object json_of(const std::function<void(Sink&)>& feed) {
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

// Complete RFC 6587 frames at the start of buf, removed from it (in one
// go: a receiver may hold megabytes).
inline std::vector<std::string> take_frames(std::string& buf) {
    std::vector<std::string> out;
    std::size_t at = 0;
    for (;;) {
        std::size_t sp = buf.find(' ', at);
        if (sp == std::string::npos)
            break;
        std::size_t len = std::stoul(buf.substr(at, sp - at));
        if (buf.size() < sp + 1 + len)
            break;
        out.push_back(buf.substr(sp + 1, len));
        at = sp + 1 + len;
    }
    buf.erase(0, at);
    return out;
}

// How often needle occurs in text.
inline std::size_t count_of(std::string_view text, std::string_view needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

// What this process writes to stderr (the sinks' log lines) while it
// lives; passed on to the real stderr at the end, so nothing is hidden.
class StderrCapture {
public:
    StderrCapture() : file_(std::tmpfile()), saved_(::dup(2)) {
        if (!file_ || saved_ < 0)
            throw std::runtime_error("cannot capture stderr");
        std::fflush(stderr);
        ::dup2(::fileno(file_), 2);
    }
    ~StderrCapture() {
        std::string t = text();
        ::dup2(saved_, 2);
        ::close(saved_);
        std::fclose(file_);
        (void)!::write(2, t.data(), t.size());
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    std::string text() const {
        std::fflush(stderr);
        std::string out;
        char chunk[4096];
        ssize_t n;
        while ((n = ::pread(::fileno(file_), chunk, sizeof chunk, static_cast<off_t>(out.size()))) > 0)
            out.append(chunk, static_cast<std::size_t>(n));
        return out;
    }
    std::size_t count(std::string_view needle) const { return count_of(text(), needle); }

private:
    std::FILE* file_;
    int saved_;
};

// Runs io in short slices until pred holds or timeout passes.
inline bool pump(asio::io_context& io, const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
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
// Its sockets live in the network namespace of the thread that makes it.
struct TcpReceiver {
    asio::io_context& io;
    tcp::acceptor acceptor{io};
    tcp::socket peer{io};
    std::string buf;
    std::vector<std::string> messages;

    explicit TcpReceiver(asio::io_context& io, const std::string& address = "127.0.0.1", unsigned short port = 0) :
        io(io) {
        acceptor.open(tcp::v4());
        acceptor.bind({asio::ip::make_address(address), port});
        acceptor.non_blocking(true);
    }
    unsigned short port() const { return acceptor.local_endpoint().port(); }
    std::string url() const {
        return "tcp://" + acceptor.local_endpoint().address().to_string() + ":" + std::to_string(port());
    }
    void listen() { acceptor.listen(); }

    bool accept(std::chrono::milliseconds timeout) {
        boost::system::error_code ec;
        bool ok = pump(
            io,
            [&] {
                acceptor.accept(peer, ec);
                return !ec;
            },
            timeout);
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
        return pump(
            io,
            [&] {
                read_now();
                return messages.size() >= count;
            },
            timeout);
    }
};

// README: the TCP connection is "re-made with back-off (0.5 s doubling to
// 30 s)": retry n (from 1) waits this, jittered down to half of it.
inline std::chrono::milliseconds nominal_backoff(int n) {
    return std::min<std::chrono::milliseconds>(500ms * (int64_t{1} << std::min(n - 1, 16)), 30s);
}

// Checks attempt times (the first attempt, then one per retry) against it.
inline void check_backoff(const std::vector<Steady::time_point>& at) {
    for (std::size_t n = 1; n < at.size(); ++n) {
        auto want = nominal_backoff(static_cast<int>(n));
        auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(at[n] - at[n - 1]);
        BOOST_TEST_CONTEXT("retry " << n << " after " << gap.count() << " ms, nominal " << want.count() << " ms") {
            BOOST_TEST(gap >= want / 2);
            BOOST_TEST(gap <= want + 100ms); // scheduling, and noticing the close
        }
    }
}

// N of the TCP sink's "N syslog messages not delivered" line at exit.
inline std::optional<uint64_t> undelivered(const std::string& err) {
    static const std::regex re(R"((\d+) syslog messages not delivered)");
    std::smatch m;
    if (!std::regex_search(err, m, re))
        return std::nullopt;
    return std::stoull(m[1]);
}

inline uint64_t events_of(const std::string& msg) { return std::stoull(must_parse(msg).sd().at("events")); }

} // namespace pdtt::test
