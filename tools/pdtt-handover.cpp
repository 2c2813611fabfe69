// pdtt-handover: a connection that changes hands between users, the way
// real servers do it, with KNOWN byte counts moved by each owner. For the
// tests of "the owner of a byte is the process that moves it".
//
//   pdtt-handover fork-setuid|seteuid|scm-rights --bind ADDR --port P --uid U
//                 --rx N --tx M [--count C] [--timeout-ms MS]
//   pdtt-handover client --to ADDR --port P --tx N --rx M [--timeout-ms MS]
//   pdtt-handover two-writers --to ADDR --port P --uid A --uid-b B --tx N1
//                 --tx-b N2 [--proto tcp|udp] [--size S] [--timeout-ms MS]
//   pdtt-handover sink --bind ADDR --port P --parts N1,N2,... [--timeout-ms MS]
//
// The daemons (fork-setuid, seteuid, scm-rights) run as root, listen, and
// per connection (C of them, default 1):
//   root  -> client  kBanner bytes      (the daemon speaks first)
//   client -> root   kHello bytes       (read by root, before the hand-over)
//   then the connection goes to a process running as U:
//     fork-setuid  a forked child that calls setgroups, setgid, setuid (GridFTP, xrootd)
//     seteuid      a forked child that switches only its effective ids (Samba, ProFTPD)
//     scm-rights   a worker started as U at start-up gets the socket over a
//                  Unix socket (SCM_RIGHTS); root closes its copy
//   user  -> client  kGreeting bytes    (the user's process writes first, so
//                                        it owns the socket before the client sends)
//   client -> user   N bytes (--rx of the daemon, --tx of the client)
//   user  -> client  M bytes
//   the client closes; the user's process closes on its EOF.
// So root moves exactly kBanner out and kHello in, U everything after.
//
// two-writers (as root, on the side that connects out): a process of user A
// connects and writes N1 bytes, waits until the kernel has them all
// acknowledged (SIOCOUTQ 0) and the peer confirmed them, then hands the
// socket over SCM_RIGHTS to a process of user B, which writes N2 bytes
// first, waits for the peer's confirmation and closes. The peer is `sink`
// (TCP: after each part it sends the 8-byte big-endian count received).
// With --proto udp the socket is a connected UDP socket; A and B each send
// datagrams of exactly --size bytes (N1 and N2 must be multiples of it), in
// lock-step with the 8-byte replies of `pdtt-traffic serve --proto udp`
// (each datagram starts with the u64 reply size it asks for).
//
// Output: daemons and sink print "ready port=P" (flushed) once listening;
// every process that takes a connection over prints "owner pid=PID uid=UID
// euid=EUID" before it moves a byte. Errors are one line on stderr; the exit
// status is 0 only if every byte was moved, 2 on a bad command line.

#include "cli.hpp"
#include "fd.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kBanner = 64;
constexpr std::size_t kHello = 32;
constexpr std::size_t kGreeting = 16;
constexpr std::size_t kConfirm = 8;
constexpr std::size_t kMaxDatagram = 65507;

using namespace pdtt::tool;
using pdtt::Fd;

// ---- command line ----

const char* kUsage = "usage: pdtt-handover fork-setuid|seteuid|scm-rights --bind ADDR --port P --uid U\n"
                     "                     --rx N --tx M [--count C] [--timeout-ms MS]\n"
                     "       pdtt-handover client --to ADDR --port P --tx N --rx M [--timeout-ms MS]\n"
                     "       pdtt-handover two-writers --to ADDR --port P --uid A --uid-b B --tx N1\n"
                     "                     --tx-b N2 [--proto tcp|udp] [--size S] [--timeout-ms MS]\n"
                     "       pdtt-handover sink --bind ADDR --port P --parts N1,N2,... [--timeout-ms MS]\n";

const std::vector<std::string> kDaemonOptions = {"bind", "port", "uid", "rx", "tx", "count", "timeout-ms"};
const std::vector<Mode> kModes = {
    {"fork-setuid", kDaemonOptions},
    {"seteuid", kDaemonOptions},
    {"scm-rights", kDaemonOptions},
    {"client", {"to", "port", "tx", "rx", "timeout-ms"}},
    {"two-writers", {"to", "port", "uid", "uid-b", "tx", "tx-b", "proto", "size", "timeout-ms"}},
    {"sink", {"bind", "port", "parts", "timeout-ms"}},
};

// ---- sockets ----

std::uint64_t g_timeout_ms = 30000;

// Blocks until the peer closes; anything it still sends is an error.
void wait_eof(int fd) {
    char c;
    ssize_t r;
    while ((r = ::recv(fd, &c, 1, 0)) < 0 && errno == EINTR) {
    }
    if (r != 0)
        throw Error(r > 0 ? std::string("peer sent more than announced") : errno_text("waiting for the peer's close"));
}

Fd listen_on(const Args& a) {
    Addr addr = resolve(a.need("bind"), a.need_num("port"));
    Fd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0)
        throw Error(errno_text("socket"));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0)
        throw Error(errno_text("bind"));
    if (::listen(fd.get(), 64) != 0)
        throw Error(errno_text("listen"));
    std::printf("ready port=%u\n", bound_port(fd.get()));
    std::fflush(stdout);
    return fd;
}

Fd accept_one(int lfd) {
    for (;;) {
        int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
            set_timeouts(c, g_timeout_ms);
            return Fd(c);
        }
        if (errno != EINTR && errno != ECONNABORTED)
            throw Error(errno_text("accept"));
    }
}

Fd connect_to(const Addr& to, int type) {
    Fd fd(::socket(to.family(), type | SOCK_CLOEXEC, 0));
    if (fd.get() < 0)
        throw Error(errno_text("socket"));
    set_timeouts(fd.get(), g_timeout_ms);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to.ss), to.len) != 0)
        throw Error(errno_text("connect"));
    return fd;
}

// ---- identities ----

gid_t gid_of(uid_t uid) {
    if (passwd* pw = getpwuid(uid))
        return pw->pw_gid;
    return static_cast<gid_t>(uid);
}

// Effective ids only: the real uid stays root and could switch back.
void become_effective(uid_t uid) {
    if (setgroups(0, nullptr) != 0 || setegid(gid_of(uid)) != 0 || seteuid(uid) != 0)
        throw Error(errno_text("cannot seteuid " + std::to_string(uid)));
    if (getuid() != 0 || geteuid() != uid)
        throw Error("seteuid did not take effect");
}

void say_owner() {
    std::printf("owner pid=%d uid=%u euid=%u\n", static_cast<int>(getpid()), getuid(), geteuid());
    std::fflush(stdout);
}

// ---- passing a socket (SCM_RIGHTS) ----

void send_fd(int chan, int fd) {
    char byte = 'f';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof(ctl);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    while (::sendmsg(chan, &m, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            throw Error(errno_text("sendmsg SCM_RIGHTS"));
}

// The next socket from chan; an empty Fd when the sender closed.
Fd recv_fd(int chan) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof(ctl);
    ssize_t r;
    while ((r = ::recvmsg(chan, &m, MSG_CMSG_CLOEXEC)) < 0)
        if (errno != EINTR)
            throw Error(errno_text("recvmsg SCM_RIGHTS"));
    if (r == 0)
        return Fd();
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        throw Error("recvmsg: no socket passed");
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return Fd(fd);
}

// ---- processes ----

// Runs fn in a forked child; the child's exit status says whether it worked.
template <class Fn> pid_t spawn(const char* who, Fn fn) {
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error(errno_text("fork"));
    if (pid > 0)
        return pid;
    int rc = 0;
    try {
        fn();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pdtt-handover %s: %s\n", who, e.what());
        rc = 1;
    }
    std::fflush(stdout);
    ::_exit(rc);
}

// Exit status of a child, 128 + signal when killed.
int reap(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            throw Error(errno_text("waitpid"));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// ---- the daemons ----

// What the user's process does with the connection it was given.
void serve_as_user(int fd, std::uint64_t rx, std::uint64_t tx) {
    say_owner();
    send_filled(fd, kGreeting, 'g', "greeting");
    read_exact(fd, nullptr, rx, "receive");
    send_filled(fd, tx, 'u', "send");
    wait_eof(fd);
}

int daemon_main(const Args& a) {
    const uid_t uid = static_cast<uid_t>(a.need_num("uid"));
    const std::uint64_t rx = a.need_num("rx"), tx = a.need_num("tx"), count = a.num("count", 1);
    if (geteuid() != 0)
        throw UsageError(a.mode + " must start as root");
    Fd lfd = listen_on(a);

    // scm-rights: the user's worker exists before any connection, as a
    // per-user server process would.
    Fd chan;
    pid_t worker = -1;
    if (a.mode == "scm-rights") {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            throw Error(errno_text("socketpair"));
        Fd mine(sv[0]), theirs(sv[1]);
        worker = spawn("worker", [&] {
            mine.reset();
            lfd.reset();
            drop_to(uid);
            for (;;) {
                Fd conn = recv_fd(theirs.get());
                if (conn.get() < 0)
                    break;
                serve_as_user(conn.get(), rx, tx);
            }
        });
        chan = std::move(mine);
    }

    int failed = 0;
    for (std::uint64_t n = 0; n < count; n++) {
        Fd conn = accept_one(lfd.get());
        send_filled(conn.get(), kBanner, 'b', "banner");
        read_exact(conn.get(), nullptr, kHello, "hello");
        if (a.mode == "scm-rights") {
            send_fd(chan.get(), conn.get());
            continue; // conn closes here: the worker holds the only copy
        }
        pid_t child = spawn("child", [&] {
            lfd.reset();
            if (a.mode == "fork-setuid")
                drop_to(uid);
            else
                become_effective(uid);
            serve_as_user(conn.get(), rx, tx);
        });
        conn.reset();
        failed += reap(child) != 0;
    }
    if (worker > 0) {
        chan.reset(); // the worker's recv_fd sees EOF and it exits
        failed += reap(worker) != 0;
    }
    return failed ? 1 : 0;
}

int client_main(const Args& a) {
    Addr to = resolve(a.need("to"), a.need_num("port"));
    const std::uint64_t tx = a.need_num("tx"), rx = a.need_num("rx");
    Fd fd = connect_to(to, SOCK_STREAM);
    read_exact(fd.get(), nullptr, kBanner, "banner");
    send_filled(fd.get(), kHello, 'h', "hello");
    read_exact(fd.get(), nullptr, kGreeting, "greeting");
    send_filled(fd.get(), tx, 'c', "send");
    read_exact(fd.get(), nullptr, rx, "receive");
    std::printf("tx=%llu rx=%llu banner=%zu hello=%zu greeting=%zu\n", (unsigned long long)tx, (unsigned long long)rx,
                kBanner, kHello, kGreeting);
    return 0;
}

// ---- two writers on one socket ----

// Until the kernel holds no unacknowledged or unsent byte of ours.
void wait_acked(int fd) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(g_timeout_ms);
    for (;;) {
        int outq = 0;
        if (::ioctl(fd, SIOCOUTQ, &outq) != 0)
            throw Error(errno_text("ioctl SIOCOUTQ"));
        if (outq == 0)
            return;
        if (std::chrono::steady_clock::now() > deadline)
            throw Error("SIOCOUTQ still " + std::to_string(outq) + " bytes at the timeout");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

void expect_confirm(int fd, std::uint64_t want) {
    unsigned char c[kConfirm];
    read_exact(fd, c, sizeof(c), "confirmation");
    if (std::uint64_t got = get_be64(c); got != want)
        throw Error("the peer confirmed " + std::to_string(got) + " bytes, not " + std::to_string(want));
}

// Datagrams of exactly size bytes, each answered with a kConfirm-byte reply.
void send_datagrams(int fd, std::uint64_t total, std::uint64_t size) {
    std::vector<unsigned char> buf(size, 'd'), in(kMaxDatagram + 1);
    put_be64(buf.data(), kConfirm);
    for (std::uint64_t sent = 0; sent < total; sent += size) {
        if (::send(fd, buf.data(), size, 0) != static_cast<ssize_t>(size))
            throw Error(errno_text("udp send"));
        ssize_t r = ::recv(fd, in.data(), in.size(), 0);
        if (r < 0)
            throw Error(errno == EAGAIN ? std::string("udp reply: timed out (lost?)") : errno_text("udp recv"));
        if (static_cast<std::size_t>(r) != kConfirm)
            throw Error("udp reply of " + std::to_string(r) + " bytes");
    }
}

int two_writers_main(const Args& a) {
    Addr to = resolve(a.need("to"), a.need_num("port"));
    const uid_t uid_a = static_cast<uid_t>(a.need_num("uid")), uid_b = static_cast<uid_t>(a.need_num("uid-b"));
    const std::uint64_t n1 = a.need_num("tx"), n2 = a.need_num("tx-b"), size = a.num("size", 1000);
    const std::string proto = a.str("proto", "tcp");
    if (proto != "tcp" && proto != "udp")
        throw UsageError("--proto: tcp or udp, not '" + proto + "'");
    const bool udp = proto == "udp";
    if (udp && (size < 8 || size > kMaxDatagram || n1 % size || n2 % size))
        throw UsageError("udp: --size 8..65507, and --tx and --tx-b multiples of it");
    if (geteuid() != 0)
        throw UsageError("two-writers must start as root");

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        throw Error(errno_text("socketpair"));
    Fd chan_a(sv[0]), chan_b(sv[1]);
    pid_t b = spawn("writer B", [&] {
        chan_a.reset();
        drop_to(uid_b);
        Fd fd = recv_fd(chan_b.get());
        if (fd.get() < 0)
            throw Error("writer A handed nothing over");
        say_owner();
        if (udp) {
            send_datagrams(fd.get(), n2, size);
            return;
        }
        send_filled(fd.get(), n2, 'B', "send");
        expect_confirm(fd.get(), n2);
        ::shutdown(fd.get(), SHUT_WR);
        wait_eof(fd.get());
    });
    pid_t pa = spawn("writer A", [&] {
        chan_b.reset();
        drop_to(uid_a);
        Fd fd = connect_to(to, udp ? SOCK_DGRAM : SOCK_STREAM);
        say_owner();
        if (udp) {
            send_datagrams(fd.get(), n1, size);
        } else {
            send_filled(fd.get(), n1, 'A', "send");
            wait_acked(fd.get());
            expect_confirm(fd.get(), n1);
        }
        send_fd(chan_a.get(), fd.get());
    });
    chan_a.reset();
    chan_b.reset();
    int ra = reap(pa), rb = reap(b);
    return ra || rb ? 1 : 0;
}

// The peer of two-writers over TCP: reads each part, confirms its size.
int sink_main(const Args& a) {
    std::vector<std::uint64_t> parts;
    std::string list = a.need("parts");
    for (std::size_t pos = 0; pos <= list.size();) {
        std::size_t comma = std::min(list.find(',', pos), list.size());
        parts.push_back(Args::to_num("parts", list.substr(pos, comma - pos)));
        pos = comma + 1;
    }
    Fd lfd = listen_on(a);
    Fd conn = accept_one(lfd.get());
    lfd.reset();
    for (std::uint64_t p : parts) {
        read_exact(conn.get(), nullptr, p, "part");
        unsigned char c[kConfirm];
        put_be64(c, p);
        write_all(conn.get(), c, sizeof(c), "confirmation");
    }
    wait_eof(conn.get());
    return 0;
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
        g_timeout_ms = a.num("timeout-ms", g_timeout_ms);
        if (a.mode == "client")
            return client_main(a);
        if (a.mode == "two-writers")
            return two_writers_main(a);
        if (a.mode == "sink")
            return sink_main(a);
        return daemon_main(a);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "pdtt-handover: %s (see --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pdtt-handover: %s\n", e.what());
        return 1;
    }
}
