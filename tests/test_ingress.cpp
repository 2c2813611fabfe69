// The ingress hook on every kind of device (issue #11): a layer-3 tun link
// between two namespaces counted exactly through tc, XDP refused where it
// cannot parse, and native XDP on a veth at jumbo MTU.
#define BOOST_TEST_MODULE ingress
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"
#include "fd.hpp"
#include "packets.hpp"
#include "pdtt.skel.h"
#include "skeleton.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>

using namespace pdtt::test;

namespace {

constexpr const char* kTunHost = "pdtt-tun0";
constexpr const char* kTunPeer = "pdtt-tun1";
constexpr const char* kHostIp = "10.78.0.1";
constexpr const char* kPeerIp = "10.78.0.2";

// Two namespaces joined by a tun pair (pdtt-tunpipe): no link header on
// either end, which is what tun and WireGuard devices look like to tc.
struct TunLab {
    TestUser alice{"pdtt-test1"};
    QuietNetns host, peer;
    std::unique_ptr<Process> pipe;
    fs::path dir, no_config;
    std::unique_ptr<Process> agent;

    TunLab() {
        pipe = std::make_unique<Process>(
            std::vector<std::string>{PDTT_TUNPIPE_BIN, host.name(), kTunHost, peer.name(), kTunPeer});
        BOOST_REQUIRE_MESSAGE(pipe->wait_for_line("ready", 10s), "pdtt-tunpipe did not start: " << pipe->err());
        for (auto [ns, dev, ip, other] :
             {std::tuple{&host, kTunHost, kHostIp, kPeerIp}, std::tuple{&peer, kTunPeer, kPeerIp, kHostIp}}) {
            run_ok("ip -n " + ns->name() + " addr add " + ip + " peer " + other + " dev " + dev);
            run_ok("ip -n " + ns->name() + " link set " + dev + " up");
        }
        char tmpl[] = "/tmp/pdtt-lab-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        no_config = dir / "empty.conf";
        std::ofstream{no_config};
    }
    ~TunLab() {
        agent.reset();
        pipe.reset(); // the tun devices go with their fds
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    std::vector<std::string> agent_argv(std::vector<std::string> extra) const {
        std::vector<std::string> argv{PDTT_AGENT_BIN, "-c",    no_config.string(), "--stdout", "json", "--no-files",
                                      "-i",           kTunHost};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    }
};

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

struct Sums {
    uint64_t tx = 0, rx = 0, retrans = 0;
    int flows = 0;
};

std::map<std::string, Sums> closes_by_proto(const std::vector<json::object>& recs, int64_t uid) {
    std::map<std::string, Sums> out;
    for (const auto& r : recs) {
        if (str(r, "type") != "flow_close" || i64(r, "uid") != uid)
            continue;
        auto& s = out[str(r, "proto")];
        s.tx += u64(r, "tx_bytes");
        s.rx += u64(r, "rx_bytes");
        s.retrans += u64(r, "tcp_bytes_retrans");
        s.flows++;
    }
    return out;
}

// The programs loaded once more, for test runs on synthetic frames.
struct Loaded {
    pdtt::Skeleton skel = pdtt::load_skeleton([](pdtt_bpf&) {});

    // The unattributed counters, summed over CPUs.
    pdtt_counters unattributed() const {
        std::vector<pdtt_counters> per_cpu(libbpf_num_possible_cpus());
        uint32_t key = PDTT_UNATTRIBUTED;
        pdtt_counters sum{};
        BOOST_REQUIRE(bpf_map_lookup_elem(bpf_map__fd(skel->maps.unattributed), &key, per_cpu.data()) == 0);
        for (const auto& c : per_cpu) {
            sum.tx_bytes += c.tx_bytes;
            sum.rx_bytes += c.rx_bytes;
        }
        return sum;
    }

    // Runs prog on frame; ctx's ifindex picks the device test_run builds the skb for.
    int run(bpf_program* prog, const pkt::Bytes& frame, __sk_buff* ctx = nullptr) const {
        pkt::Bytes out(frame.size() + 256);
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_out = out.data(),
                    .data_size_in = static_cast<__u32>(frame.size()), .data_size_out = static_cast<__u32>(out.size()),
                    .ctx_in = ctx, .ctx_size_in = ctx ? static_cast<__u32>(sizeof(*ctx)) : 0u, .repeat = 1);
        return bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
    }
};

const pkt::Addr kRemote = pkt::v4(10, 78, 0, 2), kLocal = pkt::v4(10, 78, 0, 1);

// A tc program that runs behind the agent's on the same hook and records
// the skb's linear length as the next program sees it: whether the agent's
// program pulled bytes into the head. Assembled here: the test build
// compiles no BPF of its own.
struct LinearProbe {
    int map = -1, prog = -1, link = -1;

    explicit LinearProbe(int ifindex) {
        map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pdtt_t_linear", 4, 8, 1, nullptr);
        BOOST_REQUIRE(map >= 0);
        auto ins = [](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
            bpf_insn i{};
            i.code = code;
            i.dst_reg = dst;
            i.src_reg = src;
            i.off = off;
            i.imm = imm;
            return i;
        };
        const bpf_insn code[] = {
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),                           // r6 = skb
            ins(BPF_LDX | BPF_MEM | BPF_W, 2, 6, offsetof(__sk_buff, data), 0),     // r2 = data
            ins(BPF_LDX | BPF_MEM | BPF_W, 3, 6, offsetof(__sk_buff, data_end), 0), // r3 = data_end
            ins(BPF_ALU64 | BPF_SUB | BPF_X, 3, 2, 0, 0),                           // r3 -= r2
            ins(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 0),                            // key 0
            ins(BPF_STX | BPF_MEM | BPF_DW, 10, 3, -16, 0),                         // value
            ins(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map),
            ins(0, 0, 0, 0, 0), // r1 = map
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
            ins(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),
            ins(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -16),
            ins(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),
            ins(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_update_elem),
            ins(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, -1), // TCX_NEXT
            ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        };
        prog = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "pdtt_t_linear", "GPL", code, std::size(code), nullptr);
        BOOST_REQUIRE_MESSAGE(prog >= 0, "probe load: " << std::strerror(errno));
        link = bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(PDTT_BPF_TCX_EGRESS),
                               nullptr); // appended: after the agent's
        BOOST_REQUIRE_MESSAGE(link >= 0, "probe attach: " << std::strerror(errno));
    }
    ~LinearProbe() {
        for (int fd : {link, prog, map})
            if (fd >= 0)
                ::close(fd);
    }
    LinearProbe(const LinearProbe&) = delete;
    LinearProbe& operator=(const LinearProbe&) = delete;

    uint64_t last() const {
        uint32_t key = 0;
        uint64_t v = 0;
        BOOST_REQUIRE(bpf_map_lookup_elem(map, &key, &v) == 0);
        return v;
    }
};

// Sends frame out of ifindex with only its first `linear` bytes in the
// skb's head and the rest in pages, as a driver or the stack may hand them
// to tc: AF_PACKET takes the head's length from the virtio-net header for
// frames of a page or more.
void send_split(int ifindex, const pkt::Bytes& frame, uint16_t linear) {
    BOOST_REQUIRE(frame.size() >= 4096);
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd >= 0);
    int one = 1;
    BOOST_REQUIRE(::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0);
    struct { // uapi linux/virtio_net.h's virtio_net_hdr (that header is not C++): no GSO, no checksum
        uint8_t flags = 0, gso_type = 0;
        uint16_t hdr_len = 0, gso_size = 0, csum_start = 0, csum_offset = 0;
    } vh;
    static_assert(sizeof(vh) == 10);
    vh.hdr_len = linear;
    pkt::Bytes buf(sizeof(vh));
    std::memcpy(buf.data(), &vh, sizeof(vh));
    buf.insert(buf.end(), frame.begin(), frame.end());
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_protocol = htons(ETH_P_IP);
    ssize_t n = ::sendto(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    int err = errno;
    ::close(fd);
    BOOST_REQUIRE_MESSAGE(n == static_cast<ssize_t>(buf.size()), "AF_PACKET send: " << std::strerror(err));
}

} // namespace

BOOST_FIXTURE_TEST_CASE(tc_programs_parse_a_tun_skb_from_its_network_header, TunLab) {
    // test_run builds the skb for the device ctx names: here one whose type
    // is ARPHRD_NONE, so the programs take the network-header path.
    Loaded l;
    EnterNetns in(host);
    __sk_buff ctx{};
    ctx.ifindex = ::if_nametoindex(kTunHost);
    BOOST_REQUIRE(ctx.ifindex > 0);
    const pkt::Bytes tcp =
        pkt::Frame(kRemote, kLocal, 5001, 40000).eth({ETH_P_IP}).ipv4(IPPROTO_TCP).tcp().payload(300).build();
    pdtt_counters before = l.unattributed();
    BOOST_REQUIRE(l.run(l.skel->progs.pdtt_ingress, tcp, &ctx) == 0);
    BOOST_TEST(l.unattributed().rx_bytes - before.rx_bytes == 300u, "pdtt_ingress counts the TCP payload");
    before = l.unattributed();
    BOOST_REQUIRE(l.run(l.skel->progs.pdtt_egress, tcp, &ctx) == 0);
    BOOST_TEST(l.unattributed().tx_bytes - before.tx_bytes == 300u, "pdtt_egress counts the TCP payload");
    // A VLAN tag means nothing where there is no Ethernet header: proof
    // that this was not parse_frame (which counts it on lo, see test_bpf_prog).
    const pkt::Bytes tagged = pkt::Frame(kRemote, kLocal, 5001, 40000)
                                  .eth({ETH_P_8021Q, ETH_P_IP})
                                  .ipv4(IPPROTO_TCP)
                                  .tcp()
                                  .payload(300)
                                  .build();
    before = l.unattributed();
    BOOST_REQUIRE(l.run(l.skel->progs.pdtt_ingress, tagged, &ctx) == 0);
    BOOST_TEST(l.unattributed().rx_bytes == before.rx_bytes, "a tagged frame on a tun skb is not IP");
}

BOOST_AUTO_TEST_CASE(xdp_counts_the_whole_of_a_multi_buffer_frame) {
    // Longer than a page: test_run hands an xdp.frags program the rest as
    // fragments, as a jumbo frame arrives on a native driver.
    Loaded l;
    const size_t payload = 8000;
    const pkt::Bytes frame =
        pkt::Frame(kRemote, kLocal, 5001, 40000).eth({ETH_P_IP}).ipv4(IPPROTO_TCP).tcp().payload(payload).build();
    BOOST_REQUIRE(frame.size() > 4096u);
    pdtt_counters before = l.unattributed();
    int err = l.run(l.skel->progs.pdtt_xdp, frame);
    BOOST_REQUIRE_MESSAGE(err == 0, "test_run of a multi-buffer frame: " << std::strerror(-err));
    BOOST_TEST(l.unattributed().rx_bytes - before.rx_bytes == payload, "the payload in the fragments counts too");
}

BOOST_FIXTURE_TEST_CASE(tun_link_counts_tcp_and_udp_exactly_through_tc, TunLab) {
    agent = std::make_unique<Process>(agent_argv({"-t", "1", "--udp-timeout", "2"}), host.name());
    BOOST_REQUIRE_MESSAGE(agent_ready(*agent), "agent did not start: " << agent->err());
    BOOST_TEST(agent->err().find("tcx/ingress on pdtt-tun0") != std::string::npos,
               "auto picks tc ingress on a tun device: " << agent->err());

    Process tcp_server({PDTT_TRAFFIC_BIN, "serve", "--bind", kPeerIp, "--port", kPort}, peer.name());
    BOOST_REQUIRE_MESSAGE(tcp_server.wait_for_line("ready", 10s), "server did not start: " << tcp_server.err());
    Process udp_server({PDTT_TRAFFIC_BIN, "serve", "--proto", "udp", "--bind", kPeerIp, "--port", "6000"}, peer.name());
    BOOST_REQUIRE_MESSAGE(udp_server.wait_for_line("ready", 10s), "server did not start: " << udp_server.err());
    for (std::vector<std::string> argv :
         {std::vector<std::string>{"--port", kPort, "--tx", "700000", "--rx", "1300000"},
          std::vector<std::string>{"--proto", "udp", "--port", "6000", "--tx", "120000", "--rx", "90000", "--size",
                                   "1200"}}) {
        argv.insert(argv.begin(), {PDTT_TRAFFIC_BIN, "send", "--to", kPeerIp, "--uid", std::to_string(alice.uid())});
        Process c(argv, host.name());
        auto st = c.wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << c.err());
    }
    tcp_settled(host);
    BOOST_TEST(
        wait_until([&] { return closes_by_proto(parse_lines(agent->out()), alice.uid())["udp"].flows == 1; }, 15s),
        "the UDP flow closed by idle timeout");
    agent->signal(SIGTERM);
    auto st = agent->wait(2s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "agent exit after SIGTERM: " << agent->err());
    auto got = closes_by_proto(parse_lines(agent->out()), alice.uid());
    BOOST_TEST(got["tcp"].flows == 1, "alice's TCP flow, hers");
    BOOST_TEST(sent_ok(got["tcp"].tx, got["tcp"].retrans, 700'000 + kTrafficHeader), "TCP tx " << got["tcp"].tx);
    BOOST_TEST(received_ok(got["tcp"].rx, 1'300'000, resent_bytes_max(peer)), "TCP rx " << got["tcp"].rx);
    BOOST_TEST(got["udp"].flows == 1, "alice's UDP flow, hers");
    BOOST_TEST(got["udp"].tx == 120'000u, "UDP tx, every datagram once");
    BOOST_TEST(got["udp"].rx == 90'000u, "UDP rx, every datagram once");
}

BOOST_FIXTURE_TEST_CASE(ingress_xdp_on_a_tun_device_is_refused_with_the_reason, TunLab) {
    for (const char* mode : {"auto", "native", "generic"}) {
        BOOST_TEST_CONTEXT("--xdp-mode " << mode) {
            Process p(agent_argv({"--ingress", "xdp", "--xdp-mode", mode}), host.name());
            auto st = p.wait(15s);
            BOOST_REQUIRE_MESSAGE(st.has_value(), "the agent did not exit");
            BOOST_TEST(*st == 3, "exit status " << *st << "; stderr: " << p.err());
            BOOST_TEST(lines(p.err()) == 1, "one line on stderr: " << p.err());
            BOOST_TEST(p.err().find("layer-3 device") != std::string::npos, p.err());
        }
    }
    BOOST_TEST(capture("ip -n " + host.name() + " -d link show dev " + kTunHost).find("xdp") == std::string::npos,
               "no XDP program left on the device");
}

BOOST_FIXTURE_TEST_CASE(native_xdp_attaches_to_a_veth_at_mtu_9000, Lab) {
    // veth runs native XDP with multi-buffer frames only for xdp.frags
    // programs at this MTU; the peer needs GRO on to take XDP frames.
    run_ok("ip -n " + host.name() + " link set " + link.a_name() + " mtu 9000");
    run_ok("ip -n " + peer.name() + " link set " + link.b_name() + " mtu 9000");
    start_agent({"-t", "1", "--ingress", "xdp", "--xdp-mode", "native"});
    BOOST_TEST(xdp_mode() == "native");
    BOOST_TEST(agent->err().find("xdp/native on " + link.a_name()) != std::string::npos, agent->err());
    auto server = serve(link.b_ip4());
    transfer(alice, link.b_ip4(), 100'000, 2'000'000);
    auto recs = stop_agent();
    uint64_t rx = 0, tx = 0, retrans = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "flow_close" && i64(r, "uid") == alice.uid()) {
            tx += u64(r, "tx_bytes");
            rx += u64(r, "rx_bytes");
            retrans += u64(r, "tcp_bytes_retrans");
        }
    BOOST_TEST(sent_ok(tx, retrans, 100'000 + kTrafficHeader));
    BOOST_TEST(received_ok(rx, 2'000'000, resent_bytes_max(peer)), "rx " << rx << " at 9000-byte frames");
    check_wire(recs);
}

BOOST_FIXTURE_TEST_CASE(auto_picks_tc_on_a_veth_and_xdp_only_when_asked, Lab) {
    // veth accepts native XDP but pays for it (BENCHMARKS.md): not by default.
    start_agent({"-t", "1"});
    BOOST_TEST(xdp_mode() == "", "no XDP program by default on a veth");
    BOOST_TEST(agent->err().find("tcx/ingress on " + link.a_name()) != std::string::npos, agent->err());
    stop_agent();
    start_agent({"-t", "1", "--ingress", "xdp"});
    BOOST_TEST(xdp_mode() == "native", "--ingress xdp tries native first");
    stop_agent();
    start_agent({"-t", "1", "--ingress", "xdp", "--xdp-mode", "generic"});
    BOOST_TEST(xdp_mode() == "generic", "generic only when asked for by name");
    stop_agent();
    BOOST_TEST(attached().empty(), "left attached: " << attached());
}

BOOST_FIXTURE_TEST_CASE(tc_pulls_headers_into_the_head_only_when_they_are_not_there, Lab) {
    // The stack's skbs hold their headers in the head and their payload in
    // pages: pulling would copy payload, and unclone every TCP segment.
    // Headers a driver left in pages must still be pulled and parsed.
    run_ok("ip -n " + host.name() + " link set " + link.a_name() + " mtu 9000");
    run_ok("ip -n " + peer.name() + " link set " + link.b_name() + " mtu 9000");
    const int ifindex = link.a_ifindex();
    Loaded l;
    EnterNetns in(host);
    pdtt::Fd egress(bpf_link_create(bpf_program__fd(l.skel->progs.pdtt_egress), ifindex,
                                    static_cast<bpf_attach_type>(PDTT_BPF_TCX_EGRESS), nullptr));
    BOOST_REQUIRE(egress.get() >= 0);
    LinearProbe probe(ifindex);
    const pkt::Addr self = pkt::v4(10, 200, 7, 1), other = pkt::v4(10, 200, 7, 9);

    const pkt::Bytes tcp =
        pkt::Frame(self, other, 40000, 5001).eth({ETH_P_IP}).ipv4(IPPROTO_TCP).tcp().payload(5000).build();
    send_split(ifindex, tcp, 14 + 20 + 20);
    BOOST_TEST(probe.last() == 54u, "headers in the head: nothing pulled, the head is still " << probe.last());

    // ICMP has no flow: its bytes land in the unattributed counters.
    const pkt::Bytes icmp =
        pkt::Frame(self, other, 0, 0).eth({ETH_P_IP}).ipv4(IPPROTO_ICMP).icmp_echo().payload(5000).build();
    pdtt_counters before = l.unattributed();
    send_split(ifindex, icmp, 14);
    BOOST_TEST(probe.last() == 128u, "only the Ethernet header in the head: pulled to " << probe.last());
    BOOST_TEST(l.unattributed().tx_bytes - before.tx_bytes == 5008u, "the pulled frame is counted");
}
