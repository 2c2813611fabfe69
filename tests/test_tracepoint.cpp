// The TCP state tracepoint (pdtt_state_btf in kern/pdtt.bpf.c), tested the
// only way a tracepoint can be: real connections. Every test case moves
// this process into a fresh network namespace (unshare), loads the
// skeleton with target_netns set to it and only the tracepoint program
// attached, and drives both ends of each connection from forked children
// running as distinct test users, so owner uid, pid and comm are known.
// Needs root (BPF, namespaces, useradd).
#define BOOST_TEST_MODULE tracepoint
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/data/monomorphic.hpp>

#include "netns.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pdtt.h"
#include "pdtt.skel.h"
#include "skeleton.hpp"

#include <memory>

using namespace pdtt::test;

namespace {

constexpr auto kStep = std::chrono::seconds(5); // generous per-step timeout

// What tcp_sock.bytes_acked / bytes_received hold beyond the payload once
// the socket reaches TCP_CLOSE after an orderly close (pinned by running
// only_seen_flows_emit_flow_close_with_tcp_totals on 6.18): sequence
// space of SYN and FIN. The active opener counts its SYN as acked (tcp_ack
// in SYN_SENT); the passive child is created with its SYN-ACK already
// acked. Both count their own FIN as acked and the peer's FIN as received.
constexpr uint64_t kAckedExtraActive = 2;  // SYN + FIN
constexpr uint64_t kAckedExtraPassive = 1; // FIN
constexpr uint64_t kReceivedExtra = 1;     // peer's FIN

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void check(bool ok, const std::string& what) {
    if (!ok)
        throw std::runtime_error(errno_text(what));
}

// Brings lo up in the current namespace without spawning anything.
void lo_up() {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    check(fd >= 0, "socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    ::close(fd);
    check(ok, "bring lo up");
}

// ---- global state: root check, stale leftovers, test users ----

struct Globals {
    Globals() {
        if (::geteuid() != 0)
            throw std::runtime_error("test_tracepoint needs root (BPF, namespaces, useradd)");
        cleanup_stale();
        user1 = std::make_unique<TestUser>("pdtt-test1");
        user2 = std::make_unique<TestUser>("pdtt-test2");
        orig_netns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        check(orig_netns >= 0, "open /proc/self/ns/net");
    }
    ~Globals() {
        user2.reset();
        user1.reset();
        ::close(orig_netns);
    }
    static inline std::unique_ptr<TestUser> user1, user2;
    static inline int orig_netns = -1;
};
BOOST_TEST_GLOBAL_FIXTURE(Globals);

// ---- a forked child driven line by line over two pipes ----

class Chan {
public:
    Chan(int in, int out) : in_(in), out_(out) {}
    void send(const std::string& line) const {
        std::string l = line + "\n";
        check(::write(out_, l.data(), l.size()) == (ssize_t)l.size(), "chan write");
    }
    // Next line; "" on EOF or timeout.
    std::string recv(std::chrono::milliseconds timeout = kStep) {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            pollfd p{in_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                return "";
            char b[256];
            ssize_t n = ::read(in_, b, sizeof(b));
            if (n <= 0)
                return "";
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    // Waits for a line starting with word; returns the rest. Throws on
    // anything else, with the child's error text when it sent one.
    std::string expect(const std::string& word) {
        std::string l = recv();
        if (l.rfind(word, 0) != 0)
            throw std::runtime_error("expected '" + word + "' from child, got '" + l + "'");
        return l.size() > word.size() ? l.substr(word.size() + 1) : "";
    }

private:
    int in_, out_;
    std::string buf_;
};

class Child {
public:
    explicit Child(const std::function<void(Chan&)>& fn) {
        int to[2], from[2];
        check(::pipe2(to, O_CLOEXEC) == 0 && ::pipe2(from, O_CLOEXEC) == 0, "pipe");
        pid_ = ::fork();
        check(pid_ >= 0, "fork");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close(to[1]);
            ::close(from[0]);
            Chan ch(to[0], from[1]);
            int rc = 0;
            try {
                fn(ch);
            } catch (const std::exception& e) {
                try {
                    ch.send(std::string("ERR ") + e.what());
                } catch (...) {
                }
                rc = 1;
            }
            ::_exit(rc);
        }
        ::close(to[0]);
        ::close(from[1]);
        chan_ = std::make_unique<Chan>(from[0], to[1]);
        in_ = from[0];
        out_ = to[1];
    }
    ~Child() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(in_);
        ::close(out_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    void send(const std::string& l) { chan_->send(l); }
    std::string expect(const std::string& w) { return chan_->expect(w); }
    // Exit status, -1 on timeout.
    int wait() {
        int st = 0;
        bool done = wait_until([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, kStep);
        if (!done)
            return -1;
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }

private:
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1;
    bool reaped_ = false;
    std::unique_ptr<Chan> chan_;
};

// ---- socket helpers used inside children ----

struct Sockaddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

Sockaddr make_addr(int family, const std::string& ip, uint16_t port) {
    Sockaddr a;
    if (family == AF_INET) {
        auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        check(::inet_pton(AF_INET, ip.c_str(), &s->sin_addr) == 1, "inet_pton " + ip);
        a.len = sizeof(*s);
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(port);
        check(::inet_pton(AF_INET6, ip.c_str(), &s->sin6_addr) == 1, "inet_pton " + ip);
        a.len = sizeof(*s);
    }
    return a;
}

// "addr port" of a socket's local or peer end.
std::string endpoint(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    check((peer ? ::getpeername : ::getsockname)(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0, "getsockname");
    char buf[INET6_ADDRSTRLEN] = "";
    uint16_t port;
    if (ss.ss_family == AF_INET) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
        port = ntohs(s->sin_port);
    } else {
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
        port = ntohs(s->sin6_port);
    }
    return std::string(buf) + " " + std::to_string(port);
}

void become(const TestUser* u, const char* comm) {
    if (u)
        check(::setgroups(0, nullptr) == 0 && ::setgid(u->gid()) == 0 && ::setuid(u->uid()) == 0,
              "drop to " + u->name());
    ::prctl(PR_SET_NAME, comm);
}

void write_n(int fd, std::size_t n) {
    std::vector<char> buf(64 * 1024, 'x');
    while (n > 0) {
        ssize_t w = ::send(fd, buf.data(), std::min(n, buf.size()), MSG_NOSIGNAL);
        check(w > 0, "send");
        n -= static_cast<std::size_t>(w);
    }
}

void read_n(int fd, std::size_t n) {
    std::vector<char> buf(64 * 1024);
    while (n > 0) {
        ssize_t r = ::recv(fd, buf.data(), std::min(n, buf.size()), 0);
        check(r > 0, "recv (or early EOF)");
        n -= static_cast<std::size_t>(r);
    }
}

struct ServerSpec {
    int family = AF_INET;
    std::string bind = "127.0.0.1";
    bool v6only = true;
    const TestUser* user = nullptr; // nullptr: stays root
    const char* comm = "pdtt-srv";
    int conns = 1;
    std::size_t rx = 0, tx = 0; // per connection, from the server's view
};

// Child: listen, report "L port", accept conns connections ("A"), move the
// bytes ("X"), close everything on "C" ("D").
void server_main(Chan& ch, const ServerSpec& s) {
    become(s.user, s.comm);
    int l = ::socket(s.family, SOCK_STREAM, 0);
    check(l >= 0, "socket");
    int v = s.v6only ? 1 : 0;
    if (s.family == AF_INET6)
        check(::setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)) == 0, "IPV6_V6ONLY");
    Sockaddr a = make_addr(s.family, s.bind, 0);
    check(::bind(l, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0, "bind");
    check(::listen(l, 16) == 0, "listen");
    ch.send("L " + endpoint(l, false).substr(endpoint(l, false).rfind(' ') + 1));
    std::vector<int> cs;
    for (int i = 0; i < s.conns; i++) {
        int c = ::accept(l, nullptr, nullptr);
        check(c >= 0, "accept");
        cs.push_back(c);
        ch.send("A");
    }
    for (int c : cs) {
        read_n(c, s.rx);
        write_n(c, s.tx);
    }
    ch.send("X");
    ch.expect("C");
    for (int c : cs)
        ::close(c);
    ::close(l);
    ch.send("D");
    ch.expect("Q");
}

struct ClientSpec {
    int family = AF_INET;
    std::string to = "127.0.0.1";
    uint16_t port = 0;
    const TestUser* user = nullptr;
    const char* comm = "pdtt-cli";
    std::size_t tx = 0, rx = 0;
};

// Child: connect, report "E laddr lport", move the bytes ("X"), close on
// "C" ("D").
void client_main(Chan& ch, const ClientSpec& s) {
    become(s.user, s.comm);
    int fd = ::socket(s.family, SOCK_STREAM, 0);
    check(fd >= 0, "socket");
    Sockaddr a = make_addr(s.family, s.to, s.port);
    check(::connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0, "connect");
    ch.send("E " + endpoint(fd, false));
    write_n(fd, s.tx);
    read_n(fd, s.rx);
    ch.send("X");
    ch.expect("C");
    ::close(fd);
    ch.send("D");
    ch.expect("Q");
}

// ---- the BPF side ----

// 16-byte key address from a literal; IPv4 is stored IPv4-mapped.
std::array<uint8_t, 16> addr16(const std::string& ip) {
    std::array<uint8_t, 16> a{};
    if (ip.find(':') != std::string::npos) {
        check(::inet_pton(AF_INET6, ip.c_str(), a.data()) == 1, "inet_pton " + ip);
    } else {
        a[10] = a[11] = 0xff;
        check(::inet_pton(AF_INET, ip.c_str(), a.data() + 12) == 1, "inet_pton " + ip);
    }
    return a;
}

std::string comm_of(const char (&c)[PDTT_COMM_LEN]) { return std::string(c, strnlen(c, PDTT_COMM_LEN)); }

// One test case's world: a private netns, the tracepoint program loaded
// for it, and the ring buffer. Leaves the namespace again on destruction.
struct TracepointFixture {
    // monitor_lo: whether lo is a monitored interface, so that flows over
    // it take a slot (they take none otherwise).
    explicit TracepointFixture(bool monitor_lo = true) {
        check(::unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET)");
        lo_up();
        struct stat st {};
        check(::stat("/proc/self/ns/net", &st) == 0, "stat /proc/self/ns/net");
        netns = static_cast<uint32_t>(st.st_ino);

        // Throws pdtt::Error when the open or the load fails.
        skel = pdtt::load_skeleton([this](pdtt_bpf& s) {
            for (bpf_program* p : {s.progs.pdtt_xdp, s.progs.pdtt_egress, s.progs.pdtt_state_tp})
                bpf_program__set_autoload(p, false);
            s.rodata->target_netns = netns;
        });
        if (monitor_lo) {
            uint32_t lo = 1, one = 1; /* lo is ifindex 1 in a new namespace */
            check(bpf_map_update_elem(bpf_map__fd(skel->maps.monitored), &lo, &one, BPF_ANY) == 0, "monitored[lo]");
        }
        link.reset(bpf_program__attach(skel->progs.pdtt_state_btf));
        BOOST_REQUIRE_MESSAGE(link, "attaching pdtt_state_btf failed");
        flows_fd = bpf_map__fd(skel->maps.flows);
        ring.reset(ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, this, nullptr));
        BOOST_REQUIRE_MESSAGE(ring, "ring_buffer__new failed");
    }
    ~TracepointFixture() {
        ring.reset();
        link.reset();
        skel.reset();
        if (::setns(Globals::orig_netns, CLONE_NEWNET) != 0)
            std::fprintf(stderr, "cannot return to the original netns\n");
    }

    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<TracepointFixture*>(ctx);
        if (size != sizeof(pdtt_event)) {
            self->bad_sizes++;
            return 0;
        }
        pdtt_event e;
        std::memcpy(&e, data, sizeof(e));
        self->events.push_back(e);
        return 0;
    }

    // Everything submitted so far (the program suppresses wake-ups).
    std::vector<pdtt_event> drain() {
        events.clear();
        ring_buffer__consume(ring.get());
        return events;
    }

    pdtt_flow_key key(const std::string& laddr, uint16_t lport, const std::string& raddr, uint16_t rport) const {
        pdtt_flow_key k{};
        auto l = addr16(laddr), r = addr16(raddr);
        std::memcpy(k.laddr, l.data(), 16);
        std::memcpy(k.raddr, r.data(), 16);
        k.netns = netns;
        k.lport = lport;
        k.rport = rport;
        k.proto = IPPROTO_TCP;
        return k;
    }

    std::optional<pdtt_flow> lookup(const pdtt_flow_key& k) const {
        pdtt_flow f{};
        if (bpf_map_lookup_elem(flows_fd, &k, &f) != 0)
            return std::nullopt;
        return f;
    }

    std::size_t flow_count() const {
        std::size_t n = 0;
        pdtt_flow_key k{}, next{};
        for (const void* prev = nullptr; bpf_map_get_next_key(flows_fd, prev, &next) == 0; prev = &k, n++)
            k = next;
        return n;
    }

    // Every entry, one per line, for failure messages.
    std::string dump() const {
        std::ostringstream o;
        pdtt_flow_key k{}, next{};
        for (const void* prev = nullptr; bpf_map_get_next_key(flows_fd, prev, &next) == 0; prev = &k) {
            k = next;
            char l[INET6_ADDRSTRLEN], r[INET6_ADDRSTRLEN];
            ::inet_ntop(AF_INET6, k.laddr, l, sizeof(l));
            ::inet_ntop(AF_INET6, k.raddr, r, sizeof(r));
            o << "\n  [" << l << "]:" << k.lport << " -> [" << r << "]:" << k.rport << " netns=" << k.netns
              << " proto=" << int(k.proto);
            if (auto f = lookup(k))
                o << " uid=" << f->uid << " pid=" << f->pid << " comm=" << comm_of(f->comm)
                  << " dir=" << int(f->direction) << " family=" << f->family;
        }
        return o.str();
    }

    void mark_seen(const pdtt_flow_key& k) const {
        auto f = lookup(k);
        BOOST_REQUIRE_MESSAGE(f, "flow to mark seen exists");
        f->seen = 1;
        BOOST_REQUIRE(bpf_map_update_elem(flows_fd, &k, &*f, BPF_EXIST) == 0);
    }

    uint64_t stat(pdtt_stat idx) const {
        int n = libbpf_num_possible_cpus();
        std::vector<uint64_t> v(static_cast<std::size_t>(n));
        uint32_t i = idx;
        if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &i, v.data()) != 0)
            return ~0ull;
        uint64_t sum = 0;
        for (auto x : v)
            sum += x;
        return sum;
    }

    pdtt::Skeleton skel;
    pdtt::BpfLink link;
    pdtt::RingBuffer ring;
    uint32_t netns = 0;
    int flows_fd = -1;
    std::vector<pdtt_event> events;
    int bad_sizes = 0;
};

// One open connection between a server child and a client child.
struct Connection {
    std::unique_ptr<Child> server, client;
    std::string caddr, saddr; // as the client sees them
    uint16_t cport = 0, sport = 0;

    Connection(ServerSpec ss, ClientSpec cs) {
        server = std::make_unique<Child>([ss](Chan& ch) { server_main(ch, ss); });
        cs.port = sport = static_cast<uint16_t>(std::stoi(server->expect("L")));
        saddr = cs.to;
        client = std::make_unique<Child>([cs](Chan& ch) { client_main(ch, cs); });
        std::istringstream e(client->expect("E"));
        e >> caddr >> cport;
        server->expect("A");
        client->expect("X");
        server->expect("X");
    }
    // Client closes first (active close), then the server.
    void close() {
        client->send("C");
        client->expect("D");
        server->send("C");
        server->expect("D");
        client->send("Q");
        server->send("Q");
        BOOST_CHECK_EQUAL(client->wait(), 0);
        BOOST_CHECK_EQUAL(server->wait(), 0);
    }
};

struct OwnerCase {
    const char* name;
    int server_family;
    const char* server_bind;
    bool v6only;
    int client_family;
    const char* connect_to;
    uint16_t shown_family; // what pdtt_flow.family must say
};

const OwnerCase kOwnerCases[] = {
    {"ipv4", AF_INET, "127.0.0.1", true, AF_INET, "127.0.0.1", AF_INET},
    {"ipv6", AF_INET6, "::1", true, AF_INET6, "::1", AF_INET6},
    {"ipv4-mapped client socket", AF_INET, "127.0.0.1", true, AF_INET6, "::ffff:127.0.0.1", AF_INET},
    {"dual-stack listener, ipv4 client", AF_INET6, "::", false, AF_INET, "127.0.0.1", AF_INET},
};

std::ostream& operator<<(std::ostream& o, const OwnerCase& c) { return o << c.name; }

} // namespace

// One case per address family combination; each in its own namespace.
BOOST_DATA_TEST_CASE(established_flows_carry_owner_direction_and_family, boost::unit_test::data::make(kOwnerCases), c) {
    TracepointFixture fx;
    ServerSpec ss{c.server_family, c.server_bind, c.v6only, Globals::user2.get(), "pdtt-srv", 1, 1000, 2000};
    ClientSpec cs{c.client_family, c.connect_to, 0, Globals::user1.get(), "pdtt-cli", 1000, 2000};
    Connection conn(ss, cs);
    // Keys as the kernel sees them: IPv4-mapped literals compare equal to IPv4.
    auto ck = fx.key(conn.caddr, conn.cport, conn.saddr, conn.sport);
    auto sk = fx.key(conn.saddr, conn.sport, conn.caddr, conn.cport);

    BOOST_TEST(fx.flow_count() == 2u, "exactly the two ends of the connection are in flows");
    auto cf = fx.lookup(ck);
    BOOST_REQUIRE_MESSAGE(cf, "client end " << conn.caddr << ":" << conn.cport << " in flows; flows:" << fx.dump());
    BOOST_TEST(cf->uid == Globals::user1->uid(), "client uid is the socket owner's");
    BOOST_TEST(cf->direction == PDTT_DIR_OUTBOUND, "client direction is outbound");
    BOOST_TEST(cf->pid == (uint32_t)conn.client->pid(), "client pid is the connecting process");
    BOOST_TEST(comm_of(cf->comm) == "pdtt-cli", "client comm is the connecting process's");
    BOOST_TEST(cf->family == c.shown_family, "client family as shown to users");
    BOOST_TEST(cf->open_ns > 0u, "client open_ns set");
    BOOST_TEST(cf->seen == 0u, "nothing crossed a monitored interface yet");
    BOOST_TEST(cf->cnt.tx_bytes + cf->cnt.rx_bytes == 0u, "tracepoint does not count bytes");

    auto sf = fx.lookup(sk);
    BOOST_REQUIRE_MESSAGE(sf, "server end " << conn.saddr << ":" << conn.sport << " in flows; flows:" << fx.dump());
    BOOST_TEST(sf->uid == Globals::user2->uid(), "server uid is the listening socket owner's");
    BOOST_TEST(sf->direction == PDTT_DIR_INBOUND, "server direction is inbound");
    BOOST_TEST(sf->pid == (uint32_t)conn.server->pid(), "server pid is the process that called listen()");
    BOOST_TEST(comm_of(sf->comm) == "pdtt-srv", "server comm is the listener's");
    BOOST_TEST(sf->family == c.shown_family, "server family as shown to users");

    conn.close();
    BOOST_TEST(wait_until([&] { return fx.flow_count() == 0; }, kStep),
               "both entries leave flows after close; left:" << fx.dump());
    BOOST_TEST(fx.drain().empty(), "flows never seen by XDP/tc emit no FLOW_CLOSE");
    BOOST_TEST(fx.stat(PDTT_STAT_FLOW_FULL) == 0u);
    BOOST_TEST(fx.bad_sizes == 0);
}

// Expected FLOW_CLOSE for one end: identity from the flow, tcp totals from
// the kernel (see kAckedExtraActive).
void check_close(const pdtt_event& e, const pdtt_flow_key& k, uid_t uid, pid_t pid, const char* comm, uint8_t dir,
                 std::size_t sent, std::size_t received) {
    uint64_t acked_extra = dir == PDTT_DIR_OUTBOUND ? kAckedExtraActive : kAckedExtraPassive;
    BOOST_TEST(e.type == PDTT_EV_FLOW_CLOSE, "record type is FLOW_CLOSE");
    BOOST_TEST(std::memcmp(&e.key, &k, sizeof(k)) == 0, "FLOW_CLOSE carries the flow's key");
    BOOST_TEST(e.uid == uid, "FLOW_CLOSE uid is the socket owner's");
    BOOST_TEST(e.pid == (uint32_t)pid);
    BOOST_TEST(comm_of(e.comm) == comm);
    BOOST_TEST(e.direction == dir);
    BOOST_TEST(e.family == AF_INET);
    BOOST_TEST(e.open_ns > 0u);
    BOOST_TEST(e.ts_ns >= e.open_ns, "closed after it opened");
    BOOST_TEST_MESSAGE("tcp_bytes_acked=" << e.tcp_bytes_acked << " (sent " << sent << "), tcp_bytes_received="
                                          << e.tcp_bytes_received << " (received " << received << ")");
    BOOST_TEST(e.tcp_bytes_acked == sent + acked_extra, "bytes_acked: payload + our SYN/FIN");
    BOOST_TEST(e.tcp_bytes_received == received + kReceivedExtra, "bytes_received: payload + the peer's FIN");
}

BOOST_AUTO_TEST_CASE(only_seen_flows_emit_flow_close_with_tcp_totals) {
    constexpr std::size_t up = 50000, down = 70001;
    for (bool both : {false, true}) {
        BOOST_TEST_CONTEXT((both ? "both ends seen" : "client end seen")) {
            TracepointFixture fx;
            ServerSpec ss{AF_INET, "127.0.0.1", true, Globals::user2.get(), "pdtt-srv", 1, up, down};
            ClientSpec cs{AF_INET, "127.0.0.1", 0, Globals::user1.get(), "pdtt-cli", up, down};
            Connection conn(ss, cs);
            auto ck = fx.key(conn.caddr, conn.cport, conn.saddr, conn.sport);
            auto sk = fx.key(conn.saddr, conn.sport, conn.caddr, conn.cport);
            fx.mark_seen(ck);
            if (both)
                fx.mark_seen(sk);
            conn.close();
            BOOST_TEST(wait_until([&] { return fx.flow_count() == 0; }, kStep), "entries gone after close");
            auto ev = fx.drain();
            BOOST_REQUIRE_EQUAL(ev.size(), both ? 2u : 1u);
            BOOST_TEST(fx.stat(PDTT_STAT_EVENTS) == ev.size(), "EVENTS stat counts the records");
            BOOST_TEST(fx.stat(PDTT_STAT_RB_DROPS) == 0u);
            for (const pdtt_event& e : ev) {
                bool is_client = std::memcmp(&e.key, &ck, sizeof(ck)) == 0;
                BOOST_TEST_CONTEXT((is_client ? "client end" : "server end")) {
                    if (is_client)
                        check_close(e, ck, Globals::user1->uid(), conn.client->pid(), "pdtt-cli", PDTT_DIR_OUTBOUND, up,
                                    down);
                    else
                        check_close(e, sk, Globals::user2->uid(), conn.server->pid(), "pdtt-srv", PDTT_DIR_INBOUND,
                                    down, up);
                }
            }
            if (!both)
                BOOST_TEST(std::memcmp(&ev[0].key, &ck, sizeof(ck)) == 0, "the unseen server end stayed silent");
        }
    }
}

BOOST_AUTO_TEST_CASE(two_users_flows_each_carry_their_own_uid) {
    TracepointFixture fx;
    // Root server; two clients of different users connected at the same time.
    ServerSpec ss{AF_INET6, "::1", true, nullptr, "pdtt-srv", 2, 10, 20};
    Child server([ss](Chan& ch) { server_main(ch, ss); });
    auto port = static_cast<uint16_t>(std::stoi(server.expect("L")));
    struct C {
        const TestUser* u;
        const char* comm;
        std::unique_ptr<Child> child;
        std::string addr;
        uint16_t port = 0;
    } cl[2] = {{Globals::user1.get(), "pdtt-u1", {}, {}}, {Globals::user2.get(), "pdtt-u2", {}, {}}};
    for (C& c : cl) {
        ClientSpec cs{AF_INET6, "::1", port, c.u, c.comm, 10, 20};
        c.child = std::make_unique<Child>([cs](Chan& ch) { client_main(ch, cs); });
        std::istringstream e(c.child->expect("E"));
        e >> c.addr >> c.port;
        server.expect("A");
    }
    // Each client writes before the server (which serves sequentially) replies.
    for (C& c : cl)
        c.child->expect("X");
    server.expect("X");

    BOOST_TEST(fx.flow_count() == 4u, "two connections, two ends each");
    for (C& c : cl) {
        BOOST_TEST_CONTEXT("client " << c.u->name()) {
            auto f = fx.lookup(fx.key(c.addr, c.port, "::1", port));
            BOOST_REQUIRE(f);
            BOOST_TEST(f->uid == c.u->uid(), "client end owned by its own user");
            BOOST_TEST(comm_of(f->comm) == c.comm);
            BOOST_TEST(f->pid == (uint32_t)c.child->pid());
            auto s = fx.lookup(fx.key("::1", port, c.addr, c.port));
            BOOST_REQUIRE(s);
            BOOST_TEST(s->uid == 0u, "server end owned by root, whoever the client is");
            BOOST_TEST(s->pid == (uint32_t)server.pid());
        }
    }
    for (C& c : cl) {
        c.child->send("C");
        c.child->expect("D");
        c.child->send("Q");
        BOOST_TEST(c.child->wait() == 0);
    }
    server.send("C");
    server.expect("D");
    server.send("Q");
    BOOST_TEST(server.wait() == 0);
    BOOST_TEST(wait_until([&] { return fx.flow_count() == 0; }, kStep), "all entries gone");
}

// Child: a connection with itself on 127.0.0.1, optionally in a new netns.
void self_pair_main(Chan& ch, bool own_netns) {
    if (own_netns) {
        check(::unshare(CLONE_NEWNET) == 0, "unshare");
        lo_up();
    }
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    Sockaddr a = make_addr(AF_INET, "127.0.0.1", 0);
    check(l >= 0 && ::bind(l, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0 && ::listen(l, 1) == 0, "listen");
    socklen_t len = sizeof(a.ss);
    check(::getsockname(l, reinterpret_cast<sockaddr*>(&a.ss), &len) == 0, "getsockname");
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    check(c >= 0 && ::connect(c, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0, "connect");
    int s = ::accept(l, nullptr, nullptr);
    check(s >= 0, "accept");
    ch.send("E");
    ch.expect("C");
    ::close(c);
    ::close(s);
    ::close(l);
    ch.send("D");
}

BOOST_AUTO_TEST_CASE(sockets_in_another_netns_create_no_entry) {
    TracepointFixture fx;
    // The other namespace first, so the control cannot leave entries behind for it.
    for (bool other : {true, false}) {
        BOOST_TEST_CONTEXT((other ? "connection in another netns" : "control: target netns")) {
            Child c([other](Chan& ch) { self_pair_main(ch, other); });
            c.expect("E");
            BOOST_TEST(fx.flow_count() == (other ? 0u : 2u), "entries only for sockets in target_netns");
            c.send("C");
            c.expect("D");
            BOOST_TEST(c.wait() == 0);
            BOOST_TEST(wait_until([&] { return fx.flow_count() == 0; }, kStep));
        }
    }
}

// No user can fill the flow table through interfaces nobody monitors.
BOOST_AUTO_TEST_CASE(flows_that_cross_no_monitored_interface_take_no_slot) {
    TracepointFixture fx(false);
    Child c([](Chan& ch) { self_pair_main(ch, false); });
    c.expect("E");
    BOOST_TEST(fx.flow_count() == 0u, "loopback connection with lo unmonitored");
    c.send("C");
    c.expect("D");
    BOOST_TEST(c.wait() == 0);
}

BOOST_AUTO_TEST_CASE(refused_connect_leaves_no_state) {
    TracepointFixture fx;
    Child c([](Chan& ch) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        Sockaddr a = make_addr(AF_INET, "127.0.0.1", 9); // nobody listens here
        bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0 && errno == ECONNREFUSED;
        ch.send(refused ? "R" : "ERR connect was not refused");
    });
    c.expect("R");
    BOOST_TEST(c.wait() == 0);
    BOOST_TEST(fx.flow_count() == 0u, "a connection that never established has no flow");
    uint64_t next = 0;
    BOOST_TEST(bpf_map_get_next_key(bpf_map__fd(fx.skel->maps.connecting), nullptr, &next) != 0,
               "SYN_SENT -> CLOSE removed the connecting entry");
    BOOST_TEST(fx.drain().empty());
}
