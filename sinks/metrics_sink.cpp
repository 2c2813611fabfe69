// Prometheus metrics. The byte counters are built from the flow records,
// per (user, uid, iface, class) and per (job, user, iface), fresh to the
// last tick; what the kernel counts per user but not per flow (unattributed
// packets, flows refused a slot) arrives only in user_report, as the part
// of a user's report the flow records did not carry, and goes to iface "*".
// So a user's series add up to exactly what the user's reports (and log
// file) say, and a job's to what its job_reports say.
//
// The HTTP side is Boost.Beast on the agent's loop: every operation is
// asynchronous and bounded in size and time, so a slow or hostile client
// never holds the ring consumer.
#include "metrics_sink.hpp"

#include "errors.hpp"
#include "log.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace pdtt {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

std::string metrics_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {

// Bytes counted per user but not per interface (or class).
constexpr const char* kAnyIface = "*";

// A job's series stay this many intervals after its last flow closed: long
// enough for a scrape or two to see the final value, short enough that a
// node running thousands of short jobs a day does not serve them all.
constexpr uint64_t kJobSeriesIntervals = 10;

// The counters and the text they are served as. Shared by the sink and
// the connections, which may outlive it by a handler or two at exit.
class Metrics {
public:
    explicit Metrics(std::string version) : version_(std::move(version)) {}

    void flow_open(const FlowRecord& r) { moved(r, r.cnt); }
    void flow_delta(const FlowRecord& r) { moved(r, r.cnt); }
    // owner and close carry everything since the owner took over; the
    // deltas have brought part of it already.
    void flow_owner(const FlowRecord& r) {
        Flow& f = flows_[r.id.flow_id];
        add(r.from_user, r.from_uid, r.from_job, r, since(r.cnt, f.since_owner));
        f.since_owner = {};
        f.touched = gen_;
        set_job(f, r.id.job);
    }
    void flow_close(const FlowRecord& r) {
        auto it = flows_.find(r.id.flow_id);
        add(r.id.user, r.id.uid, r.id.job, r, it == flows_.end() ? r.cnt : since(r.cnt, it->second.since_owner));
        if (it != flows_.end())
            erase(it);
    }
    // What the flow records did not bring (unattributed packets, flows
    // refused a slot) goes to iface "*", and to class "*" as these bytes
    // were counted in no class.
    void user_report(const UserReport& r) {
        Counters reported{r.tx_bytes, r.rx_bytes, r.tx_packets, r.rx_packets};
        auto& by_class = interval_[r.uid];
        Counters flows;
        for (const auto& [cls, c] : by_class)
            flows += c;
        Counters rest = since(reported, flows);
        if (r.classes.empty()) {
            if (!rest.empty())
                series_[{r.user, r.uid, kAnyIface, ""}] += rest;
        } else {
            uint64_t tx = 0, rx = 0;
            for (const ClassTotals& c : r.classes) {
                auto it = by_class.find(std::string(c.name));
                Counters in_class{c.tx_bytes, c.rx_bytes, 0, 0};
                Counters missed =
                    it == by_class.end() ? in_class : since(in_class, {it->second.tx_bytes, it->second.rx_bytes, 0, 0});
                if (!missed.empty())
                    series_[{r.user, r.uid, kAnyIface, std::string(c.name)}] += missed;
                tx += missed.tx_bytes;
                rx += missed.rx_bytes;
            }
            Counters unclassed = since(rest, {tx, rx, 0, 0});
            if (!unclassed.empty())
                series_[{r.user, r.uid, kAnyIface, kAnyIface}] += unclassed;
        }
        // The flow records' part is claimed: a report held for its user's
        // name comes after its interval's end, its flows' bytes still here
        // beside the next interval's. A class's bytes first, then the rest.
        auto smaller = [](const Counters& a, const Counters& b) { return since(a, since(a, b)); }; // per field
        Counters claim = smaller(reported, flows);
        auto take = [&](Counters& from, const Counters& most) {
            Counters t = smaller(from, most);
            from = since(from, t);
            claim = since(claim, t);
        };
        for (const ClassTotals& c : r.classes)
            if (auto it = by_class.find(std::string(c.name)); it != by_class.end())
                take(it->second, smaller(Counters{c.tx_bytes, c.rx_bytes, 0, 0}, claim));
        for (auto& [cls, c] : by_class)
            take(c, claim);
    }
    void agent_stats(const AgentStats& s) {
        stats_ = s;
        forget_lost(s.flows_active);
    }
    void interval_end() {
        // What no report claimed yet is a held report's: it stays.
        for (auto it = interval_.begin(); it != interval_.end();) {
            std::erase_if(it->second, [](const auto& kv) { return kv.second.empty(); });
            it = it->second.empty() ? interval_.erase(it) : std::next(it);
        }
        gen_++;
        expire_jobs();
    }

    std::string exposition() const;

private:
    struct Flow {
        Counters since_owner; // what this sink added for the current owner
        uint64_t touched = 0; // interval of its last record
        std::string job;      // its owner's, "" for none
    };
    struct Job {
        uint64_t flows = 0;    // flows of the job this sink holds
        uint64_t last_gen = 0; // interval it last had a flow or bytes in
    };
    using Key = std::tuple<std::string, int64_t, std::string, std::string>; // user, uid, iface, class
    using JobKey = std::tuple<std::string, std::string, std::string>;       // job, user, iface

    void moved(const FlowRecord& r, const Counters& c) {
        if (c.empty())
            return;
        add(r.id.user, r.id.uid, r.id.job, r, c);
        Flow& f = flows_[r.id.flow_id];
        f.since_owner += c;
        f.touched = gen_;
        set_job(f, r.id.job);
    }
    void add(std::string_view user, int64_t uid, std::optional<std::string_view> job, const FlowRecord& r,
             const Counters& c) {
        if (c.empty())
            return;
        series_[{std::string(user), uid, std::string(r.id.iface), std::string(r.cls)}] += c;
        interval_[uid][std::string(r.cls)] += c;
        if (!job)
            return;
        std::string j(*job);
        job_series_[{j, std::string(user), std::string(r.id.iface)}] += c;
        jobs_[j].last_gen = gen_;
    }
    // Which job holds a flow, so that a job with open flows never expires.
    void set_job(Flow& f, std::optional<std::string_view> job) {
        std::string_view j = job.value_or("");
        if (f.job == j)
            return;
        if (!f.job.empty())
            jobs_[f.job].flows--;
        f.job = j;
        if (!f.job.empty()) {
            Job& n = jobs_[f.job];
            n.flows++;
            n.last_gen = gen_;
        }
    }
    void erase(std::unordered_map<uint64_t, Flow>::iterator it) {
        if (!it->second.job.empty()) {
            Job& j = jobs_[it->second.job];
            j.flows--;
            j.last_gen = gen_;
        }
        flows_.erase(it);
    }
    void expire_jobs() {
        for (auto it = jobs_.begin(); it != jobs_.end();) {
            if (it->second.flows > 0 || gen_ - it->second.last_gen <= kJobSeriesIntervals) {
                ++it;
                continue;
            }
            auto from = job_series_.lower_bound({it->first, "", ""});
            while (from != job_series_.end() && std::get<0>(from->first) == it->first)
                from = job_series_.erase(from);
            it = jobs_.erase(it);
        }
    }
    // The agent forgets flows whose close record was lost, without a record:
    // more flows here than it tracks are such leftovers, the quietest first.
    void forget_lost(uint64_t active) {
        if (flows_.size() <= active)
            return;
        std::vector<std::pair<uint64_t, uint64_t>> by_age; // touched, flow id
        by_age.reserve(flows_.size());
        for (const auto& [id, f] : flows_)
            by_age.emplace_back(f.touched, id);
        auto cut = by_age.begin() + static_cast<std::ptrdiff_t>(flows_.size() - active);
        std::nth_element(by_age.begin(), cut, by_age.end());
        for (auto it = by_age.begin(); it != cut; ++it)
            erase(flows_.find(it->second));
    }

    std::string version_;
    std::map<Key, Counters> series_;
    std::map<JobKey, Counters> job_series_;
    std::unordered_map<std::string, Job> jobs_;
    // Flow ids are unique while the agent runs: they never come back.
    std::unordered_map<uint64_t, Flow> flows_;
    // Per uid and class, from flow records since the last report.
    std::unordered_map<int64_t, std::map<std::string, Counters>> interval_;
    AgentStats stats_;
    uint64_t gen_ = 0;
};

std::string Metrics::exposition() const {
    std::string out;
    out.reserve(1024 + (series_.size() * 4 + job_series_.size() * 2) * 112);
    auto head = [&](const char* name, const char* type, const char* help) {
        out += "# HELP ";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE ";
        out += name;
        out += ' ';
        out += type;
        out += '\n';
    };
    auto value = [&](uint64_t v) {
        out += ' ';
        out += std::to_string(v);
        out += '\n';
    };
    auto user_series = [&](const char* name, const char* help, uint64_t Counters::*field) {
        head(name, "counter", help);
        for (const auto& [key, c] : series_) {
            const auto& [user, uid, iface, cls] = key;
            out += name;
            out += "{user=\"" + metrics_label_value(user) + "\",uid=\"" + std::to_string(uid) + "\",iface=\"" +
                   metrics_label_value(iface) + '"';
            if (!cls.empty())
                out += ",class=\"" + metrics_label_value(cls) + '"';
            out += '}';
            value(c.*field);
        }
    };
    user_series("pdtt_transmit_bytes_total", "Payload bytes sent, per user and interface, since the agent started.",
                &Counters::tx_bytes);
    user_series("pdtt_receive_bytes_total", "Payload bytes received, per user and interface, since the agent started.",
                &Counters::rx_bytes);
    user_series("pdtt_transmit_packets_total", "IP packets sent, per user and interface, since the agent started.",
                &Counters::tx_packets);
    user_series("pdtt_receive_packets_total", "IP packets received, per user and interface, since the agent started.",
                &Counters::rx_packets);
    auto job_series = [&](const char* name, const char* help, uint64_t Counters::*field) {
        head(name, "counter", help);
        for (const auto& [key, c] : job_series_) {
            const auto& [job, user, iface] = key;
            out += name;
            out += "{job=\"" + metrics_label_value(job) + "\",user=\"" + metrics_label_value(user) + "\",iface=\"" +
                   metrics_label_value(iface) + "\"}";
            value(c.*field);
        }
    };
    job_series("pdtt_job_transmit_bytes_total",
               "Payload bytes sent by a Slurm job's processes, per user and interface.", &Counters::tx_bytes);
    job_series("pdtt_job_receive_bytes_total",
               "Payload bytes received by a Slurm job's processes, per user and interface.", &Counters::rx_bytes);

    const AgentStats& s = stats_;
    uint64_t udp = std::min(s.flows_udp, s.flows_active);
    head("pdtt_flows", "gauge", "Flows the agent tracks now, by protocol.");
    out += "pdtt_flows{proto=\"tcp\"}";
    value(s.flows_active - udp);
    out += "pdtt_flows{proto=\"udp\"}";
    value(udp);
    head("pdtt_flow_table_entries", "gauge", "Kernel flow table entries in use.");
    out += "pdtt_flow_table_entries";
    value(s.flows_active);
    head("pdtt_flow_table_capacity", "gauge", "Kernel flow table capacity.");
    out += "pdtt_flow_table_capacity";
    value(s.flow_table_size);
    head("pdtt_events_total", "counter", "Ring buffer records consumed.");
    out += "pdtt_events_total";
    value(s.events);
    head("pdtt_ring_drops_total", "counter", "Records the kernel could not put in a full ring buffer.");
    out += "pdtt_ring_drops_total";
    value(s.ring_drops);
    head("pdtt_flow_table_full_total", "counter", "Flows the kernel could not enter in its full flow table.");
    out += "pdtt_flow_table_full_total";
    value(s.flow_table_full);
    head("pdtt_cgroups_unresolved_total", "counter",
         "Cgroup ids that named no cgroup any more when first looked up: their flows carry no job.");
    out += "pdtt_cgroups_unresolved_total";
    value(s.cgroups_unresolved);
    // The sink interface gives each sink's error count but not its name:
    // one sum until it does.
    head("pdtt_sink_errors_total", "counter", "Records a sink failed to write.");
    out += "pdtt_sink_errors_total{sink=\"all\"}";
    value(s.sink_errors);
    head("pdtt_build_info", "gauge", "The agent's version.");
    out += "pdtt_build_info{version=\"" + metrics_label_value(version_) + "\"}";
    value(1);
    return out;
}

// Constant time in the token's content: a wrong guess says nothing about
// how much of it was right.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

std::string read_token(const std::string& path) {
    const std::string where = "--metrics-token-file " + path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw Error(kExitUsage, where + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw Error(kExitUsage, where + ": not a regular file");
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error(kExitUsage, where + ": mode " + mode +
                                    " lets group or others read it; the token must be secret (chmod 600 " + path + ")");
    }
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in)
        throw Error(kExitUsage, where + ": cannot read it");
    std::string token = ss.str();
    token.erase(token.find_last_not_of(" \t\r\n") + 1);
    if (token.empty())
        throw Error(kExitUsage, where + ": the file is empty");
    if (token.find_first_of("\r\n") != std::string::npos)
        throw Error(kExitUsage, where + ": the token must be one line");
    return token;
}

// ADDR:PORT, an IPv6 address in brackets.
tcp::endpoint parse_listen(const std::string& listen) {
    const auto bad = [&](const std::string& why) {
        return Error(kExitUsage, "--metrics-listen " + listen + ": " + why + " (expected ADDR:PORT)");
    };
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos)
        throw bad("missing :PORT");
    std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec)
        throw bad("'" + host + "' is not an IP address");
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c) != 0; }) ||
        std::stoul(port) > 65535)
        throw bad("port must be a number from 0 to 65535");
    return {addr, static_cast<unsigned short>(std::stoul(port))};
}

struct Shared {
    Metrics metrics;
    std::string token;    // "" for none
    std::size_t open = 0; // connections now
    uint64_t dropped = 0; // over the bound, too large, too slow
    explicit Shared(std::string version) : metrics(std::move(version)) {}
};

// One request, one reply, then close: Prometheus opens a connection per
// scrape happily, and nothing idles here between scrapes.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(tcp::socket s, std::shared_ptr<Shared> shared) : stream_(std::move(s)), shared_(std::move(shared)) {
        shared_->open++;
    }
    ~Connection() { shared_->open--; }

    void start() {
        parser_.header_limit(static_cast<std::uint32_t>(kMetricsMaxRequest));
        parser_.body_limit(0);
        stream_.expires_after(std::chrono::seconds(kMetricsTimeoutSeconds));
        http::async_read(stream_, buffer_, parser_,
                         [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
    }

private:
    void on_read(const error_code& ec) {
        if (ec) { // too large, too slow, malformed, or gone: no answer
            if (ec != http::error::end_of_stream)
                shared_->dropped++;
            close();
            return;
        }
        const auto& req = parser_.get();
        res_.version(req.version());
        res_.keep_alive(false);
        res_.set(http::field::server, "pdtt");
        std::string_view target = req.target();
        target = target.substr(0, target.find('?'));
        if (!shared_->token.empty() && !authorized(req[http::field::authorization])) {
            res_.result(http::status::unauthorized);
            res_.set(http::field::www_authenticate, "Bearer");
            res_.set(http::field::content_type, "text/plain; charset=utf-8");
            res_.body() = "401 Unauthorized\n";
        } else if (req.method() != http::verb::get || target != "/metrics") {
            res_.result(http::status::not_found);
            res_.set(http::field::content_type, "text/plain; charset=utf-8");
            res_.body() = "404 Not Found: only GET /metrics\n";
        } else {
            res_.result(http::status::ok);
            res_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res_.body() = shared_->metrics.exposition();
        }
        res_.prepare_payload();
        stream_.expires_after(std::chrono::seconds(kMetricsTimeoutSeconds));
        http::async_write(stream_, res_,
                          [self = shared_from_this()](const error_code&, std::size_t) { self->close(); });
    }

    bool authorized(std::string_view header) const {
        constexpr std::string_view scheme = "Bearer ";
        if (header.size() < scheme.size() || !beast::iequals(header.substr(0, scheme.size()), scheme))
            return false;
        return same_secret(header.substr(scheme.size()), shared_->token);
    }

    void close() {
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_{kMetricsMaxRequest};
    http::request_parser<http::empty_body> parser_;
    http::response<http::string_body> res_;
    std::shared_ptr<Shared> shared_;
};

class PrometheusSink : public MetricsSink {
public:
    PrometheusSink(const MetricsOptions& o, asio::io_context& io) :
        shared_(std::make_shared<Shared>(o.version)), acceptor_(io), retry_(io) {
        if (!o.token_file.empty())
            shared_->token = read_token(o.token_file);
        if (o.listen.empty())
            return;
        tcp::endpoint ep = parse_listen(o.listen);
        error_code ec;
        acceptor_.open(ep.protocol(), ec);
        if (!ec)
            acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec)
            acceptor_.bind(ep, ec);
        if (!ec)
            acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw Error(kExitRuntime, "--metrics-listen " + o.listen + ": cannot listen: " + ec.message());
        accept();
    }
    ~PrometheusSink() override {
        error_code ignored;
        acceptor_.close(ignored);
        try {
            retry_.cancel(); // throws only if the timer's service fails: nothing to do about it here
        } catch (const boost::system::system_error&) {
        }
    }

    void flow_open(const FlowRecord& r) override { shared_->metrics.flow_open(r); }
    void flow_delta(const FlowRecord& r) override { shared_->metrics.flow_delta(r); }
    void flow_owner(const FlowRecord& r) override { shared_->metrics.flow_owner(r); }
    void flow_close(const FlowRecord& r) override { shared_->metrics.flow_close(r); }
    void user_report(const UserReport& r) override { shared_->metrics.user_report(r); }
    void agent_stats(const AgentStats& s) override { shared_->metrics.agent_stats(s); }
    void interval_end() override { shared_->metrics.interval_end(); }

    std::string exposition() const override { return shared_->metrics.exposition(); }
    tcp::endpoint endpoint() const override {
        error_code ec;
        return acceptor_.local_endpoint(ec);
    }

private:
    void accept() {
        acceptor_.async_accept([this, shared = shared_](const error_code& ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted)
                return; // the sink is gone: `this` with it
            if (ec) {   // out of file descriptors, say: try again later, not in a busy loop
                retry_.expires_after(std::chrono::milliseconds(100));
                retry_.async_wait([this](const error_code& e) {
                    if (!e)
                        accept();
                });
                return;
            }
            if (shared->open >= kMetricsMaxConnections) {
                shared->dropped++;
                error_code ignored;
                s.close(ignored);
            } else {
                std::make_shared<Connection>(std::move(s), shared)->start();
            }
            accept();
        });
    }

    std::shared_ptr<Shared> shared_;
    tcp::acceptor acceptor_;
    asio::steady_timer retry_;
};

} // namespace

std::unique_ptr<MetricsSink> make_metrics_sink(const MetricsOptions& opts, asio::io_context& io) {
    return std::make_unique<PrometheusSink>(opts, io);
}

} // namespace pdtt
