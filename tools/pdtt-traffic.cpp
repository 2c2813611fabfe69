// pdtt-traffic: moves KNOWN byte counts over real sockets, for tests and
// benchmarks. Plain POSIX sockets; no dependency beyond the C++ library.
//
//   pdtt-traffic serve --bind ADDR --port P [--proto tcp|udp] [--count N]
//                      [--ready-file F] [--timeout-ms MS]
//   pdtt-traffic send  --to ADDR --port P --tx BYTES --rx BYTES
//                      [--proto tcp|udp] [--connections N] [--parallel T]
//                      [--uid UID] [--pause-before-ms MS] [--hold-ms MS]
//                      [--size BYTES] [--timeout-ms MS] [--sport PORT]
//
// TCP wire protocol, per connection:
//   client -> server  16-byte header: u64 tx, u64 rx, both big-endian
//   client -> server  exactly tx bytes
//   server -> client  exactly rx bytes
//   then the client closes first (after --hold-ms) and the server closes on
//   the client's EOF, so --hold-ms keeps a fully open connection and the
//   TIME_WAIT stays on the client.
// The header is payload on the wire too: the client sends 16 + tx bytes of
// TCP payload per connection; the summary line prints both figures.
//
// UDP wire protocol: the client sends datagrams of at most --size bytes,
// together exactly tx bytes; each starts with a big-endian u64 asking the
// server for a reply of that many bytes (0: none). With rx > 0 the client
// waits for each reply before the next datagram (lock-step, so loss shows
// up as a timeout instead of a wrong count); with rx == 0 it floods.
//
// Output: serve prints "ready port=P" (flushed) once listening and writes
// P to --ready-file (atomically, via rename). send prints one line
// "connections=N tx=.. rx=.. wire_tx=.. wire_rx=.. seconds=..". Errors are one
// line on stderr; the exit status is 0 only if every byte was moved.

#include "cli.hpp"
#include "fd.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace pdtt::tool;
using pdtt::Fd;

constexpr std::size_t kHeader = 16;
constexpr std::size_t kMaxDatagram = 65507;

// ---- command line ----

const char* kUsage = "usage: pdtt-traffic serve --bind ADDR --port P [--proto tcp|udp] [--count N]\n"
                     "                          [--ready-file F] [--timeout-ms MS]\n"
                     "       pdtt-traffic send --to ADDR --port P --tx BYTES --rx BYTES [--proto tcp|udp]\n"
                     "                         [--connections N] [--parallel T] [--uid UID]\n"
                     "                         [--pause-before-ms MS] [--hold-ms MS] [--size BYTES]\n"
                     "                         [--timeout-ms MS] [--sport PORT]\n";

const std::vector<Mode> kModes = {
    {"serve", {"bind", "port", "proto", "count", "ready-file", "timeout-ms"}},
    {"send",
     {"to", "port", "tx", "rx", "proto", "connections", "parallel", "uid", "pause-before-ms", "hold-ms", "size",
      "timeout-ms", "sport"}},
};

// ---- sockets ----

void sleep_ms(std::uint64_t ms) {
    if (ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void write_ready(const std::string& file, unsigned port) {
    std::printf("ready port=%u\n", port);
    std::fflush(stdout);
    if (file.empty())
        return;
    std::string tmp = file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f)
        throw Error(errno_text("ready file " + tmp));
    std::fprintf(f, "%u\n", port);
    if (std::fclose(f) != 0 || std::rename(tmp.c_str(), file.c_str()) != 0)
        throw Error(errno_text("ready file " + file));
}

Fd bound_socket(const Addr& a, int type) {
    Fd fd(::socket(a.family(), type | SOCK_CLOEXEC, 0));
    if (fd.get() < 0)
        throw Error(errno_text("socket"));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0)
        throw Error(errno_text("bind"));
    return fd;
}

// ---- serve ----

struct Totals {
    std::atomic<std::uint64_t> conns{0}, rx{0}, tx{0}, failed{0};
};

void serve_one(Fd conn, std::uint64_t timeout_ms, Totals& t) {
    try {
        set_timeouts(conn.get(), timeout_ms);
        unsigned char hdr[kHeader];
        read_exact(conn.get(), hdr, sizeof(hdr), "header");
        std::uint64_t want_rx = get_be64(hdr), want_tx = get_be64(hdr + 8);
        read_exact(conn.get(), nullptr, want_rx, "receive");
        send_filled(conn.get(), want_tx, 'p');
        // Close on the client's EOF, so the client decides how long it lives.
        char c;
        if (ssize_t r = ::recv(conn.get(), &c, 1, 0); r != 0)
            throw Error(r > 0 ? std::string("client sent more than announced")
                              : errno_text("waiting for the client's close"));
        t.rx += want_rx;
        t.tx += want_tx;
        t.conns++;
    } catch (const std::exception& e) {
        t.failed++;
        std::fprintf(stderr, "pdtt-traffic serve: %s\n", e.what());
    }
}

int serve_tcp(const Args& a, const Addr& addr) {
    std::uint64_t count = a.num("count", 0); // 0: unlimited
    std::uint64_t timeout_ms = a.num("timeout-ms", 30000);
    Fd lfd = bound_socket(addr, SOCK_STREAM);
    if (::listen(lfd.get(), 4096) != 0)
        throw Error(errno_text("listen"));
    write_ready(a.str("ready-file"), bound_port(lfd.get()));

    Totals t;
    std::vector<std::thread> workers;
    for (std::uint64_t n = 0; count == 0 || n < count; n++) {
        int c = ::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                n--;
                continue;
            }
            throw Error(errno_text("accept"));
        }
        std::thread w(serve_one, Fd(c), timeout_ms, std::ref(t));
        if (count == 0)
            w.detach(); // unlimited: the process ends by signal
        else
            workers.push_back(std::move(w));
    }
    for (auto& w : workers)
        w.join();
    std::printf("connections=%llu rx=%llu tx=%llu failed=%llu\n", (unsigned long long)t.conns, (unsigned long long)t.rx,
                (unsigned long long)t.tx, (unsigned long long)t.failed);
    return t.failed ? 1 : 0;
}

// UDP: reply with the byte count each datagram asks for; --count N stops
// after N datagrams.
int serve_udp(const Args& a, const Addr& addr) {
    std::uint64_t count = a.num("count", 0);
    Fd fd = bound_socket(addr, SOCK_DGRAM);
    write_ready(a.str("ready-file"), bound_port(fd.get()));
    std::vector<unsigned char> in(kMaxDatagram + 1), out(kMaxDatagram, 'p');
    std::uint64_t rx = 0, tx = 0, n = 0;
    for (; count == 0 || n < count; n++) {
        sockaddr_storage peer{};
        socklen_t plen = sizeof(peer);
        ssize_t r = ::recvfrom(fd.get(), in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
        if (r < 0) {
            if (errno == EINTR) {
                n--;
                continue;
            }
            throw Error(errno_text("recvfrom"));
        }
        rx += static_cast<std::uint64_t>(r);
        if (r < 8)
            continue; // too short to carry a request
        std::uint64_t want = std::min<std::uint64_t>(get_be64(in.data()), kMaxDatagram);
        if (want && ::sendto(fd.get(), out.data(), want, 0, reinterpret_cast<sockaddr*>(&peer), plen) == (ssize_t)want)
            tx += want;
    }
    std::printf("datagrams=%llu rx=%llu tx=%llu\n", (unsigned long long)n, (unsigned long long)rx,
                (unsigned long long)tx);
    return 0;
}

// ---- send ----

struct SendCfg {
    Addr to;
    std::uint64_t tx, rx, pause_ms, hold_ms, timeout_ms, size, sport;
};

// A socket to c.to's family, bound to source port c.sport when given (to
// make the same 5-tuple in two namespaces).
Fd client_socket(const SendCfg& c, int type) {
    Fd fd(::socket(c.to.family(), type | SOCK_CLOEXEC, 0));
    if (fd.get() < 0)
        throw Error(errno_text("socket"));
    set_timeouts(fd.get(), c.timeout_ms);
    if (c.sport) {
        int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_storage ss{};
        ss.ss_family = static_cast<sa_family_t>(c.to.family());
        socklen_t len = sizeof(sockaddr_in);
        if (c.to.family() == AF_INET6) {
            reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(c.sport));
            len = sizeof(sockaddr_in6);
        } else {
            reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(c.sport));
        }
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
            throw Error(errno_text("bind --sport"));
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&c.to.ss), c.to.len) != 0)
        throw Error(errno_text("connect"));
    return fd;
}

void send_tcp_one(const SendCfg& c) {
    Fd fd = client_socket(c, SOCK_STREAM);
    sleep_ms(c.pause_ms);
    unsigned char hdr[kHeader];
    put_be64(hdr, c.tx);
    put_be64(hdr + 8, c.rx);
    write_all(fd.get(), hdr, sizeof(hdr));
    send_filled(fd.get(), c.tx, 'p');
    read_exact(fd.get(), nullptr, c.rx, "receive");
    sleep_ms(c.hold_ms);
}

// One socket for all datagrams of this "connection".
void send_udp_one(const SendCfg& c) {
    Fd fd = client_socket(c, SOCK_DGRAM);
    sleep_ms(c.pause_ms);
    std::uint64_t n = std::max<std::uint64_t>({(c.tx + c.size - 1) / c.size, (c.rx + c.size - 1) / c.size, 1});
    if (c.tx < 8 * n)
        throw Error("udp: --tx must give every datagram at least 8 bytes (need >= " + std::to_string(8 * n) + ")");
    std::vector<unsigned char> buf(c.size, 'p'), in(kMaxDatagram + 1);
    for (std::uint64_t i = 0; i < n; i++) {
        std::uint64_t tx_i = c.tx / n + (i < c.tx % n), rx_i = c.rx / n + (i < c.rx % n);
        put_be64(buf.data(), rx_i);
        if (::send(fd.get(), buf.data(), tx_i, 0) != (ssize_t)tx_i)
            throw Error(errno_text("udp send"));
        if (rx_i == 0)
            continue;
        ssize_t r = ::recv(fd.get(), in.data(), in.size(), 0);
        if (r < 0)
            throw Error(errno == EAGAIN ? std::string("udp reply: timed out (lost?)") : errno_text("udp recv"));
        if ((std::uint64_t)r != rx_i)
            throw Error("udp reply: " + std::to_string(r) + " bytes, expected " + std::to_string(rx_i));
    }
    sleep_ms(c.hold_ms);
}

int send_main(const Args& a) {
    std::string proto = a.str("proto", "tcp");
    if (proto != "tcp" && proto != "udp")
        throw UsageError("--proto: tcp or udp, not '" + proto + "'");
    for (const char* k : {"to", "port", "tx", "rx"})
        a.need(k);
    SendCfg c{resolve(a.need("to"), a.num("port", 0)),
              a.num("tx", 0),
              a.num("rx", 0),
              a.num("pause-before-ms", 0),
              a.num("hold-ms", 0),
              a.num("timeout-ms", 30000),
              a.num("size", 1400),
              a.num("sport", 0)};
    if (c.sport > 65535)
        throw UsageError("--sport: 1..65535");
    if (c.size < 8 || c.size > kMaxDatagram)
        throw UsageError("--size: 8.." + std::to_string(kMaxDatagram));
    std::uint64_t conns = a.num("connections", 1);
    std::uint64_t parallel = std::max<std::uint64_t>(1, std::min(a.num("parallel", 1), conns));
    // Drop privileges last, before any socket exists: sk_uid is taken at socket().
    drop_to_uid_option(a);

    auto one = proto == "tcp" ? send_tcp_one : send_udp_one;
    std::atomic<std::uint64_t> next{0}, done{0};
    std::mutex err_mu;
    std::string first_error;
    auto worker = [&] {
        for (std::uint64_t i; (i = next++) < conns;) {
            try {
                one(c);
                done++;
            } catch (const std::exception& e) {
                std::lock_guard lk(err_mu);
                if (first_error.empty())
                    first_error = e.what();
                next = conns; // stop the others too
            }
        }
    };
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (std::uint64_t i = 1; i < parallel; i++)
        threads.emplace_back(worker);
    worker();
    for (auto& t : threads)
        t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!first_error.empty())
        throw Error(first_error + " (" + std::to_string(done.load()) + " of " + std::to_string(conns) +
                    " connections completed)");
    std::uint64_t hdr = proto == "tcp" ? kHeader : 0;
    std::printf("connections=%llu tx=%llu rx=%llu wire_tx=%llu wire_rx=%llu seconds=%.6f\n", (unsigned long long)conns,
                (unsigned long long)conns * c.tx, (unsigned long long)conns * c.rx,
                (unsigned long long)conns * (c.tx + hdr), (unsigned long long)conns * c.rx, secs);
    return 0;
}

int serve_main(const Args& a) {
    std::string proto = a.str("proto", "tcp");
    if (proto != "tcp" && proto != "udp")
        throw UsageError("--proto: tcp or udp, not '" + proto + "'");
    a.need("port");
    Addr addr = resolve(a.need("bind"), a.num("port", 0));
    return proto == "tcp" ? serve_tcp(a, addr) : serve_udp(a, addr);
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    try {
        Args a = parse_args(argc, argv, kModes);
        return a.mode == "serve" ? serve_main(a) : send_main(a);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "pdtt-traffic: %s (see --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pdtt-traffic: %s\n", e.what());
        return 1;
    }
}
