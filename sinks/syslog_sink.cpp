// Syslog: RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587 octet
// counting) or TLS (RFC 5425, octet counting too). Records are only
// formatted and queued here; the network I/O runs as async operations on
// the agent's loop, so nothing ever waits for the receiver, at exit either.
#include "errors.hpp"
#include "factory.hpp"
#include "log.hpp"
#include "syslog_format.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

namespace pdtt {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using boost::system::error_code;

namespace {

constexpr auto kMinBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr std::size_t kMaxBuffersPerWrite = 64;

enum class Scheme { udp, tcp, tls };

struct Target {
    std::string url, host, port;
    Scheme scheme = Scheme::udp;
};

// Config has checked the form: udp|tcp|tls://HOST:PORT, an IPv6 HOST in brackets.
Target parse_url(const std::string& url) {
    Target t{url,
             {},
             {},
             url.starts_with("tcp://")   ? Scheme::tcp
             : url.starts_with("tls://") ? Scheme::tls
                                         : Scheme::udp};
    std::string rest = url.substr(6);
    auto colon = rest.rfind(':');
    t.host = rest.substr(0, colon);
    t.port = rest.substr(colon + 1);
    if (t.host.starts_with('[') && t.host.ends_with(']'))
        t.host = t.host.substr(1, t.host.size() - 2);
    return t;
}

// The start-up check: a host that does not resolve is a usage error, but
// one whose lookup failed for now (EAI_AGAIN: DNS not up yet at boot) is
// said and left to the sink's retries. Empty then.
template <class Protocol> typename Protocol::resolver::results_type resolve_now(asio::io_context& io, const Target& t) {
    typename Protocol::resolver resolver(io);
    error_code ec;
    auto results = resolver.resolve(t.host, t.port, asio::ip::resolver_base::numeric_service, ec);
    if (ec == asio::error::host_not_found_try_again)
        log::warn("syslog host '" + t.host + "' does not resolve yet: " + ec.message() +
                  "; starting anyway, retrying in the background");
    else if (ec)
        throw Error(kExitUsage, "syslog host '" + t.host + "' does not resolve: " + ec.message());
    return results;
}

// Name lookups on a thread of their own, the answer picked up from the
// loop: asio's resolver joins its thread when the loop goes, so a DNS
// server that does not answer would hold up exit by its timeout. The
// thread shares only the slot, so it may outlive the sink and the loop.
template <class Protocol> class DetachedLookup {
public:
    using Results = typename Protocol::resolver::results_type;
    using Done = std::function<void(const error_code&, const Results&)>;

    explicit DetachedLookup(asio::io_context& io) : timer_(io) {}

    bool busy() const { return busy_; }

    void start(const std::string& host, const std::string& port, Done done) {
        busy_ = true;
        auto slot = std::make_shared<Slot>();
        try {
            std::thread([slot, host, port] {
                asio::io_context local;
                typename Protocol::resolver resolver(local);
                error_code ec;
                Results results = resolver.resolve(host, port, asio::ip::resolver_base::numeric_service, ec);
                std::lock_guard lk(slot->mu);
                slot->ec = ec;
                slot->results = std::move(results);
                slot->done = true;
            }).detach();
        } catch (const std::system_error&) {
            std::lock_guard lk(slot->mu);
            slot->ec = asio::error::no_memory;
            slot->done = true;
        }
        poll(std::move(slot), std::move(done));
    }

private:
    struct Slot {
        std::mutex mu;
        bool done = false;
        error_code ec;
        Results results;
    };

    void poll(std::shared_ptr<Slot> slot, Done done) {
        timer_.expires_after(std::chrono::milliseconds(20));
        timer_.async_wait([this, slot = std::move(slot), done = std::move(done)](const error_code& ec) mutable {
            if (ec == asio::error::operation_aborted)
                return; // the sink is going
            std::unique_lock lk(slot->mu);
            if (!slot->done) {
                lk.unlock();
                return poll(std::move(slot), std::move(done));
            }
            error_code result = slot->ec;
            Results results = slot->results;
            lk.unlock();
            busy_ = false;
            done(result, results);
        });
    }

    asio::steady_timer timer_;
    bool busy_ = false;
};

// Formats the records; a transport below sends the messages.
class SyslogSink : public Sink {
public:
    SyslogSink(const SyslogOptions& o, std::size_t max_message) :
        header_(rfc5424::local_header(o.facility, o.app_name)), max_message_(max_message) {}

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
    UdpSyslogSink(const SyslogOptions& o, const Target& t, asio::io_context& io) :
        SyslogSink(o, rfc5424::kUdpMaxMessage), target_(t), lookup_(io), socket_(io) {
        auto results = resolve_now<udp>(io, t);
        if (!results.empty())
            use(results.begin()->endpoint());
        else
            re_resolve();
    }

    uint64_t errors() const override { return errors_; }

protected:
    void send(std::string msg) override {
        if (!socket_.is_open()) { // not resolved yet
            ++errors_;
            re_resolve();
            return;
        }
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
        if (lookup_.busy())
            return;
        lookup_.start(target_.host, target_.port,
                      [this](const error_code& ec, const udp::resolver::results_type& results) {
                          if (!ec && !results.empty())
                              use(results.begin()->endpoint());
                      });
    }

    Target target_;
    DetachedLookup<udp> lookup_;
    udp::socket socket_;
    udp::endpoint dest_;
    uint64_t errors_ = 0;
};

// The socket below the messages, counting the octets written into it: the
// kernel's count of unacknowledged octets (SIOCOUTQ) is in these, which
// under TLS are records and not the messages' octets.
class CountingSocket {
public:
    using lowest_layer_type = tcp::socket::lowest_layer_type;
    using executor_type = tcp::socket::executor_type;

    explicit CountingSocket(asio::io_context& io) : sock_(io) {}

    executor_type get_executor() { return sock_.get_executor(); }
    lowest_layer_type& lowest_layer() { return sock_.lowest_layer(); }
    const lowest_layer_type& lowest_layer() const { return sock_.lowest_layer(); }
    tcp::socket& socket() { return sock_; }
    uint64_t written() const { return written_; }

    template <class Buffers, class Handler> void async_read_some(const Buffers& b, Handler&& h) {
        sock_.async_read_some(b, std::forward<Handler>(h));
    }
    template <class Buffers, class Handler> void async_write_some(const Buffers& b, Handler&& h) {
        sock_.async_write_some(b, [this, h = std::decay_t<Handler>(std::forward<Handler>(h))](const error_code& ec,
                                                                                              std::size_t n) mutable {
            written_ += n;
            std::move(h)(ec, n);
        });
    }

private:
    tcp::socket sock_;
    uint64_t written_ = 0;
};

// tcp://: the messages go into the socket as they are.
class PlainStream {
public:
    static constexpr std::size_t kMaxMessage = rfc5424::kTcpMaxMessage;
    static constexpr bool kOctetsAreMessages = true;
    PlainStream(asio::io_context& io, asio::ssl::context*) : sock_(io) {}
    tcp::socket& socket() { return sock_.socket(); }
    CountingSocket& stream() { return sock_; }
    uint64_t wire_written() const { return sock_.written(); }
    template <class Handler> void async_handshake(const std::string&, Handler&& done) {
        asio::post(sock_.get_executor(), [done = std::forward<Handler>(done)]() mutable { done(error_code()); });
    }

private:
    CountingSocket sock_;
};

// tls:// (RFC 5425): TLS over the socket, the receiver's certificate
// checked against the trust anchors and the host name of the URL.
class TlsStream {
public:
    static constexpr std::size_t kMaxMessage = rfc5424::kTcpMaxMessage;
    // A write completes once its records are in the socket, and it takes
    // no more than the first buffer: one message's end is the wire's then.
    static constexpr bool kOctetsAreMessages = false;
    TlsStream(asio::io_context& io, asio::ssl::context* ctx) : ssl_(io, *ctx) {}
    tcp::socket& socket() { return ssl_.next_layer().socket(); }
    asio::ssl::stream<CountingSocket>& stream() { return ssl_; }
    uint64_t wire_written() const { return ssl_.next_layer().written(); }
    template <class Handler> void async_handshake(const std::string& host, Handler&& done) {
        error_code ec;
        asio::ip::make_address(host, ec);
        // SNI takes names only (RFC 6066); an address is checked against the IP SANs.
        if (ec && !SSL_set_tlsext_host_name(ssl_.native_handle(), host.c_str()))
            ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        ssl_.set_verify_mode(asio::ssl::verify_peer);
        ssl_.set_verify_callback(asio::ssl::host_name_verification(host));
        ssl_.async_handshake(asio::ssl::stream_base::client, std::forward<Handler>(done));
    }

private:
    asio::ssl::stream<CountingSocket> ssl_;
};

// Why a handshake failed, in words an administrator can act on.
std::string handshake_error(const error_code& ec) {
    if (ec.category() != asio::error::get_ssl_category())
        return ec.message();
    std::string why = ec.message();
    if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        why += " (is --syslog-ca the receiver's CA, and does its certificate name the host of the URL?)";
    return why;
}

// A dead receiver is noticed: keepalive probes on an idle connection, and
// TCP_USER_TIMEOUT when written octets stay unacknowledged.
void keep_alive(tcp::socket& s) {
    const int fd = s.native_handle();
    const int on = 1, idle = 60, intvl = 10, count = 3;
    const unsigned user_timeout_ms = 90'000;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

// A bounded queue of framed messages drained into one connection, which is
// re-resolved and re-made with jittered exponential back-off when it fails.
// Overflow drops the oldest messages; they are this sink's errors(), as
// are connections refused (a TLS receiver that fails verification).
// Written messages are kept until the kernel says the receiver has
// acknowledged their octets, and sent again on the next connection if not.
template <class Stream> class StreamSyslogSink : public SyslogSink {
public:
    StreamSyslogSink(const SyslogOptions& o, const Target& t, asio::io_context& io,
                     std::shared_ptr<asio::ssl::context> tls = {}) :
        SyslogSink(o, Stream::kMaxMessage),
        target_(t), queue_limit_(o.queue_bytes), io_(io), tls_(std::move(tls)), lookup_(io), timer_(io),
        rng_(std::random_device{}()) {
        resolve_now<tcp>(io, t);
        connect();
    }

    ~StreamSyslogSink() override {
        if (draining_ && !queue_.empty())
            log::warn(target_.url + ": " + std::to_string(queue_.size()) + " syslog messages not delivered");
    }

    uint64_t errors() const override { return dropped_ + refused_; }

    // Shutdown: the loop goes on writing while connected; the agent waits
    // for drained(). Without a connection there is nothing to wait for.
    void drain(std::chrono::steady_clock::time_point) override {
        draining_ = true;
        write_soon();
    }
    bool drained() const override { return queue_.empty() || !connected_; }

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
        lookup_.start(target_.host, target_.port,
                      [this](const error_code& ec, const tcp::resolver::results_type& results) {
                          if (ec)
                              return retry("host does not resolve: " + ec.message());
                          conn_ = std::make_unique<Stream>(io_, tls_.get());
                          asio::async_connect(conn_->socket(), results,
                                              [this, g = ++generation_](const error_code& ec, const tcp::endpoint&) {
                                                  if (ec == asio::error::operation_aborted || g != generation_)
                                                      return;
                                                  if (ec)
                                                      return retry("cannot connect: " + ec.message());
                                                  keep_alive(conn_->socket());
                                                  conn_->async_handshake(target_.host, [this, g](const error_code& ec) {
                                                      if (ec == asio::error::operation_aborted || g != generation_)
                                                          return;
                                                      if (ec) {
                                                          ++refused_;
                                                          return lost("refused: " + handshake_error(ec));
                                                      }
                                                      on_connected();
                                                  });
                                              });
                      });
    }

    void on_connected() {
        ++generation_;
        connected_ = true;
        connected_at_ = std::chrono::steady_clock::now();
        if (complained_)
            log::info(target_.url + ": connected again");
        complained_ = false;
        watch_peer();
        write_soon();
    }

    // Receivers send nothing: a completed read means they closed or failed,
    // which is noticed here before more is written into a dead connection.
    void watch_peer() {
        conn_->stream().async_read_some(
            asio::buffer(peek_), [this, g = generation_](const error_code& ec, std::size_t) {
                if (ec == asio::error::operation_aborted || g != generation_)
                    return;
                if (ec)
                    return lost(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                                    ? "closed by the receiver"
                                    : ec.message());
                watch_peer();
            });
    }

    // One write at a time, of as many queued messages as one call takes.
    void write_soon() {
        if (!connected_ || writing_ || queue_.empty())
            return;
        writing_ = true;
        bufs_.clear();
        std::size_t skip = sent_;
        for (auto it = queue_.begin(); it != queue_.end() && bufs_.size() < kMaxBuffersPerWrite; ++it) {
            bufs_.emplace_back(asio::buffer(*it) + skip);
            skip = 0;
        }
        conn_->stream().async_write_some(bufs_, [this, g = generation_](const error_code& ec, std::size_t n) {
            if (ec == asio::error::operation_aborted || g != generation_)
                return;
            writing_ = false;
            if (ec)
                return lost(ec.message());
            written(n);
            write_soon();
        });
    }

    // n octets of the queue's front went out: whole messages move to inflight_.
    void written(std::size_t n) {
        const uint64_t wire = conn_->wire_written();
        while (n > 0) {
            std::size_t done = std::min(n, queue_.front().size() - sent_);
            sent_ += done;
            n -= done;
            if (sent_ == queue_.front().size()) {
                queued_ -= queue_.front().size();
                inflight_.push_back({std::move(queue_.front()), Stream::kOctetsAreMessages ? wire - n : wire});
                queue_.pop_front();
                sent_ = 0;
            }
        }
        trim_inflight();
    }

    // Keeps only the written messages the receiver has not acknowledged yet.
    void trim_inflight() {
        if (!conn_)
            return;
        int outq = 0;
        if (::ioctl(conn_->socket().native_handle(), SIOCOUTQ, &outq) != 0)
            outq = 0;
        uint64_t wire = conn_->wire_written();
        uint64_t acked = wire - std::min<uint64_t>(wire, static_cast<uint64_t>(std::max(outq, 0)));
        while (!inflight_.empty() && inflight_.front().wire_end <= acked)
            inflight_.pop_front();
    }

    void lost(const std::string& why) {
        trim_inflight();
        for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
            queued_ += it->frame.size();
            queue_.push_front(std::move(it->frame));
        }
        inflight_.clear();
        if (std::chrono::steady_clock::now() - connected_at_ >= backoff_)
            backoff_ = kMinBackoff;
        ++generation_;
        connected_ = false;
        writing_ = false;
        sent_ = 0; // the receiver dropped the partial frame with the connection
        if (conn_) {
            error_code ignored;
            conn_->socket().close(ignored);
        }
        retry("connection lost: " + why);
    }

    void retry(const std::string& why) {
        if (!complained_)
            log::warn(target_.url + ": " + why + "; retrying, " + std::to_string(queue_.size()) + " messages queued");
        complained_ = true;
        std::uniform_real_distribution<double> jitter(0.5, 1.0);
        timer_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(backoff_ * jitter(rng_)));
        backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
        timer_.async_wait([this](const error_code& ec) {
            if (ec != asio::error::operation_aborted)
                connect();
        });
    }

    struct Written {
        std::string frame;
        uint64_t wire_end; // wire_written() when its last octet was written
    };

    Target target_;
    std::size_t queue_limit_;
    asio::io_context& io_;
    std::shared_ptr<asio::ssl::context> tls_;
    DetachedLookup<tcp> lookup_;
    std::unique_ptr<Stream> conn_; // a new one per connection: a TLS session is not reused
    asio::steady_timer timer_;
    std::minstd_rand rng_;
    std::deque<std::string> queue_;
    std::deque<Written> inflight_;
    std::vector<asio::const_buffer> bufs_;
    std::chrono::steady_clock::time_point connected_at_;
    std::size_t queued_ = 0; // octets in queue_
    std::size_t sent_ = 0;   // octets of queue_.front() already written
    std::array<char, 256> peek_;
    std::chrono::milliseconds backoff_ = kMinBackoff;
    unsigned generation_ = 0; // of the connection; stale handlers see another
    bool connected_ = false;
    bool writing_ = false;    // a write is pending
    bool complained_ = false; // a failure was logged, the recovery will be
    bool draining_ = false;   // shutdown asked for the queue to go out
    uint64_t dropped_ = 0;
    uint64_t refused_ = 0; // handshakes that failed: never sent in clear
};

// The client's TLS settings, shared by its connections; Error(kExitUsage)
// naming the file that cannot be read.
std::shared_ptr<asio::ssl::context> tls_context(const SyslogOptions& o) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    auto use = [&](const std::string& what, const std::string& file, auto&& load) {
        error_code ec;
        load(ec);
        if (ec)
            throw Error(kExitUsage, "--syslog-" + what + " '" + file + "': cannot be used: " + ec.message());
    };
    if (o.ca_file.empty())
        use("ca", "(system CAs)", [&](error_code& ec) { ctx->set_default_verify_paths(ec); });
    else
        use("ca", o.ca_file, [&](error_code& ec) { ctx->load_verify_file(o.ca_file, ec); });
    if (o.cert_file.empty() != o.key_file.empty())
        throw Error(kExitUsage, "--syslog-cert and --syslog-key go together: a client certificate needs its key");
    if (!o.cert_file.empty())
        use("cert", o.cert_file, [&](error_code& ec) { ctx->use_certificate_chain_file(o.cert_file, ec); });
    if (!o.key_file.empty())
        use("key", o.key_file,
            [&](error_code& ec) { ctx->use_private_key_file(o.key_file, asio::ssl::context::pem, ec); });
    return ctx;
}

} // namespace

std::unique_ptr<Sink> make_syslog_sink(const SyslogOptions& o, asio::io_context& io) {
    Target t = parse_url(o.url);
    switch (t.scheme) {
    case Scheme::tcp:
        return std::make_unique<StreamSyslogSink<PlainStream>>(o, t, io);
    case Scheme::tls:
        return std::make_unique<StreamSyslogSink<TlsStream>>(o, t, io, tls_context(o));
    case Scheme::udp:
        break;
    }
    return std::make_unique<UdpSyslogSink>(o, t, io);
}

} // namespace pdtt
