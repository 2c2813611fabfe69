// pdtt-churn: TCP connection churn for the benchmarks. One thread, epoll,
// non-blocking sockets; no dependency beyond the C++ library.
//
//   pdtt-churn serve --bind ADDR --port P [--ports K]
//   pdtt-churn run   --to ADDR --port P [--ports K] [--rate R] [--duration S]
//                    [--bytes B] [--concurrency C] [--uid UID]
//   pdtt-churn hold  --to ADDR --port P [--ports K] --count N [--bytes B]
//                    [--concurrency C] [--hold S] [--uid UID]
//
// Wire protocol, per connection: the client sends B bytes (B >= 8) whose
// first byte is the mode ('C' churn, 'H' hold) and whose bytes 4..7 are B,
// big-endian; the server answers with B bytes. In churn mode the server
// then closes first, so the TIME_WAIT sockets pile up on the server's side
// and the client (the side the agent watches) can reuse its ports at once.
// In hold mode the connection stays open until the client closes it.
//
// The server listens on K consecutive ports from P: more 4-tuples than one
// port's 64k ephemeral ports allow. Several servers may share the ports
// (SO_REUSEPORT) when one process's descriptor limit is too small. run opens connections at R per second
// (0: as fast as C in flight allow) for S seconds. hold opens N connections,
// prints "held=N" (flushed) and keeps them until --hold seconds pass or
// SIGTERM/SIGINT arrives.
//
// Output, one line: run "made=.. completed=.. failed=.. seconds=.. rate=..
// payload_tx=.. payload_rx=..": made counts connections that reached
// ESTABLISHED, the flows the agent must report. Errors: one line on stderr.

#include "cli.hpp"
#include "fd.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace pdtt::tool;
using pdtt::Fd;

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

// ---- command line ----

const std::vector<Mode> kModes = {
    {"serve", {"bind", "port", "ports"}},
    {"run", {"to", "port", "ports", "rate", "duration", "bytes", "concurrency", "uid"}},
    {"hold", {"to", "port", "ports", "count", "bytes", "concurrency", "hold", "uid"}},
};

// ---- sockets ----

sockaddr_storage make_addr(const std::string& host, uint16_t port, socklen_t& len) {
    sockaddr_storage ss{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(*v6);
    } else {
        throw Error("not a numeric IPv4 or IPv6 address: '" + host + "'");
    }
    return ss;
}

void set_port(sockaddr_storage& ss, uint16_t port) {
    if (ss.ss_family == AF_INET)
        reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    else
        reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

// Up to `need` descriptors, as far as the hard limit allows (raising that
// takes CAP_SYS_RESOURCE, which containers often drop); returns the limit.
uint64_t raise_nofile(uint64_t need) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= need)
        return rl.rlim_cur;
    rlimit want = rl;
    want.rlim_cur = want.rlim_max = std::max<rlim_t>(need, rl.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return need;
    rl.rlim_cur = std::min<rlim_t>(need, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

void put_be32(unsigned char* p, uint32_t v) {
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

uint32_t get_be32(const unsigned char* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

constexpr uint32_t kMinBytes = 8;
constexpr uint32_t kMaxBytes = 64 * 1024;

// ---- server ----

struct ServerConn {
    uint32_t need = 0; // request length, known after 8 bytes
    uint32_t got = 0;
    uint32_t sent = 0;
    unsigned char head[kMinBytes];
    char mode = 0;
    bool replying = false;
};

int serve(const Args& a) {
    socklen_t alen = 0;
    sockaddr_storage addr = make_addr(a.need("bind"), static_cast<uint16_t>(a.num("port", 0)), alen);
    uint64_t port = a.num("port", 0), nports = a.num("ports", 1);
    if (port == 0 || nports == 0 || port + nports > 65536)
        throw Error("serve: --port and --ports must name ports 1..65535");
    raise_nofile(1u << 20); // several servers may share the ports (SO_REUSEPORT)

    Fd ep(epoll_create1(EPOLL_CLOEXEC));
    if (ep.get() < 0)
        throw Error(errno_text("epoll_create1"));
    std::vector<Fd> listeners;
    for (uint64_t i = 0; i < nports; i++) {
        Fd s(socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int one = 1;
        setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(s.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        set_port(addr, static_cast<uint16_t>(port + i));
        if (s.get() < 0 || bind(s.get(), reinterpret_cast<sockaddr*>(&addr), alen) != 0 || listen(s.get(), 65535) != 0)
            throw Error(errno_text("listen on port " + std::to_string(port + i)));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = uint64_t(1) << 32 | uint32_t(s.get()); // high bit: a listener
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, s.get(), &ev);
        listeners.push_back(std::move(s));
    }
    std::printf("ready port=%llu ports=%llu\n", (unsigned long long)port, (unsigned long long)nports);
    std::fflush(stdout);

    std::vector<ServerConn> conns;
    static char reply[kMaxBytes];
    std::memset(reply, 'r', sizeof(reply));
    char buf[kMaxBytes];
    std::vector<epoll_event> evs(1024);
    auto close_conn = [&](int fd) { ::close(fd); };

    while (!g_stop) {
        int n = epoll_wait(ep.get(), evs.data(), static_cast<int>(evs.size()), 200);
        if (n < 0 && errno != EINTR)
            throw Error(errno_text("epoll_wait"));
        for (int i = 0; i < n; i++) {
            int fd = static_cast<int>(evs[i].data.u64 & 0xffffffff);
            if (evs[i].data.u64 >> 32) {
                for (int c; (c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
                    if (static_cast<size_t>(c) >= conns.size())
                        conns.resize(std::max<size_t>(c + 1, conns.size() * 2));
                    conns[c] = ServerConn{};
                    epoll_event ev{};
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.u64 = uint32_t(c);
                    epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            ServerConn& sc = conns[fd];
            bool drop = false;
            if (!sc.replying) {
                ssize_t r = ::read(fd, buf, sizeof(buf));
                if (r <= 0) {
                    drop = r == 0 || (errno != EAGAIN && errno != EINTR);
                } else {
                    for (ssize_t j = 0; j < r && sc.got + j < kMinBytes; j++)
                        sc.head[sc.got + j] = static_cast<unsigned char>(buf[j]);
                    sc.got += static_cast<uint32_t>(r);
                    if (sc.got >= kMinBytes && !sc.need) {
                        sc.mode = static_cast<char>(sc.head[0]);
                        sc.need = std::clamp(get_be32(sc.head + 4), kMinBytes, kMaxBytes);
                    }
                    if (sc.need && sc.got >= sc.need)
                        sc.replying = true;
                }
            }
            if (sc.replying && !drop) {
                ssize_t w = ::write(fd, reply, sc.need - sc.sent);
                if (w > 0)
                    sc.sent += static_cast<uint32_t>(w);
                else if (errno != EAGAIN && errno != EINTR)
                    drop = true;
                if (sc.sent == sc.need) {
                    if (sc.mode == 'C') {
                        drop = true; // churn: the server closes first
                    } else {
                        // hold: wait for the client's EOF
                        sc = ServerConn{};
                        epoll_event ev{};
                        ev.events = EPOLLIN | EPOLLRDHUP;
                        ev.data.u64 = uint32_t(fd);
                        epoll_ctl(ep.get(), EPOLL_CTL_MOD, fd, &ev);
                    }
                } else if (!drop) {
                    epoll_event ev{};
                    ev.events = EPOLLOUT | EPOLLRDHUP;
                    ev.data.u64 = uint32_t(fd);
                    epoll_ctl(ep.get(), EPOLL_CTL_MOD, fd, &ev);
                }
            }
            if (drop)
                close_conn(fd);
        }
    }
    return 0;
}

// ---- client ----

struct ClientConn {
    uint32_t sent = 0;
    uint32_t got = 0;
    bool connected = false;
    bool in_use = false;
};

class Client {
public:
    Client(const Args& a, char mode) :
        mode_(mode), bytes_(static_cast<uint32_t>(a.num("bytes", 64))),
        base_port_(static_cast<uint16_t>(a.num("port", 0))), nports_(static_cast<uint32_t>(a.num("ports", 1))),
        concurrency_(a.num("concurrency", 256)) {
        addr_ = make_addr(a.need("to"), base_port_, alen_);
        if (base_port_ == 0 || nports_ == 0 || base_port_ + nports_ > 65536)
            throw Error(a.mode + ": --port and --ports must name ports 1..65535");
        if (bytes_ < kMinBytes || bytes_ > kMaxBytes)
            throw Error(a.mode + ": --bytes must be 8.." + std::to_string(kMaxBytes));
        if (concurrency_ == 0)
            throw Error(a.mode + ": --concurrency must be at least 1");
        ep_ = Fd(epoll_create1(EPOLL_CLOEXEC));
        if (ep_.get() < 0)
            throw Error(errno_text("epoll_create1"));
        std::memset(req_, 'q', sizeof(req_));
        req_[0] = static_cast<unsigned char>(mode);
        put_be32(req_ + 4, bytes_);
    }

    // Starts one connection; false when the kernel refused (counted as failed).
    bool start() {
        int s = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            failed_++;
            last_error_ = errno_text("socket");
            return false;
        }
        set_port(addr_, static_cast<uint16_t>(base_port_ + next_port_));
        next_port_ = (next_port_ + 1) % nports_;
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(s, reinterpret_cast<sockaddr*>(&addr_), alen_) != 0 && errno != EINPROGRESS) {
            last_error_ = errno_text("connect");
            ::close(s);
            failed_++;
            return false;
        }
        if (static_cast<size_t>(s) >= conns_.size())
            conns_.resize(std::max<size_t>(s + 1, conns_.size() * 2));
        conns_[s] = ClientConn{};
        conns_[s].in_use = true;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.fd = s;
        epoll_ctl(ep_.get(), EPOLL_CTL_ADD, s, &ev);
        inflight_++;
        return true;
    }

    // One round of I/O; waits at most timeout_ms.
    void poll(int timeout_ms) {
        int n = epoll_wait(ep_.get(), evs_, kEvents, timeout_ms);
        if (n < 0 && errno != EINTR)
            throw Error(errno_text("epoll_wait"));
        for (int i = 0; i < n; i++)
            step(evs_[i].data.fd, evs_[i].events);
    }

    void close_all() {
        for (size_t fd = 0; fd < conns_.size(); fd++)
            if (conns_[fd].in_use)
                finish(static_cast<int>(fd), false);
    }

    uint64_t inflight() const { return inflight_; }
    uint64_t held() const { return held_; }
    uint64_t concurrency() const { return concurrency_; }
    uint64_t made() const { return made_; }
    uint64_t completed() const { return completed_; }
    uint64_t failed() const { return failed_; }
    uint64_t payload_tx() const { return payload_tx_; }
    uint64_t payload_rx() const { return payload_rx_; }
    const std::string& last_error() const { return last_error_; }

private:
    static constexpr int kEvents = 1024;

    void step(int fd, uint32_t events) {
        ClientConn& c = conns_[fd];
        if (!c.connected) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err || (events & (EPOLLERR | EPOLLHUP))) {
                errno = err;
                last_error_ = errno_text("connect");
                finish(fd, false);
                return;
            }
            c.connected = true;
            made_++;
        }
        if (c.sent < bytes_) {
            ssize_t w = ::write(fd, req_, bytes_ - c.sent);
            if (w < 0 && errno != EAGAIN) {
                last_error_ = errno_text("write");
                finish(fd, false);
                return;
            }
            if (w > 0) {
                c.sent += static_cast<uint32_t>(w);
                payload_tx_ += static_cast<uint64_t>(w);
            }
            epoll_event ev{};
            ev.events = c.sent < bytes_ ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
            ev.data.fd = fd;
            epoll_ctl(ep_.get(), EPOLL_CTL_MOD, fd, &ev);
            return;
        }
        char buf[kMaxBytes];
        ssize_t r = ::read(fd, buf, sizeof(buf));
        if (r > 0) {
            c.got += static_cast<uint32_t>(r);
            payload_rx_ += static_cast<uint64_t>(r);
            if (mode_ == 'H' && c.got >= bytes_) {
                // Keep it open: no more events wanted until close_all().
                epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
                inflight_--;
                held_++;
                completed_++;
            }
            return;
        }
        if (r < 0 && errno == EAGAIN)
            return;
        // EOF after the whole reply: the server closed first, as designed.
        bool ok = r == 0 && c.got >= bytes_;
        if (!ok)
            last_error_ = r < 0 ? errno_text("read") : "server closed early";
        finish(fd, ok);
    }

    void finish(int fd, bool ok) {
        ClientConn& c = conns_[fd];
        if (c.in_use && !(mode_ == 'H' && c.got >= bytes_))
            inflight_--;
        else if (c.in_use)
            held_--;
        if (ok)
            completed_++;
        else if (!c.connected)
            failed_++;
        c = ClientConn{};
        ::close(fd);
    }

    char mode_;
    uint32_t bytes_;
    uint16_t base_port_;
    uint32_t nports_;
    uint32_t next_port_ = 0;
    uint64_t concurrency_;
    sockaddr_storage addr_{};
    socklen_t alen_ = 0;
    Fd ep_;
    unsigned char req_[kMaxBytes];
    std::vector<ClientConn> conns_;
    epoll_event evs_[kEvents];
    uint64_t inflight_ = 0, held_ = 0, made_ = 0, completed_ = 0, failed_ = 0;
    uint64_t payload_tx_ = 0, payload_rx_ = 0;
    std::string last_error_;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int run(const Args& a) {
    double rate = static_cast<double>(a.num("rate", 0));
    double duration = static_cast<double>(a.num("duration", 10));
    raise_nofile(a.num("concurrency", 256) + 64);
    // After the descriptors are raised: the flows must belong to this user.
    drop_to_uid_option(a);
    Client cl(a, 'C');

    auto t0 = Clock::now();
    uint64_t started = 0;
    // Open loop: connection i is due at i / rate; behind schedule we catch
    // up as fast as the in-flight limit allows and report the rate reached.
    for (double t; !g_stop && (t = seconds_since(t0)) < duration;) {
        uint64_t due = rate > 0 ? static_cast<uint64_t>(t * rate) + 1 : UINT64_MAX;
        while (started < due && cl.inflight() < cl.concurrency()) {
            started++;
            cl.start();
        }
        cl.poll(1);
    }
    double elapsed = seconds_since(t0);
    // Let the last ones finish; a connection stuck longer than this failed.
    for (auto t1 = Clock::now(); cl.inflight() && seconds_since(t1) < 5;)
        cl.poll(10);
    cl.close_all();
    std::printf("made=%llu completed=%llu failed=%llu seconds=%.3f rate=%.1f payload_tx=%llu payload_rx=%llu\n",
                (unsigned long long)cl.made(), (unsigned long long)cl.completed(), (unsigned long long)cl.failed(),
                elapsed, cl.made() / elapsed, (unsigned long long)cl.payload_tx(), (unsigned long long)cl.payload_rx());
    if (cl.failed())
        std::fprintf(stderr, "pdtt-churn: %llu connections failed; last error: %s\n", (unsigned long long)cl.failed(),
                     cl.last_error().c_str());
    return 0;
}

int hold(const Args& a) {
    uint64_t count = a.num("count", 0);
    double hold_s = static_cast<double>(a.num("hold", 3600));
    if (count == 0)
        throw Error("hold: --count must be at least 1");
    if (uint64_t lim = raise_nofile(count + 64); lim < count + 64)
        throw Error("hold: --count " + std::to_string(count) + " needs " + std::to_string(count + 64) +
                    " descriptors but the limit is " + std::to_string(lim) + ": run several holders");
    drop_to_uid_option(a);
    Client cl(a, 'H');

    auto t0 = Clock::now();
    uint64_t started = 0;
    while (!g_stop && (started < count || cl.inflight()) && seconds_since(t0) < 600) {
        while (started < count && cl.inflight() < cl.concurrency()) {
            started++;
            cl.start();
        }
        cl.poll(1);
    }
    std::printf("held=%llu made=%llu failed=%llu seconds=%.3f\n", (unsigned long long)cl.held(),
                (unsigned long long)cl.made(), (unsigned long long)cl.failed(), seconds_since(t0));
    std::fflush(stdout);
    if (cl.failed())
        std::fprintf(stderr, "pdtt-churn: %llu connections failed; last error: %s\n", (unsigned long long)cl.failed(),
                     cl.last_error().c_str());
    for (auto t1 = Clock::now(); !g_stop && seconds_since(t1) < hold_s;)
        usleep(50 * 1000);
    cl.close_all();
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    try {
        Args a = parse_args(argc, argv, kModes);
        if (a.mode == "serve")
            return serve(a);
        if (a.mode == "run")
            return run(a);
        return hold(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pdtt-churn: %s\n", e.what());
        return 1;
    }
}
