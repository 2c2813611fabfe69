// Syslog: RFC 5424 messages over UDP (RFC 5426) or TCP (RFC 6587 octet
// counting). Records are only formatted and queued here; the network I/O
// runs as async operations on the agent's loop, so nothing ever waits for
// the receiver except flush() at exit, which is bounded.
#include "errors.hpp"
#include "factory.hpp"
#include "log.hpp"
#include "syslog_format.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <poll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include <algorithm>
#include <array>
#include <deque>
#include <random>

namespace pdtt {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {

constexpr auto kMinBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr auto kFlushTimeout = std::chrono::seconds(1);   // SPEC: exit within two seconds
constexpr std::size_t kMaxBuffersPerWrite = 64;

struct Target {
    std::string url, host, port;
    bool tcp = false;
};

// Config has checked the form: udp|tcp://HOST:PORT, an IPv6 HOST in brackets.
Target parse_url(const std::string& url) {
    Target t{url, {}, {}, url.starts_with("tcp://")};
    std::string rest = url.substr(6);
    auto colon = rest.rfind(':');
    t.host = rest.substr(0, colon);
    t.port = rest.substr(colon + 1);
    if (t.host.starts_with('[') && t.host.ends_with(']'))
        t.host = t.host.substr(1, t.host.size() - 2);
    return t;
}

// The start-up check: a host that does not resolve now is a usage error.
template <class Protocol>
typename Protocol::resolver::results_type resolve_now(asio::io_context& io, const Target& t) {
    typename Protocol::resolver resolver(io);
    error_code ec;
    auto results = resolver.resolve(t.host, t.port, asio::ip::resolver_base::numeric_service, ec);
    if (ec)
        throw Error(kExitUsage, "syslog host '" + t.host + "' does not resolve: " + ec.message());
    return results;
}

// Formats the records; a transport below sends the messages.
class SyslogSink : public Sink {
public:
    SyslogSink(const SyslogOptions& o, std::size_t max_message)
        : header_(rfc5424::local_header(o.facility, o.app_name)), max_message_(max_message) {}

    void flow_close(const FlowRecord& r) override { send(rfc5424::format_flow_close(header_, r)); }
    void flow_owner(const FlowRecord& r) override { send(rfc5424::format_flow_owner(header_, r)); }
    void user_report(const UserReport& r) override {
        for (auto& m : rfc5424::format_user_report(header_, r, max_message_))
            send(std::move(m));
    }
    void job_report(const JobReport& r) override { send(rfc5424::format_job_report(header_, r)); }
    void agent_stats(const AgentStats& s) override { send(rfc5424::format_agent_stats(header_, s)); }

protected:
    virtual void send(std::string msg) = 0;

private:
    rfc5424::Header header_;
    std::size_t max_message_;
};

// One message per datagram; a datagram the socket refuses is lost and counted.
class UdpSyslogSink : public SyslogSink {
public:
    UdpSyslogSink(const SyslogOptions& o, const Target& t, asio::io_context& io)
        : SyslogSink(o, rfc5424::kUdpMaxMessage), target_(t), resolver_(io), socket_(io) {
        use(resolve_now<udp>(io, t).begin()->endpoint());
    }

    uint64_t errors() const override { return errors_; }

protected:
    void send(std::string msg) override {
        error_code ec;
        socket_.send_to(asio::buffer(msg), dest_, 0, ec);
        if (ec) {
            ++errors_;
            re_resolve();
        }
    }

private:
    void use(const udp::endpoint& ep) {
        if (!socket_.is_open() || ep.protocol() != dest_.protocol()) {
            error_code ignored;
            socket_.close(ignored);
            socket_.open(ep.protocol());
            socket_.non_blocking(true);
        }
        dest_ = ep;
    }

    // A send error may mean the host has moved: look it up again, in the background.
    void re_resolve() {
        if (resolving_)
            return;
        resolving_ = true;
        resolver_.async_resolve(target_.host, target_.port, asio::ip::resolver_base::numeric_service,
                                [this](const error_code& ec, const udp::resolver::results_type& results) {
                                    if (ec == asio::error::operation_aborted)
                                        return;
                                    resolving_ = false;
                                    if (!ec)
                                        use(results.begin()->endpoint());
                                });
    }

    Target target_;
    udp::resolver resolver_;
    udp::socket socket_;
    udp::endpoint dest_;
    bool resolving_ = false;
    uint64_t errors_ = 0;
};

// A bounded queue of framed messages drained into one connection, which is
// re-resolved and re-made with jittered exponential back-off when it fails.
// Overflow drops the oldest messages; they are this sink's errors().
class TcpSyslogSink : public SyslogSink {
public:
    TcpSyslogSink(const SyslogOptions& o, const Target& t, asio::io_context& io)
        : SyslogSink(o, rfc5424::kTcpMaxMessage), target_(t), queue_limit_(o.queue_bytes), resolver_(io),
          socket_(io), timer_(io), rng_(std::random_device{}()) {
        resolve_now<tcp>(io, t);
        connect();
    }

    uint64_t errors() const override { return dropped_; }

    // Bounded best effort at exit: blocking writes for up to kFlushTimeout.
    void flush() override {
        auto deadline = std::chrono::steady_clock::now() + kFlushTimeout;
        while (connected_ && !queue_.empty() && write_ready()) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (queue_.empty() || left.count() <= 0)
                break;
            pollfd p{socket_.native_handle(), POLLOUT, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        }
        if (!queue_.empty())
            log::warn(target_.url + ": " + std::to_string(queue_.size()) + " syslog messages not delivered");
    }

protected:
    void send(std::string msg) override {
        queue_.push_back(rfc5424::octet_frame(msg));
        queued_ += queue_.back().size();
        // A message partly written stays: dropping it would break the framing.
        while (queued_ > queue_limit_) {
            auto victim = queue_.begin() + (sent_ > 0 ? 1 : 0);
            if (victim == queue_.end())
                break;
            queued_ -= victim->size();
            queue_.erase(victim);
            ++dropped_;
        }
        write_soon();
    }

private:
    void connect() {
        resolver_.async_resolve(
            target_.host, target_.port, asio::ip::resolver_base::numeric_service,
            [this](const error_code& ec, const tcp::resolver::results_type& results) {
                if (ec == asio::error::operation_aborted)
                    return;
                if (ec)
                    return retry("host does not resolve: " + ec.message());
                asio::async_connect(socket_, results, [this](const error_code& ec, const tcp::endpoint&) {
                    if (ec == asio::error::operation_aborted)
                        return;
                    if (ec)
                        return retry("cannot connect: " + ec.message());
                    on_connected();
                });
            });
    }

    void on_connected() {
        ++generation_;
        connected_ = true;
        connected_at_ = std::chrono::steady_clock::now();
        socket_.non_blocking(true);
        if (complained_)
            log::info(target_.url + ": connected again");
        complained_ = false;
        watch_peer();
        write_soon();
    }

    // Receivers send nothing: a completed read means they closed or failed,
    // which is noticed here before more is written into a dead connection.
    void watch_peer() {
        socket_.async_read_some(asio::buffer(peek_), [this, g = generation_](const error_code& ec, std::size_t) {
            if (ec == asio::error::operation_aborted || g != generation_)
                return;
            if (ec)
                return lost(ec == asio::error::eof ? "closed by the receiver" : ec.message());
            watch_peer();
        });
    }

    void write_soon() {
        if (!connected_ || writing_ || queue_.empty())
            return;
        writing_ = true;
        socket_.async_wait(tcp::socket::wait_write, [this, g = generation_](const error_code& ec) {
            if (ec == asio::error::operation_aborted || g != generation_)
                return;
            writing_ = false;
            if (ec)
                return lost(ec.message());
            if (write_ready())
                write_soon();
        });
    }

    // Writes what the socket takes now, several messages per call; false
    // when the connection failed. The socket is non-blocking and the
    // written count exact, so flush() can continue where this stopped.
    bool write_ready() {
        while (!queue_.empty()) {
            std::vector<asio::const_buffer> bufs;
            std::size_t skip = sent_;
            for (auto it = queue_.begin(); it != queue_.end() && bufs.size() < kMaxBuffersPerWrite; ++it) {
                bufs.push_back(asio::buffer(*it) + skip);
                skip = 0;
            }
            error_code ec;
            std::size_t n = socket_.write_some(bufs, ec);
            if (ec == asio::error::would_block)
                return true;
            if (ec) {
                lost(ec.message());
                return false;
            }
            while (n > 0) {
                std::size_t left = queue_.front().size() - sent_;
                std::size_t done = std::min(n, left);
                sent_ += done;
                n -= done;
                if (sent_ == queue_.front().size()) {
                    queued_ -= queue_.front().size();
                    inflight_bytes_ += queue_.front().size();
                    inflight_.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                    sent_ = 0;
                }
            }
            trim_inflight();
        }
        return true;
    }

    // Keeps only the written messages the receiver has not acknowledged yet.
    void trim_inflight() {
        int outq = 0;
        if (::ioctl(socket_.native_handle(), SIOCOUTQ, &outq) != 0)
            outq = 0;
        std::size_t unacked = static_cast<std::size_t>(outq) > sent_ ? static_cast<std::size_t>(outq) - sent_ : 0;
        while (!inflight_.empty() && inflight_bytes_ - inflight_.front().size() >= unacked) {
            inflight_bytes_ -= inflight_.front().size();
            inflight_.pop_front();
        }
    }

    void lost(const std::string& why) {
        trim_inflight();
        for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
            queued_ += it->size();
            queue_.push_front(std::move(*it));
        }
        inflight_.clear();
        inflight_bytes_ = 0;
        if (std::chrono::steady_clock::now() - connected_at_ >= backoff_)
            backoff_ = kMinBackoff;
        ++generation_;
        connected_ = false;
        writing_ = false;
        sent_ = 0;   // the receiver dropped the partial frame with the connection
        error_code ignored;
        socket_.close(ignored);
        retry("connection lost: " + why);
    }

    void retry(const std::string& why) {
        if (!complained_)
            log::warn(target_.url + ": " + why + "; retrying, " + std::to_string(queue_.size()) +
                      " messages queued");
        complained_ = true;
        std::uniform_real_distribution<double> jitter(0.5, 1.0);
        timer_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(backoff_ * jitter(rng_)));
        backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
        timer_.async_wait([this](const error_code& ec) {
            if (ec != asio::error::operation_aborted)
                connect();
        });
    }

    Target target_;
    std::size_t queue_limit_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    std::minstd_rand rng_;
    std::deque<std::string> queue_;
    std::deque<std::string> inflight_;
    std::size_t inflight_bytes_ = 0;
    std::chrono::steady_clock::time_point connected_at_;
    std::size_t queued_ = 0;       // octets in queue_
    std::size_t sent_ = 0;         // octets of queue_.front() already written
    std::array<char, 256> peek_;
    std::chrono::milliseconds backoff_ = kMinBackoff;
    unsigned generation_ = 0;      // of the connection; stale handlers see another
    bool connected_ = false;
    bool writing_ = false;         // a wait for writability is pending
    bool complained_ = false;      // a failure was logged, the recovery will be
    uint64_t dropped_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_syslog_sink(const SyslogOptions& o, asio::io_context& io) {
    Target t = parse_url(o.url);
    if (t.tcp)
        return std::make_unique<TcpSyslogSink>(o, t, io);
    return std::make_unique<UdpSyslogSink>(o, t, io);
}

} // namespace pdtt
