#include "syslog_format.hpp"

#include "format.hpp"
#include "record_fields.hpp"

#include <unistd.h>

#include <climits>
#include <concepts>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace pdtt::rfc5424 {

namespace {

// A header field: 1 to max printable US-ASCII characters, or NILVALUE.
std::string header_token(std::string_view s, std::size_t max) {
    std::string out(s.substr(0, max));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126)
            c = '_';
    return out.empty() ? "-" : out;
}

std::string human_msg(std::string_view s) { return escape_control(valid_utf8(s)); }

// Whole seconds integral, else milliseconds as a plain decimal.
std::string seconds(double s) {
    char buf[32];
    return std::string(fields::seconds_text(s, buf));
}

std::string endpoint(const std::string& addr, uint16_t port) {
    bool v6 = addr.find(':') != std::string::npos;
    return (v6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

std::string num(uint64_t v) { return std::to_string(v); }

// The field lists' writer (record_fields.hpp): every field a PARAM named
// like the JSON key, values as the JSON records have them, unescaped.
// "type" is the MSGID and a null (unknown) is left out. Rows of a list go
// in as name_I (class_I, class_tx_bytes_I: a class name does not fit in a
// PARAM-NAME of 32 octets beside a field name).
class Params {
public:
    explicit Params(std::vector<Param>& out, std::string prefix = {}, std::string suffix = {}) :
        out_(out), prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}

    void type(std::string_view) {}
    void time(std::string_view n, Timestamp ts) { add(n, rfc3339_utc(ts)); }
    void text(std::string_view n, std::string_view s) { add(n, std::string(s)); }
    void text_or_null(std::string_view n, const std::optional<std::string_view>& s) {
        if (s)
            text(n, *s);
    }
    template <std::integral T> void number(std::string_view n, T v) { add(n, std::to_string(v)); }
    template <std::integral T> void number(std::string_view n, const std::optional<T>& v) {
        if (v)
            number(n, *v);
    }
    void seconds(std::string_view n, double s) { add(n, rfc5424::seconds(s)); }
    void classes(std::string_view, const std::vector<ClassTotals>& classes) {
        for (std::size_t i = 0; i < classes.size(); ++i) {
            const std::string n = "_" + num(i);
            add("class" + n, std::string(classes[i].name));
            Params row(out_, "class_", n);
            fields::class_row(row, classes[i]);
        }
    }
    // format_user_report spreads them over its parts.
    void connections(std::string_view, const std::vector<PairRow>&) {}

private:
    void add(std::string_view n, std::string v) { out_.emplace_back(prefix_ + std::string(n) + suffix_, std::move(v)); }

    std::vector<Param>& out_;
    std::string prefix_, suffix_;
};

template <typename Record, typename List> std::vector<Param> params(const Record& r, List list) {
    std::vector<Param> out;
    Params p(out);
    list(p, r);
    return out;
}

// Octets one parameter adds to a message: ` name="value"`.
std::size_t param_size(const Param& p) { return p.first.size() + escape_param_value(p.second).size() + 4; }

} // namespace

std::string escape_control(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 32 || u == 127) {
            char esc[5];
            std::snprintf(esc, sizeof esc, "#%03o", u);
            out += esc;
        } else {
            out += c;
        }
    }
    return out;
}

Header local_header(int facility, const std::string& app_name) {
    char host[HOST_NAME_MAX + 1] = {};
    if (::gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    return {facility, host, app_name, std::to_string(::getpid())};
}

std::string timestamp(Timestamp ts) {
    auto secs = std::chrono::floor<std::chrono::seconds>(ts);
    auto usec = static_cast<long>((ts - secs).count());
    std::time_t t = static_cast<std::time_t>(secs.time_since_epoch().count());
    std::tm tm{};
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld%c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec, off < 0 ? '-' : '+', std::labs(off) / 60,
                  std::labs(off) % 60);
    return buf;
}

std::string escape_param_value(std::string_view v) {
    std::string in = escape_control(valid_utf8(v));
    std::string out;
    out.reserve(in.size());
    for (char c : in) {
        if (c == '"' || c == '\\' || c == ']')
            out += '\\';
        out += c;
    }
    return out;
}

std::string format_message(const Header& h, Timestamp ts, std::string_view msgid, const std::vector<Param>& params,
                           std::string_view msg) {
    std::string out = "<" + std::to_string(h.facility * 8 + kSeverityInfo) + ">1 " + timestamp(ts) + " " +
                      header_token(h.hostname, 255) + " " + header_token(h.app_name, 48) + " " +
                      header_token(h.procid, 128) + " " + header_token(msgid, 32) + " [" + std::string(kSdId);
    for (const auto& [name, value] : params)
        out += " " + name + "=\"" + escape_param_value(value) + "\"";
    out += "]";
    if (!msg.empty())
        out += " " + human_msg(msg);
    return out;
}

std::string octet_frame(std::string_view msg) { return std::to_string(msg.size()) + " " + std::string(msg); }

std::string format_flow_close(const Header& h, const FlowRecord& r) {
    const FlowId& id = r.id;
    std::vector<Param> p = params(r, [](Params& w, const FlowRecord& r) { fields::flow(w, r); });
    std::string msg = std::string(id.user) + ": " + std::string(id.proto) + " " + endpoint(id.local, id.lport) +
                      " -> " + endpoint(id.remote, id.rport) + " closed after " + seconds(r.duration_ms / 1000.0) +
                      " s, tx " + human_bytes(r.cnt.tx_bytes) + ", rx " + human_bytes(r.cnt.rx_bytes);
    return format_message(h, r.ts, "flow_close", p, msg);
}

std::string format_flow_owner(const Header& h, const FlowRecord& r) {
    const FlowId& id = r.id;
    std::vector<Param> p = params(r, [](Params& w, const FlowRecord& r) { fields::flow(w, r); });
    std::string msg = std::string(id.proto) + " " + endpoint(id.local, id.lport) + " -> " +
                      endpoint(id.remote, id.rport) + " passed from " + std::string(r.from_user) + " to " +
                      std::string(id.user) + " after tx " + human_bytes(r.cnt.tx_bytes) + ", rx " +
                      human_bytes(r.cnt.rx_bytes);
    return format_message(h, r.ts, "flow_owner", p, msg);
}

std::string format_job_report(const Header& h, const JobReport& r) {
    std::vector<Param> p = params(r, [](Params& w, const JobReport& r) { fields::job_report(w, r); });
    std::string msg = "job " + r.job + (r.step ? " step " + *r.step : std::string()) + ", " + r.user + ": tx " +
                      human_bytes(r.tx_bytes) + ", rx " + human_bytes(r.rx_bytes) + " in " + seconds(r.interval_s) +
                      " s";
    return format_message(h, r.ts, "job_report", p, msg);
}

std::string format_agent_stats(const Header& h, const AgentStats& s) {
    std::vector<Param> p = params(s, [](Params& w, const AgentStats& s) { fields::agent_stats(w, s); });
    std::string msg = num(s.events) + " events, " + num(s.ring_drops) + " ring drops, " + num(s.flows_active) +
                      " flows active, " + num(s.sink_errors) + " sink errors";
    return format_message(h, s.ts, "agent_stats", p, msg);
}

std::vector<std::string> format_user_report(const Header& h, const UserReport& r, std::size_t max_size) {
    const std::vector<Param> head = params(r, [](Params& w, const UserReport& r) { fields::user_head(w, r); });
    const std::vector<Param> totals = params(r, [](Params& w, const UserReport& r) { fields::user_totals(w, r); });
    const std::string msg = r.user + ": tx " + human_bytes(r.tx_bytes) + ", rx " + human_bytes(r.rx_bytes) + ", " +
                            num(r.flows) + " flows in " + seconds(r.interval_s) + " s";

    // Room for part="N" parts="N" and " (part N/N)" at their widest.
    const std::size_t digits = num(r.connections.size() + 1).size();
    const std::size_t part_room = 4 * digits + std::string_view(R"( part="" parts="" (part /))").size();
    auto base_size = [&](bool first) {
        std::vector<Param> p = head;
        if (first)
            p.insert(p.end(), totals.begin(), totals.end());
        return format_message(h, r.ts, "user_report", p, msg).size() + part_room;
    };

    // Greedy: connections fill a part until the next would not fit.
    std::vector<std::vector<Param>> parts(1);
    std::size_t size = base_size(true);
    for (std::size_t i = 0; i < r.connections.size(); ++i) {
        const PairRow& c = r.connections[i];
        std::vector<Param> conn;
        Params row(conn, "", "_" + num(i));
        fields::pair_row(row, c);
        std::size_t add = 0;
        for (const auto& p : conn)
            add += param_size(p);
        // A part with nothing but its head is kept as it is; the first always is (totals).
        if (size + add > max_size && (parts.size() == 1 || !parts.back().empty())) {
            parts.emplace_back();
            size = base_size(false);
        }
        parts.back().insert(parts.back().end(), conn.begin(), conn.end());
        size += add;
    }

    std::vector<std::string> out;
    const std::size_t n = parts.size();
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<Param> p = head;
        std::string m = msg;
        if (n > 1) {
            p.insert(p.end(), {{"part", num(i + 1)}, {"parts", num(n)}});
            m += " (part " + num(i + 1) + "/" + num(n) + ")";
        }
        if (i == 0)
            p.insert(p.end(), totals.begin(), totals.end());
        p.insert(p.end(), parts[i].begin(), parts[i].end());
        out.push_back(format_message(h, r.ts, "user_report", p, m));
    }
    return out;
}

} // namespace pdtt::rfc5424
