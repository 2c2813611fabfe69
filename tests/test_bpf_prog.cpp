// Data-path tests: synthetic frames through pdtt_xdp, pdtt_ingress and pdtt_egress with
// BPF_PROG_TEST_RUN, no interface attached. Each table row names a frame and
// the exact counter change it must cause: one flow entry, the unattributed
// counters, or nothing at all. Needs root (loads BPF).
#define BOOST_TEST_MODULE bpf_prog
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <linux/securebits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pdtt.h"
#include "pdtt.skel.h"
#include "packets.hpp"
#include "skeleton.hpp"

namespace bdata = boost::unit_test::data;
using pkt::Frame;

// ---- ABI helpers ----

bool operator==(const pdtt_counters& a, const pdtt_counters& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

std::ostream& operator<<(std::ostream& os, const pdtt_counters& c) {
    return os << "{tx " << c.tx_bytes << " B/" << c.tx_packets << " pkt, rx " << c.rx_bytes << " B/" << c.rx_packets
              << " pkt}";
}

bool operator==(const pdtt_flow_key& a, const pdtt_flow_key& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

bool operator<(const pdtt_flow_key& a, const pdtt_flow_key& b) { return std::memcmp(&a, &b, sizeof(a)) < 0; }

namespace {

// The test's own private network namespace, made before anything else runs
// (so no host service holds the ports the frames use), with lo up. The data
// path copies its inode into keys and checks a sending socket against it;
// 0 if it could not be made (Bpf() then fails).
__u32 host_netns = 0; // the namespace the test started in
const __u32 kNetns = [] {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) == 0)
        host_netns = static_cast<__u32>(st.st_ino);
    if (::unshare(CLONE_NEWNET) != 0)
        return 0u;
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool up = fd >= 0 && ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    up = up && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    if (fd >= 0)
        ::close(fd);
    return up && ::stat("/proc/self/ns/net", &st) == 0 ? static_cast<__u32>(st.st_ino) : 0u;
}();

// A flow the tests talk about; inserted ones stand for sockets the
// tracepoint already saw.
struct Known {
    const char* name;
    pdtt_flow_key key;
    bool inserted;
};

pdtt_flow_key make_key(const pkt::Addr& laddr, const pkt::Addr& raddr, __u16 lport, __u16 rport, __u8 proto,
                       __u32 netns = kNetns) {
    pdtt_flow_key k{};
    std::memcpy(k.laddr, laddr.data(), 16);
    std::memcpy(k.raddr, raddr.data(), 16);
    k.lport = lport;
    k.rport = rport;
    k.proto = proto;
    k.netns = netns;
    return k;
}

const Known tcp4{"tcp4", make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 7), 40000, 443, IPPROTO_TCP), true};
const Known tcp6{"tcp6", make_key(pkt::v6("2001:db8::1"), pkt::v6("2001:db8::2"), 40001, 443, IPPROTO_TCP), true};
const Known udp4{"udp4", make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 53), 5353, 53, IPPROTO_UDP), true};
const Known udp6{"udp6", make_key(pkt::v6("2001:db8::1"), pkt::v6("2001:db8::53"), 5354, 53, IPPROTO_UDP), true};
const Known tcp4_other_ns{"tcp4 in another netns",
                          make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 7), 40003, 443, IPPROTO_TCP, kNetns + 1),
                          true};
const Known tcp4_unknown{"tcp4 not in the map",
                         make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 7), 40002, 443, IPPROTO_TCP), false};
const Known udp4_unknown{"udp4 not in the map",
                         make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 53), 5355, 53, IPPROTO_UDP), false};

const Known* const kAllFlows[] = {&tcp4, &tcp6, &udp4, &udp6, &tcp4_other_ns, &tcp4_unknown, &udp4_unknown};

// Nonzero so that a program that overwrites instead of adding is caught.
pdtt_flow initial_value(const Known& k) {
    pdtt_flow f{};
    f.cnt = {1000, 2000, 10, 20};
    f.reported = {900, 1900, 9, 19};
    f.open_ns = 123456789;
    f.uid = 1000 + k.key.lport % 100;
    f.pid = 4242;
    f.family = k.key.laddr[10] == 0xff ? AF_INET : AF_INET6;
    f.direction = PDTT_DIR_OUTBOUND;
    std::strncpy(f.comm, "curl", sizeof(f.comm));
    return f;
}

std::string flow_name(const pdtt_flow_key& key) {
    for (const Known* k : kAllFlows)
        if (k->key == key)
            return k->name;
    return "unexpected key";
}

enum class Prog { xdp, tc, tc_ingress }; // tc: the egress program

bool is_ingress(Prog p) { return p != Prog::tc; }

std::ostream& operator<<(std::ostream& os, Prog p) {
    return os << (p == Prog::xdp ? "pdtt_xdp" : p == Prog::tc ? "pdtt_egress" : "pdtt_ingress");
}

// A frame of flow k as it crosses the program: ingress comes from the remote end.
Frame on(const Known& k, Prog p) {
    pkt::Addr l, r;
    std::copy(std::begin(k.key.laddr), std::end(k.key.laddr), l.begin());
    std::copy(std::begin(k.key.raddr), std::end(k.key.raddr), r.begin());
    if (is_ingress(p))
        return Frame(r, l, k.key.rport, k.key.lport);
    return Frame(l, r, k.key.lport, k.key.rport);
}

int expected_verdict(Prog p) { return p == Prog::xdp ? XDP_PASS : TC_ACT_UNSPEC; }

// ---- the loaded object, shared by every test ----

class Bpf {
public:
    Bpf() {
        if (kNetns == 0)
            throw std::runtime_error("cannot make a private network namespace with lo up (root needed)");
        ncpu_ = libbpf_num_possible_cpus();
        if (ncpu_ <= 0)
            throw std::runtime_error("libbpf_num_possible_cpus failed");
        lo_ = if_nametoindex("lo");
        // Throws pdtt::Error when the load fails (root needed).
        skel_ = pdtt::load_skeleton([](pdtt_bpf& s) { s.rodata->target_netns = kNetns; });
        rb_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), on_event, this, nullptr));
        if (!rb_)
            throw std::runtime_error(std::string("ring_buffer__new: ") + std::strerror(errno));
    }
    Bpf(const Bpf&) = delete;
    Bpf& operator=(const Bpf&) = delete;

    int prog_fd(Prog p) const {
        return bpf_program__fd(p == Prog::xdp  ? skel_->progs.pdtt_xdp
                               : p == Prog::tc ? skel_->progs.pdtt_egress
                                               : skel_->progs.pdtt_ingress);
    }
    int flows_fd() const { return bpf_map__fd(skel_->maps.flows); }
    int unattributed_fd() const { return bpf_map__fd(skel_->maps.unattributed); }
    int stats_fd() const { return bpf_map__fd(skel_->maps.stats); }
    int udp_owners_fd() const { return bpf_map__fd(skel_->maps.udp_owners); }
    // Writes to udp_owners so far: what a UDP flow notes when it looks.
    uint32_t owner_changes() const { return skel_->bss->owner_changes; }
    int ncpu() const { return ncpu_; }
    unsigned lo() const { return lo_; }

    std::vector<pdtt_event> drain() {
        events_.clear();
        int n = ring_buffer__consume(rb_.get());
        BOOST_TEST_REQUIRE(n >= 0, "ring_buffer__consume succeeded");
        return std::move(events_);
    }

private:
    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<Bpf*>(ctx);
        pdtt_event e{};
        BOOST_TEST(size == sizeof(e), "ring buffer record has the size of struct pdtt_event");
        std::memcpy(&e, data, std::min(size, sizeof(e)));
        self->events_.push_back(e);
        return 0;
    }

    pdtt::Skeleton skel_;
    pdtt::RingBuffer rb_; // after skel_: freed before it
    std::vector<pdtt_event> events_;
    int ncpu_ = 0;
    unsigned lo_ = 0;
};

Bpf& bpf() {
    static Bpf b; // a failed load throws, so every test reports it
    return b;
}

// ---- map state ----

struct Snapshot {
    std::vector<std::pair<pdtt_flow_key, pdtt_flow>> flows; // sorted by key
    pdtt_counters unattributed{};
    std::array<__u64, PDTT_STAT_MAX> stats{};
};

Snapshot snapshot() {
    Snapshot s;
    pdtt_flow_key key{}, next{};
    const pdtt_flow_key* prev = nullptr;
    while (bpf_map_get_next_key(bpf().flows_fd(), prev, &next) == 0) {
        pdtt_flow f{};
        BOOST_TEST_REQUIRE(bpf_map_lookup_elem(bpf().flows_fd(), &next, &f) == 0, "flows lookup");
        s.flows.emplace_back(next, f);
        key = next;
        prev = &key;
    }
    std::sort(s.flows.begin(), s.flows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

    std::vector<pdtt_counters> per_cpu(bpf().ncpu());
    __u32 zero = 0;
    BOOST_TEST_REQUIRE(bpf_map_lookup_elem(bpf().unattributed_fd(), &zero, per_cpu.data()) == 0, "unattributed lookup");
    for (const auto& c : per_cpu) {
        s.unattributed.tx_bytes += c.tx_bytes;
        s.unattributed.rx_bytes += c.rx_bytes;
        s.unattributed.tx_packets += c.tx_packets;
        s.unattributed.rx_packets += c.rx_packets;
    }

    std::vector<__u64> vals(bpf().ncpu());
    for (__u32 i = 0; i < PDTT_STAT_MAX; i++) {
        BOOST_TEST_REQUIRE(bpf_map_lookup_elem(bpf().stats_fd(), &i, vals.data()) == 0, "stats lookup");
        for (auto v : vals)
            s.stats[i] += v;
    }
    return s;
}

pdtt_flow lookup(const Known& k) {
    pdtt_flow f{};
    BOOST_TEST_REQUIRE(bpf_map_lookup_elem(bpf().flows_fd(), &k.key, &f) == 0, "flow " << k.name << " is in the map");
    return f;
}

// Fresh maps for every test: only the inserted flows, all counters zero, ring empty.
struct Reset {
    Reset() {
        Bpf& b = bpf();
        pdtt_flow_key key{};
        while (bpf_map_get_next_key(b.flows_fd(), nullptr, &key) == 0)
            BOOST_TEST_REQUIRE(bpf_map_delete_elem(b.flows_fd(), &key) == 0, "flows cleared");

        std::vector<pdtt_counters> zero_cnt(b.ncpu());
        std::vector<__u64> zero_u64(b.ncpu());
        __u32 zero = 0;
        BOOST_TEST_REQUIRE(bpf_map_update_elem(b.unattributed_fd(), &zero, zero_cnt.data(), BPF_ANY) == 0,
                           "unattributed cleared");
        for (__u32 i = 0; i < PDTT_STAT_MAX; i++)
            BOOST_TEST_REQUIRE(bpf_map_update_elem(b.stats_fd(), &i, zero_u64.data(), BPF_ANY) == 0, "stats cleared");
        b.drain();
        __u64 okey = 0; // socket cookie
        while (bpf_map_get_next_key(b.udp_owners_fd(), nullptr, &okey) == 0)
            BOOST_TEST_REQUIRE(bpf_map_delete_elem(b.udp_owners_fd(), &okey) == 0, "udp_owners cleared");

        for (const Known* k : kAllFlows) {
            if (!k->inserted)
                continue;
            pdtt_flow f = initial_value(*k);
            BOOST_TEST_REQUIRE(bpf_map_update_elem(b.flows_fd(), &k->key, &f, BPF_NOEXIST) == 0,
                               "flow " << k->name << " inserted");
        }
    }
};

struct RunResult {
    int err;
    __u32 retval;
    pkt::Bytes out;
};

RunResult run(Prog p, const pkt::Bytes& frame, __sk_buff* ctx = nullptr) {
    pkt::Bytes out(4096);
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<__u32>(out.size());
    opts.repeat = 1;
    if (ctx) {
        opts.ctx_in = ctx;
        opts.ctx_size_in = sizeof(*ctx);
    }
    int err = bpf_prog_test_run_opts(bpf().prog_fd(p), &opts);
    out.resize(std::min<size_t>(opts.data_size_out, out.size()));
    return {err, opts.retval, std::move(out)};
}

// ---- expectations ----

enum class Where { nothing, flow, unattributed };

struct Effect {
    Where where;
    const Known* flow; // Where::flow
    __u64 bytes;
    __u64 packets;
};

Effect nothing() { return {Where::nothing, nullptr, 0, 0}; }
Effect to_flow(const Known& k, __u64 bytes, __u64 packets = 1) { return {Where::flow, &k, bytes, packets}; }
Effect to_unattributed(__u64 bytes) { return {Where::unattributed, nullptr, bytes, 1}; }

void add(pdtt_counters& c, Prog p, __u64 bytes, __u64 packets) {
    if (is_ingress(p)) {
        c.rx_bytes += bytes;
        c.rx_packets += packets;
    } else {
        c.tx_bytes += bytes;
        c.tx_packets += packets;
    }
}

Snapshot expected(const Snapshot& before, const Effect& e, Prog p) {
    Snapshot want = before;
    if (e.where == Where::flow) {
        auto it =
            std::find_if(want.flows.begin(), want.flows.end(), [&](const auto& kv) { return kv.first == e.flow->key; });
        BOOST_TEST_REQUIRE((it != want.flows.end()), "expected flow " << e.flow->name << " is in the map");
        add(it->second.cnt, p, e.bytes, e.packets);
        if (!it->second.seen) // FLOW_OPEN carried the counters: the agent has them
            it->second.reported = it->second.cnt;
        it->second.seen = 1;
        it->second.ifindex = bpf().lo(); // test_run runs on the loopback device
        // A UDP flow looked at its socket's owner entry (none here). On
        // egress the socket is test_run's own, not the flow's: the flow's
        // socket must look again next time (udp_follow).
        if (it->first.proto == IPPROTO_UDP)
            it->second.owner_seen = bpf().owner_changes() - (is_ingress(p) ? 0 : 1);
        want.stats[PDTT_STAT_EVENTS] += 1;
    } else if (e.where == Where::unattributed) {
        add(want.unattributed, p, e.bytes, e.packets);
    }
    return want;
}

void check_state(const Snapshot& want, const Snapshot& got) {
    BOOST_TEST_REQUIRE(got.flows.size() == want.flows.size(), "the data path adds or removes no flow");
    for (size_t i = 0; i < want.flows.size(); i++) {
        const auto& [wk, w] = want.flows[i];
        const auto& [gk, g] = got.flows[i];
        BOOST_TEST_CONTEXT("flow " << flow_name(wk)) {
            BOOST_TEST((gk == wk), "same key");
            BOOST_TEST(g.cnt == w.cnt, "counters: got " << g.cnt << ", want " << w.cnt);
            BOOST_TEST(g.seen == w.seen, "seen: got " << g.seen << ", want " << w.seen);
            BOOST_TEST(g.ifindex == w.ifindex, "ifindex");
            BOOST_TEST((std::memcmp(&g, &w, sizeof(g)) == 0), "no other field of the entry changed (owner_seen "
                                                                  << g.owner_seen << ", want " << w.owner_seen << ")");
        }
    }
    BOOST_TEST(got.unattributed == want.unattributed,
               "unattributed counters (summed over CPUs): got " << got.unattributed << ", want " << want.unattributed);
    BOOST_TEST(got.stats[PDTT_STAT_EVENTS] == want.stats[PDTT_STAT_EVENTS], "records submitted");
    BOOST_TEST(got.stats[PDTT_STAT_RB_DROPS] == want.stats[PDTT_STAT_RB_DROPS], "ring buffer drops");
    BOOST_TEST(got.stats[PDTT_STAT_FLOW_FULL] == want.stats[PDTT_STAT_FLOW_FULL], "flow-full count");
}

void check_open_event(const pdtt_event& e, const Known& k, const pdtt_flow& now) {
    const pdtt_flow init = initial_value(k);
    BOOST_TEST(e.type == PDTT_EV_FLOW_OPEN, "record type is FLOW_OPEN");
    BOOST_TEST((e.key == k.key), "record carries the flow key");
    BOOST_TEST(e.cnt == now.cnt, "record carries the counters including this packet");
    BOOST_TEST(e.uid == init.uid, "record uid");
    BOOST_TEST(e.pid == init.pid, "record pid");
    BOOST_TEST(std::string(e.comm) == std::string(init.comm), "record comm");
    BOOST_TEST(e.family == init.family, "record family");
    BOOST_TEST(e.direction == init.direction, "record direction");
    BOOST_TEST(e.open_ns == init.open_ns, "record open_ns");
    BOOST_TEST(e.ifindex == bpf().lo(), "record ifindex is the packet's interface");
    BOOST_TEST(e.ts_ns != 0u, "record timestamp set");
    BOOST_TEST(e.tcp_bytes_acked == 0u, "no TCP totals on FLOW_OPEN");
    BOOST_TEST(e.tcp_bytes_received == 0u, "no TCP totals on FLOW_OPEN");
}

// ---- the table ----

// Which programs a row runs through. tc test_run refuses a frame whose IP
// header is shorter than its ethertype needs (xdp_only); super-packets exist
// only after GRO (tc_only); a UDP flow is made differently on receive (rx).
enum class Progs { all, xdp_only, tc_only, rx };

bool runs(Progs set, Prog p) {
    switch (set) {
    case Progs::all:
        return true;
    case Progs::xdp_only:
        return p == Prog::xdp;
    case Progs::tc_only:
        return p != Prog::xdp;
    case Progs::rx:
        return is_ingress(p);
    }
    return false;
}

struct Case {
    const char* what;
    Progs progs;
    std::function<Frame(Prog)> frame;
    Effect effect;
};

constexpr __u16 kIP = ETH_P_IP, kIP6 = ETH_P_IPV6, kQ = ETH_P_8021Q, kAD = ETH_P_8021AD, kARP = ETH_P_ARP;
constexpr __u8 kHop = 0, kRouting = 43, kFragment = 44, kAuth = 51, kDest = 60, kEsp = 50, kIcmp6 = 58;
using pkt::kEth, pkt::kVlan, pkt::kIp4, pkt::kIp6, pkt::kTcp, pkt::kUdp, pkt::kMoreFragments;

const pkt::Bytes kIpOpts12 = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};   // NOPs, EOL
const pkt::Bytes kTcpOpts12 = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}; // NOP NOP timestamps

pkt::Bytes noise(size_t n, std::uint32_t seed) {
    pkt::Bytes b(n);
    for (auto& x : b) {
        seed = seed * 1103515245u + 12345u;
        x = static_cast<std::uint8_t>(seed >> 16);
    }
    return b;
}

const std::vector<Case>& cases() {
    static const std::vector<Case> t = {
        // Counted to a known flow: transport payload only.
        {"IPv4 TCP, known flow: payload counted, headers not", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100); }, to_flow(tcp4, 100)},
        {"IPv4 TCP pure ACK padded to 60 bytes: 0 bytes, padding not counted", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().pad_to(60); }, to_flow(tcp4, 0)},
        {"IPv4 with 12 bytes of IP options (IHL 8)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP, kIpOpts12).tcp().payload(100); },
         to_flow(tcp4, 100)},
        {"IPv4 TCP with 12 bytes of TCP options (doff 8)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp(kTcpOpts12).payload(100); },
         to_flow(tcp4, 100)},
        {"IPv4 first fragment (MF, offset 0): counted to the flow", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP, {}, kMoreFragments).tcp().payload(96); },
         to_flow(tcp4, 96)},
        {"IPv6 TCP, known flow", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100); }, to_flow(tcp6, 100)},
        {"IPv6 hop-by-hop (8) + destination options (16) + routing (24), then TCP", Progs::all,
         [](Prog p) {
             return on(tcp6, p)
                 .eth({kIP6})
                 .ipv6(kHop)
                 .ext6(kDest, 0)
                 .ext6(kRouting, 1)
                 .ext6(IPPROTO_TCP, 2)
                 .tcp()
                 .payload(100);
         },
         to_flow(tcp6, 100)},
        {"IPv6 authentication header (24), then TCP", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(kAuth).ah6(IPPROTO_TCP, 4).tcp().payload(100); },
         to_flow(tcp6, 100)},
        {"IPv6 with 6 extension headers (the most the parser walks), then TCP", Progs::all,
         [](Prog p) {
             return on(tcp6, p)
                 .eth({kIP6})
                 .ipv6(kHop)
                 .ext6(kDest, 0)
                 .ext6(kRouting, 0)
                 .ext6(kDest, 0)
                 .ah6(kDest, 0)
                 .ext6(kDest, 0)
                 .ext6(IPPROTO_TCP, 0)
                 .tcp()
                 .payload(100);
         },
         to_flow(tcp6, 100)},
        {"IPv6 first fragment (offset 0, M set): counted to the flow", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(kFragment).frag6(IPPROTO_TCP, 0, true).tcp().payload(96); },
         to_flow(tcp6, 96)},
        {"one VLAN tag (802.1Q), IPv4 TCP", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100);
         },
         to_flow(tcp4, 100)},
        {"two VLAN tags (802.1ad + 802.1Q), IPv4 TCP", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kAD, kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100);
         },
         to_flow(tcp4, 100)},
        {"two VLAN tags (802.1ad + 802.1Q), IPv6 TCP", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kAD, kQ, kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100);
         },
         to_flow(tcp6, 100)},
        {"UDP, known flow: IP payload minus 8", Progs::all,
         [](Prog p) { return on(udp4, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64); }, to_flow(udp4, 64)},
        {"UDP padded to 60 bytes: padding not counted", Progs::all,
         [](Prog p) { return on(udp4, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(4).pad_to(60); }, to_flow(udp4, 4)},
        {"UDP over IPv6, known flow", Progs::all,
         [](Prog p) { return on(udp6, p).eth({kIP6}).ipv6(IPPROTO_UDP).udp().payload(64); }, to_flow(udp6, 64)},
        {"IPv4 tot_len 0 (BIG TCP super-packet): length from skb->len", Progs::tc_only,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).tot_len(0); },
         to_flow(tcp4, 100)},
        {"IPv6 payload_len 0 (BIG TCP super-packet): length from skb->len", Progs::tc_only,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).payload_len(0); },
         to_flow(tcp6, 100)},

        // Unattributed: no matching flow, or no ports to match on.
        {"TCP, unknown flow: payload unattributed", Progs::all,
         [](Prog p) { return on(tcp4_unknown, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100); },
         to_unattributed(100)},
        {"UDP, unknown flow, no local socket receives it: unattributed", Progs::rx,
         [](Prog p) { return on(udp4_unknown, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64); },
         to_unattributed(64)},
        {"TCP flow known only in another netns: unattributed", Progs::all,
         [](Prog p) { return on(tcp4_other_ns, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100); },
         to_unattributed(100)},
        {"UDP on the 4-tuple of a TCP flow, no local socket: unattributed", Progs::rx,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64); }, to_unattributed(64)},
        {"IPv4 non-first fragment: whole IP payload unattributed", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP, {}, 185).payload(200); }, to_unattributed(200)},
        {"IPv4 middle fragment (MF, offset 185): whole IP payload unattributed", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP, {}, kMoreFragments | 185).payload(200); },
         to_unattributed(200)},
        {"IPv6 non-first fragment: everything after the fragment header unattributed", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(kFragment).frag6(IPPROTO_TCP, 185, false).payload(200); },
         to_unattributed(200)},
        {"IPv6 hop-by-hop then non-first fragment: unattributed", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kIP6}).ipv6(kHop).ext6(kFragment, 0).frag6(IPPROTO_TCP, 185, true).payload(200);
         },
         to_unattributed(200)},
        {"ICMP echo: whole IP payload unattributed", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_ICMP).icmp_echo().payload(56); }, to_unattributed(64)},
        {"ICMPv6 echo: whole IP payload unattributed", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(kIcmp6).icmp_echo(128).payload(56); }, to_unattributed(64)},
        {"IPv6 ESP (not walked as an extension header): whole payload unattributed", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(kEsp).payload(80); }, to_unattributed(80)},

        // Not IP, or not parsed: no counter moves.
        {"three VLAN tags: not parsed", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kAD, kQ, kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100);
         },
         nothing()},
        {"ARP", Progs::all, [](Prog p) { return on(tcp4, p).eth({kARP}).raw(noise(28, 1)); }, nothing()},
        {"64 bytes of noise (ethertype 0xdead)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({0xdead}).raw(noise(50, 2)); }, nothing()},
        {"IPv4 ethertype followed by noise (version 9)", Progs::all,
         [](Prog p) {
             pkt::Bytes b = noise(80, 3);
             b[0] = 0x9f;
             return on(tcp4, p).eth({kIP}).raw(b);
         },
         nothing()},
        {"IPv4 ethertype carrying version 6", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).version(6); }, nothing()},
        {"IPv6 ethertype carrying version 4", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).version(4); }, nothing()},

        // Truncated at every header. For tc, test_run itself refuses (EINVAL) a
        // frame whose IP or IPv6 header is shorter than its ethertype needs,
        // so those cuts reach pdtt_egress only behind a VLAN tag.
        {"14-byte frame: IPv4 ethertype and nothing after", Progs::xdp_only,
         [](Prog p) { return on(tcp4, p).eth({kIP}); }, nothing()},
        {"14-byte frame: IPv6 ethertype and nothing after", Progs::xdp_only,
         [](Prog p) { return on(tcp6, p).eth({kIP6}); }, nothing()},
        {"18-byte frame: VLAN tag, IPv4 ethertype and nothing after", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kQ, kIP});
         },
         nothing()},
        {"cut inside the VLAN tag", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + 2);
         },
         nothing()},
        {"cut inside the second VLAN tag", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kAD, kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + kVlan + 2);
         },
         nothing()},
        {"cut inside the IPv4 header", Progs::xdp_only,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + 10); }, nothing()},
        {"cut inside the IPv4 header after a VLAN tag", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + kVlan + 10);
         },
         nothing()},
        {"cut inside the IPv4 options", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP, kIpOpts12).tcp().payload(100).cut(kEth + kIp4 + 6);
         },
         nothing()},
        {"cut inside the TCP header (IPv4)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + kIp4 + 10); },
         nothing()},
        {"cut inside the TCP header after a VLAN tag", Progs::all,
         [](Prog p) {
             return on(tcp4, p).eth({kQ, kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).cut(kEth + kVlan + kIp4 + 19);
         },
         nothing()},
        {"cut inside the UDP header (IPv4)", Progs::all,
         [](Prog p) { return on(udp4, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64).cut(kEth + kIp4 + 4); },
         nothing()},
        {"cut inside the IPv6 header", Progs::xdp_only,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).cut(kEth + 20); }, nothing()},
        {"cut inside the IPv6 header after a VLAN tag", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kQ, kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).cut(kEth + kVlan + 20);
         },
         nothing()},
        {"cut inside the TCP header (IPv6)", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).cut(kEth + kIp6 + 10); },
         nothing()},
        {"cut inside the UDP header (IPv6)", Progs::all,
         [](Prog p) { return on(udp6, p).eth({kIP6}).ipv6(IPPROTO_UDP).udp().payload(64).cut(kEth + kIp6 + 4); },
         nothing()},
        {"cut inside an IPv6 extension header's first 8 bytes", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kIP6}).ipv6(kHop).ext6(IPPROTO_TCP, 0).tcp().payload(100).cut(kEth + kIp6 + 4);
         },
         nothing()},
        {"cut inside the IPv6 fragment header", Progs::all,
         [](Prog p) {
             return on(tcp6, p)
                 .eth({kIP6})
                 .ipv6(kFragment)
                 .frag6(IPPROTO_TCP, 0, true)
                 .tcp()
                 .payload(100)
                 .cut(kEth + kIp6 + 4);
         },
         nothing()},
        {"cut inside the TCP header after an IPv6 extension header", Progs::all,
         [](Prog p) {
             return on(tcp6, p)
                 .eth({kIP6})
                 .ipv6(kHop)
                 .ext6(IPPROTO_TCP, 0)
                 .tcp()
                 .payload(100)
                 .cut(kEth + kIp6 + 8 + 10);
         },
         nothing()},
        {"cut in the second half of a 16-byte IPv6 extension header, ICMPv6 after it", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kIP6}).ipv6(kDest).ext6(kIcmp6, 1).icmp_echo(128).payload(56).cut(kEth + kIp6 +
                                                                                                       12);
         },
         nothing()},

        // Malformed lengths.
        {"IPv4 IHL 4 (shorter than the fixed header)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).ihl(4); }, nothing()},
        {"IPv4 IHL 4, ICMP (nothing after the IP header would catch it)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_ICMP).icmp_echo().payload(56).ihl(4); }, nothing()},
        {"TCP doff 4 (shorter than the fixed header)", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).doff(4); }, nothing()},
        {"TCP doff 15: header longer than the IP payload", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(10).doff(15); }, nothing()},
        {"IPv4 tot_len 19: smaller than the IP header", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).tot_len(19); }, nothing()},
        {"IPv4 tot_len 30: smaller than IP + TCP headers", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).tot_len(30); }, nothing()},
        {"IPv4 tot_len 24: smaller than IP + UDP headers", Progs::all,
         [](Prog p) { return on(udp4, p).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64).tot_len(24); }, nothing()},
        {"IPv6 payload_len 10: smaller than the TCP header", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).payload_len(10); },
         nothing()},
        {"IPv6 payload_len 8: smaller than a 16-byte extension header", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kIP6}).ipv6(kHop).ext6(IPPROTO_TCP, 1).tcp().payload(100).payload_len(8);
         },
         nothing()},
        {"IPv6 payload_len 4: smaller than the fragment header", Progs::all,
         [](Prog p) {
             return on(tcp6, p).eth({kIP6}).ipv6(kFragment).frag6(IPPROTO_TCP, 185, false).payload(100).payload_len(4);
         },
         nothing()},
        {"IPv6 with 7 extension headers (more than the parser walks)", Progs::all,
         [](Prog p) {
             return on(tcp6, p)
                 .eth({kIP6})
                 .ipv6(kHop)
                 .ext6(kDest, 0)
                 .ext6(kRouting, 0)
                 .ext6(kDest, 0)
                 .ah6(kDest, 0)
                 .ext6(kDest, 0)
                 .ext6(kDest, 0)
                 .ext6(IPPROTO_TCP, 0)
                 .tcp()
                 .payload(100);
         },
         nothing()},
        {"IPv4 tot_len claims more than the frame holds", Progs::all,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).tot_len(1400); }, nothing()},
        {"IPv6 payload_len claims more than the frame holds", Progs::all,
         [](Prog p) { return on(tcp6, p).eth({kIP6}).ipv6(IPPROTO_TCP).tcp().payload(100).payload_len(1400); },
         nothing()},
        {"IPv4 tot_len 0 on ingress (no super-packets before GRO; ip_rcv drops it)", Progs::xdp_only,
         [](Prog p) { return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(100).tot_len(0); }, nothing()},
    };
    return t;
}

struct Sample {
    const Case* c;
    Prog prog;
};

std::ostream& operator<<(std::ostream& os, const Sample& s) { return os << s.prog << ": " << s.c->what; }

std::vector<Sample> samples() {
    std::vector<Sample> v;
    for (const Case& c : cases()) {
        for (Prog p : {Prog::xdp, Prog::tc_ingress, Prog::tc})
            if (runs(c.progs, p))
                v.push_back({&c, p});
    }
    return v;
}

pkt::Bytes tcp4_frame(Prog p, size_t payload) {
    return on(tcp4, p).eth({kIP}).ipv4(IPPROTO_TCP).tcp().payload(payload).build();
}

} // namespace

BOOST_DATA_TEST_CASE_F(Reset, frame_table, bdata::make(samples()), s) {
    const Case& c = *s.c;
    const pkt::Bytes frame = c.frame(s.prog).build();
    BOOST_TEST_REQUIRE(frame.size() >= kEth, "test_run needs at least an Ethernet header");

    const Snapshot before = snapshot();
    RunResult r = run(s.prog, frame);
    BOOST_TEST_REQUIRE(r.err == 0, "bpf_prog_test_run_opts: " << std::strerror(-r.err));
    BOOST_TEST(static_cast<int>(r.retval) == expected_verdict(s.prog), "verdict");
    BOOST_TEST((r.out == frame), "frame leaves the program unmodified");

    const Snapshot after = snapshot();
    const std::vector<pdtt_event> events = bpf().drain();
    check_state(expected(before, c.effect, s.prog), after);

    if (c.effect.where == Where::flow) {
        BOOST_TEST_REQUIRE(events.size() == 1u, "first packet of the flow emits one record");
        check_open_event(events[0], *c.effect.flow, lookup(*c.effect.flow));
    } else {
        BOOST_TEST(events.empty(), "no ring buffer record for a packet matching no flow");
    }
}

BOOST_DATA_TEST_CASE_F(Reset, flow_open_once_then_silent, bdata::make({Prog::xdp, Prog::tc}), prog) {
    const pkt::Bytes frame = tcp4_frame(prog, 100);
    pdtt_counters want = initial_value(tcp4).cnt;

    BOOST_TEST_REQUIRE(lookup(tcp4).seen == 0u, "flow starts unseen");
    BOOST_TEST_REQUIRE(run(prog, frame).err == 0, "first packet ran");
    add(want, prog, 100, 1);
    std::vector<pdtt_event> first = bpf().drain();
    BOOST_TEST(lookup(tcp4).seen != 0u, "first packet sets seen");
    BOOST_TEST_REQUIRE(first.size() == 1u, "first packet emits exactly one record");
    check_open_event(first[0], tcp4, lookup(tcp4));
    BOOST_TEST(snapshot().stats[PDTT_STAT_EVENTS] == 1u, "one record counted in stats");

    BOOST_TEST_REQUIRE(run(prog, frame).err == 0, "second packet ran");
    add(want, prog, 100, 1);
    BOOST_TEST(bpf().drain().empty(), "second packet emits no record");
    BOOST_TEST(lookup(tcp4).cnt == want, "both packets counted: got " << lookup(tcp4).cnt << ", want " << want);
    BOOST_TEST(lookup(tcp4).seen != 0u, "seen stays set");
    BOOST_TEST(snapshot().stats[PDTT_STAT_EVENTS] == 1u, "still one record counted in stats");
}

BOOST_FIXTURE_TEST_CASE(both_directions_share_one_entry, Reset) {
    BOOST_TEST_REQUIRE(run(Prog::xdp, tcp4_frame(Prog::xdp, 100)).err == 0, "ingress packet ran");
    BOOST_TEST_REQUIRE(run(Prog::tc, tcp4_frame(Prog::tc, 50)).err == 0, "egress packet ran");

    pdtt_counters want = initial_value(tcp4).cnt;
    add(want, Prog::xdp, 100, 1);
    add(want, Prog::tc, 50, 1);
    BOOST_TEST(lookup(tcp4).cnt == want,
               "rx from XDP and tx from tc on the same entry: got " << lookup(tcp4).cnt << ", want " << want);
    std::vector<pdtt_event> events = bpf().drain();
    BOOST_TEST(events.size() == 1u, "one FLOW_OPEN for the flow, not one per direction");
    BOOST_TEST(snapshot().unattributed == pdtt_counters{}, "nothing unattributed: got " << snapshot().unattributed);
}

BOOST_FIXTURE_TEST_CASE(gso_super_packet_counts_its_segments, Reset) {
    const pkt::Bytes frame = tcp4_frame(Prog::tc, 400);
    __sk_buff ctx{};
    ctx.gso_segs = 4;
    ctx.gso_size = 100;

    // Linux 5.9 and later carry gso_segs and gso_size into the test skb.
    RunResult r = run(Prog::tc, frame, &ctx);
    BOOST_TEST_REQUIRE(r.err == 0, "bpf_prog_test_run_opts with gso_segs in the ctx: " << std::strerror(-r.err));
    BOOST_TEST(static_cast<int>(r.retval) == TC_ACT_UNSPEC, "verdict");

    pdtt_counters want = initial_value(tcp4).cnt;
    add(want, Prog::tc, 400, 4);
    BOOST_TEST(lookup(tcp4).cnt == want,
               "400 payload bytes in 4 packets: got " << lookup(tcp4).cnt << ", want " << want);
}

// ---- UDP flows: opened by their first packet ----

namespace {

std::optional<pdtt_flow> find_flow(const pdtt_flow_key& k) {
    pdtt_flow f{};
    if (bpf_map_lookup_elem(bpf().flows_fd(), &k, &f) != 0)
        return std::nullopt;
    return f;
}

// A UDP socket bound to the wildcard address on a free port, as some
// receiver on this host; bpf_sk_lookup_udp from XDP finds it.
struct BoundUdp {
    int fd = -1;
    __u16 port = 0;
    BoundUdp() {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        BOOST_TEST_REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
        socklen_t len = sizeof(a);
        BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~BoundUdp() { ::close(fd); }
};

// Runs p on frame in a child whose uids are all `uid` (capabilities kept),
// so that a data path taking the current task's uid instead of the
// socket's is told apart; the exit status says how the run went.
int run_as(uid_t uid, Prog p, const pkt::Bytes& frame) {
    const pid_t pid = ::fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED) != 0 ||
            ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0 || ::getuid() != uid)
            ::_exit(2);
        ::_exit(run(p, frame).err == 0 ? 0 : 3);
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

// test_run's skb socket is the kernel's own, always uid 0 (sock_init_data
// without a struct socket); the task that runs it is not uid 0.
constexpr __u32 kTestRunSocketUid = 0;
constexpr uid_t kCurrentUid = 4321;

} // namespace

BOOST_FIXTURE_TEST_CASE(egress_udp_opens_a_flow_owned_by_the_sending_socket, Reset) {
    BOOST_TEST_REQUIRE(run_as(kCurrentUid, Prog::tc,
                              on(udp4_unknown, Prog::tc).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(64).build()) == 0,
                       "test_run as uid " << kCurrentUid << " (2: cannot change uid, 3: test_run failed)");
    auto f = find_flow(udp4_unknown.key);
    BOOST_TEST_REQUIRE(f.has_value(), "a flow entry was created");
    BOOST_TEST(f->cnt == (pdtt_counters{64, 0, 1, 0}), "the first datagram is counted: " << f->cnt);
    BOOST_TEST(f->uid == kTestRunSocketUid, "the flow's owner is the socket's uid, not the current task's");
    BOOST_TEST(f->direction == PDTT_DIR_OUTBOUND);
    BOOST_TEST(f->family == AF_INET);
    BOOST_TEST(f->seen != 0u);
    std::vector<pdtt_event> ev = bpf().drain();
    BOOST_TEST_REQUIRE(ev.size() == 1u, "one FLOW_OPEN");
    BOOST_TEST(ev[0].type == PDTT_EV_FLOW_OPEN);
    BOOST_TEST(ev[0].uid == kTestRunSocketUid, "FLOW_OPEN carries the socket's uid");

    // The sending socket is now known to belong to its uid.
    __u64 ok = 0;
    pdtt_owner owner{};
    owner.uid = 12345;
    BOOST_TEST_REQUIRE(bpf_map_get_next_key(bpf().udp_owners_fd(), nullptr, &ok) == 0, "owner of the socket learnt");
    BOOST_TEST_REQUIRE(bpf_map_lookup_elem(bpf().udp_owners_fd(), &ok, &owner) == 0);
    BOOST_TEST(owner.uid == kTestRunSocketUid, "the socket's owner is its uid");
    BOOST_TEST(owner.cookie == ok, "keyed by the socket's cookie");
    BOOST_TEST(owner.gen != 0u, "a generation the socket's flows follow");

    BOOST_TEST_REQUIRE(
        run(Prog::tc, on(udp4_unknown, Prog::tc).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(36).build()).err == 0);
    BOOST_TEST(find_flow(udp4_unknown.key)->cnt == (pdtt_counters{100, 0, 2, 0}));
    BOOST_TEST(bpf().drain().empty(), "no record for the second datagram");
}

BOOST_FIXTURE_TEST_CASE(ingress_udp_to_a_bound_socket_opens_a_flow, Reset) {
    BoundUdp rx;
    const Known to_rx{"udp4 to a bound socket",
                      make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 99), rx.port, 4000, IPPROTO_UDP), false};
    auto frame = [&] { return on(to_rx, Prog::xdp).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(200).build(); };

    BOOST_TEST_REQUIRE(run(Prog::xdp, frame()).err == 0);
    auto f = find_flow(to_rx.key);
    BOOST_TEST_REQUIRE(f.has_value(), "a socket receives it, so a flow opens");
    BOOST_TEST(f->cnt == (pdtt_counters{0, 200, 0, 1}));
    BOOST_TEST(f->direction == PDTT_DIR_INBOUND);
    BOOST_TEST(f->uid == ::geteuid(), "before any I/O hook saw it, the receiving socket's uid");
    BOOST_TEST(bpf().drain().size() == 1u, "one FLOW_OPEN");

    // With the socket's owner known (learnt from its I/O, or set by the
    // agent), a new peer's flow carries it at once.
    __u64 ok = 0;
    socklen_t oklen = sizeof(ok);
    BOOST_TEST_REQUIRE(::getsockopt(rx.fd, SOL_SOCKET, SO_COOKIE, &ok, &oklen) == 0);
    pdtt_owner known{};
    known.uid = 4321;
    known.gen = 1;
    BOOST_TEST_REQUIRE(bpf_map_update_elem(bpf().udp_owners_fd(), &ok, &known, BPF_ANY) == 0);
    const __u32 owner = known.uid;
    const Known other_peer{"udp4 from another peer",
                           make_key(pkt::v4(10, 0, 0, 1), pkt::v4(192, 0, 2, 100), rx.port, 4000, IPPROTO_UDP), false};
    BOOST_TEST_REQUIRE(
        run(Prog::xdp, on(other_peer, Prog::xdp).eth({kIP}).ipv4(IPPROTO_UDP).udp().payload(10).build()).err == 0);
    auto g = find_flow(other_peer.key);
    BOOST_TEST_REQUIRE(g.has_value());
    BOOST_TEST(g->uid == owner);
    BOOST_TEST(snapshot().unattributed == pdtt_counters{}, "nothing unattributed");
}

BOOST_AUTO_TEST_CASE(runs_in_a_private_network_namespace) {
    // No host service can hold the ports the frames use (5355: resolved).
    struct stat now {};
    BOOST_TEST_REQUIRE(::stat("/proc/self/ns/net", &now) == 0);
    BOOST_TEST(host_netns != 0u);
    BOOST_TEST(kNetns == static_cast<__u32>(now.st_ino), "kNetns is the namespace the test runs in");
    BOOST_TEST(kNetns != host_netns, "kNetns is not the namespace the test started in");
}

// ---- random and mutated frames (issue #13) ----

namespace {

struct Totals {
    __u64 bytes = 0, packets = 0;
};

// Everything the data path counts, flows and unattributed, summed.
Totals totals(const Snapshot& s) {
    Totals t;
    auto add_cnt = [&t](const pdtt_counters& c) {
        t.bytes += c.tx_bytes + c.rx_bytes;
        t.packets += c.tx_packets + c.rx_packets;
    };
    for (const auto& [k, f] : s.flows)
        add_cnt(f.cnt);
    add_cnt(s.unattributed);
    return t;
}

// splitmix64: the same frames for the same seed on every machine.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// One to four of: a bit flipped, a byte or a 16-bit field set to an edge
// value, cut short (never below an Ethernet header), random bytes added.
pkt::Bytes mutate(pkt::Bytes b, Rng& r) {
    for (size_t n = 1 + r.below(4); n > 0; --n) {
        const size_t at = r.below(b.size());
        switch (r.below(5)) {
        case 0:
            b[at] ^= static_cast<uint8_t>(1u << r.below(8));
            break;
        case 1:
            b[at] = static_cast<uint8_t>(r.next());
            break;
        case 2: {
            static const uint16_t edges[] = {0, 1, 0x7fff, 0x8000, 0xffff, 20, 40, 1500};
            uint16_t v = edges[r.below(std::size(edges))];
            b[at] = static_cast<uint8_t>(v >> 8);
            if (at + 1 < b.size())
                b[at + 1] = static_cast<uint8_t>(v);
            break;
        }
        case 3:
            b.resize(std::max<size_t>(kEth, r.below(b.size() + 1)));
            break;
        default:
            for (size_t k = r.below(64); k > 0; --k)
                b.push_back(static_cast<uint8_t>(r.next()));
        }
    }
    return b;
}

// Random bytes behind an Ethernet header whose type (and VLAN tags) a parser follows.
pkt::Bytes random_frame(Rng& r) {
    pkt::Bytes b(kEth + r.below(1500));
    for (auto& x : b)
        x = static_cast<uint8_t>(r.next());
    static const __u16 types[] = {kIP, kIP6, kQ, kAD, kARP};
    const __u16 t = types[r.below(std::size(types))];
    b[12] = static_cast<uint8_t>(t >> 8);
    b[13] = static_cast<uint8_t>(t);
    if (b.size() >= kEth + 1 && (t == kIP || t == kIP6))
        b[kEth] = static_cast<uint8_t>((t == kIP ? 0x45 : 0x60) | (b[kEth] & (t == kIP ? 0x00 : 0x0f)));
    return b;
}

uint64_t test_seed() {
    const char* env = std::getenv("PDTT_TEST_SEED");
    return env ? std::strtoull(env, nullptr, 0) : 0x13131313u;
}

std::string hex(const pkt::Bytes& b) {
    std::string s;
    char buf[4];
    for (uint8_t x : b) {
        std::snprintf(buf, sizeof buf, "%02x", x);
        s += buf;
    }
    return s;
}

} // namespace

// Whatever arrives, the data path passes it on and counts at most what it
// carried: the table's countable frames mutated, and random bytes, through
// every program. PDTT_TEST_SEED=N replays a run; a failure names the seed,
// the frame and its bytes.
BOOST_FIXTURE_TEST_CASE(random_and_mutated_frames_pass_and_count_at_most_their_length, Reset) {
    const uint64_t seed = test_seed();
    BOOST_TEST_MESSAGE("seed " << seed << " (PDTT_TEST_SEED=" << seed << " replays this run)");
    Rng rng{seed};
    std::vector<std::pair<Prog, pkt::Bytes>> valid;
    for (const Sample& s : samples())
        if (s.c->effect.where != Where::nothing)
            valid.emplace_back(s.prog, s.c->frame(s.prog).build());
    BOOST_TEST_REQUIRE(!valid.empty());

    constexpr int kFrames = 6000;
    int ran = 0, refused = 0;
    for (int i = 0; i < kFrames; ++i) {
        Prog p;
        pkt::Bytes frame;
        if (i % 3 != 2) { // two in three: a mutated frame of the table
            const auto& [vp, vf] = valid[rng.below(valid.size())];
            p = vp;
            frame = mutate(vf, rng);
        } else {
            static const Prog progs[] = {Prog::xdp, Prog::tc_ingress, Prog::tc};
            p = progs[rng.below(3)];
            frame = random_frame(rng);
        }
        const Snapshot before = snapshot();
        const RunResult r = run(p, frame);
        const auto what = [&] {
            std::ostringstream os;
            os << "seed " << seed << ", frame " << i << " through " << p << ", " << frame.size()
               << " bytes: " << hex(frame);
            return os.str();
        };
        if (r.err != 0) {
            // tc's test_run refuses a frame whose IP header is shorter than its
            // ethertype needs, before the program runs; XDP takes any frame.
            BOOST_TEST_REQUIRE(p != Prog::xdp, "XDP test_run failed (" << std::strerror(-r.err) << "): " << what());
            ++refused;
            continue;
        }
        ++ran;
        BOOST_TEST_REQUIRE(static_cast<int>(r.retval) == expected_verdict(p), "verdict " << r.retval << ": " << what());
        const Snapshot after = snapshot();
        const Totals t0 = totals(before), t1 = totals(after);
        BOOST_TEST_REQUIRE(t1.bytes >= t0.bytes, "counters went backwards: " << what());
        BOOST_TEST_REQUIRE(t1.bytes - t0.bytes <= frame.size(), "counted " << (t1.bytes - t0.bytes)
                                                                           << " bytes of a frame of " << frame.size()
                                                                           << ": " << what());
        BOOST_TEST_REQUIRE(t1.packets - t0.packets <= 1u, "counted more than one packet: " << what());
        for (const auto& [k, f] : before.flows)
            BOOST_TEST_REQUIRE(
                std::any_of(after.flows.begin(), after.flows.end(), [&](const auto& kv) { return kv.first == k; }),
                "flow " << flow_name(k) << " disappeared: " << what());
        if (i % 64 == 0)
            bpf().drain(); // FLOW_OPEN records of flows seen for the first time
    }
    BOOST_TEST_MESSAGE(ran << " frames ran, " << refused << " refused by tc's test_run");
    BOOST_TEST(ran > kFrames / 2, "most frames reached the programs (" << ran << " of " << kFrames << ")");
}
