#include "bpf.hpp"

#include "errors.hpp"
#include "fd.hpp"
#include "log.hpp"
#include "pdtt.skel.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

namespace pdtt {

namespace {

// clsact fallback: a handle and priority no other tool is likely to use.
constexpr uint32_t kTcHandle = 0x7064;   // "pd"
constexpr uint32_t kTcPriority = 0x7474; // "tt"

std::string errstr(int err) { return std::strerror(err < 0 ? -err : err); }

[[noreturn]] void fail(int code, const std::string& msg) { throw Error(code, msg); }

class LinkAttachment : public Attachment {
public:
    LinkAttachment(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
    std::string describe() const override { return what_; }

private:
    Fd fd_; // closing the last link fd detaches
    std::string what_;
};

class LibbpfLinkAttachment : public Attachment {
public:
    LibbpfLinkAttachment(BpfLink l, std::string what) : link_(std::move(l)), what_(std::move(what)) {}
    std::string describe() const override { return what_; }

private:
    BpfLink link_;
    std::string what_;
};

// Pre-TCX kernels: a clsact filter. It outlives a killed agent, so the next
// start replaces it (same handle and priority).
class TcFilterAttachment : public Attachment {
public:
    TcFilterAttachment(int ifindex, bpf_tc_attach_point where, std::string what) :
        ifindex_(ifindex), where_(where), what_(std::move(what)) {}
    ~TcFilterAttachment() override {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = where_);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
        bpf_tc_detach(&hook, &opts);
    }
    std::string describe() const override { return what_; }

private:
    int ifindex_;
    bpf_tc_attach_point where_;
    std::string what_;
};

// The I/O hooks need these tracepoints in the kernel's BTF: Linux 6.4 added
// sock_send_length and sock_recv_length, 6.16 tcp_sendmsg_locked.
constexpr const char* kTcpSendTracepoint = "tcp_sendmsg_locked";
constexpr const char* kSockTracepoints[] = {"sock_send_length", "sock_recv_length"};

struct IoTracepoints {
    bool sock = false, tcp_send = false;
};

IoTracepoints kernel_io_tracepoints() {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        return {};
    auto has = [&](const char* tp) {
        return btf__find_by_name_kind(vmlinux, ("btf_trace_" + std::string(tp)).c_str(), BTF_KIND_TYPEDEF) >= 0;
    };
    IoTracepoints out;
    out.sock = std::all_of(std::begin(kSockTracepoints), std::end(kSockTracepoints), has);
    out.tcp_send = has(kTcpSendTracepoint);
    btf__free(vmlinux);
    return out;
}

// Flow ids of the flows the agent seeds from the socket table: a range of
// their own, so they never meet the kernel's.
constexpr uint64_t kSeededFlowIds = 1ull << 63;
// Ring bytes a delta pass leaves to the packet path's records.
constexpr uint64_t kDeltaHeadroomDivisor = 4;
// Runs of the delta program one pass may take before it gives up.
constexpr int kMaxDeltaRuns = 1024;

// Test-only: PDTT_TEST_FORCE=classic-tracepoint,clsact,no-tcp-sendmsg-locked,idle-hooks
// makes the agent take the fallbacks it would take on an older kernel (no
// tp_btf; no TCX; no tcp_sendmsg_locked), so that the tests can run them on
// this one. Unset, it changes nothing. Read once.
struct Forced {
    bool classic_tracepoint = false, clsact = false, no_tcp_send = false, idle_hooks = false;
};

const Forced& forced() {
    static const Forced f = [] {
        Forced out;
        const char* env = std::getenv("PDTT_TEST_FORCE");
        std::string list = env ? env : "";
        for (size_t at = 0; at < list.size();) {
            size_t end = std::min(list.find(',', at), list.size());
            std::string v = list.substr(at, end - at);
            if (v == "classic-tracepoint")
                out.classic_tracepoint = true;
            else if (v == "clsact")
                out.clsact = true;
            else if (v == "no-tcp-sendmsg-locked")
                out.no_tcp_send = true;
            else if (v == "idle-hooks")
                out.idle_hooks = true;
            else if (!v.empty())
                log::warn("PDTT_TEST_FORCE: unknown value '" + v + "' ignored");
            at = end + 1;
        }
        if (out.classic_tracepoint || out.clsact || out.no_tcp_send)
            log::warn("PDTT_TEST_FORCE=" + list + ": fallbacks forced for a test");
        if (out.idle_hooks)
            log::warn("PDTT_TEST_FORCE=idle-hooks: the packet programs, state tracepoint and I/O hooks return at once, "
                      "nothing "
                      "is counted (a benchmark's reference)");
        return out;
    }();
    return f;
}

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG && !log::verbose())
        return 0;
    // Verifier logs run to megabytes: size the buffer to the message.
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    std::string s(n > 0 ? n : 0, '\0');
    std::vsnprintf(s.data(), s.size() + 1, fmt, args);
    while (!s.empty() && s.back() == '\n')
        s.pop_back();
    if (level == LIBBPF_DEBUG)
        log::debug("libbpf: " + s);
    else if (log::verbose()) // warnings are explained by our own error line
        log::warn("libbpf: " + s);
    return 0;
}

} // namespace

bool native_xdp_driver(const std::string& ifname) {
    // NIC drivers that run native XDP well, multi-buffer (jumbo) frames too.
    static const char* const kDrivers[] = {"mlx5_core", "mlx4_en", "ice", "i40e", "ixgbe", "igb",
                                           "igc",       "bnxt_en", "nfp", "qede", "sfc",   "ena"};
    std::error_code ec;
    auto driver = std::filesystem::read_symlink("/sys/class/net/" + ifname + "/device/driver", ec);
    if (ec)
        return false;
    std::string name = driver.filename().string();
    return std::any_of(std::begin(kDrivers), std::end(kDrivers), [&](const char* d) { return name == d; });
}

std::string xdp_unfit(const std::string& ifname) {
    // The device's link type, asked of this namespace's kernel, not of /sys.
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    ifname.copy(ifr.ifr_name, IFNAMSIZ - 1);
    if (!s || ::ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0)
        return ""; // the attach that follows says what is wrong
    switch (ifr.ifr_hwaddr.sa_family) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK: // lo's frames carry an Ethernet header too
        return "";
    case ARPHRD_NONE:
        return "a layer-3 device (no link header)";
    case ARPHRD_INFINIBAND:
        return "an IPoIB device (no Ethernet header)";
    default:
        return "not an Ethernet device (link type " + std::to_string(ifr.ifr_hwaddr.sa_family) + ")";
    }
}

void install_libbpf_logger() { libbpf_set_print(libbpf_print); }

Bpf::Bpf(const BpfOptions& opts) : opts_(opts) {
    // Each fallback gives up a little: first the hook before a TCP write's
    // segments leave, then the other I/O hooks (owners become sk_uid), then
    // tp_btf (the classic tracepoint needs tracefs, not BTF).
    struct Try {
        bool btf_tracepoint, io_hooks, tcp_send;
    };
    std::vector<Try> tries;
    if (!forced().classic_tracepoint) {
        IoTracepoints io = kernel_io_tracepoints();
        if (io.sock && io.tcp_send && !forced().no_tcp_send)
            tries.push_back({true, true, true});
        if (io.sock)
            tries.push_back({true, true, false});
        tries.push_back({true, false, false});
    }
    tries.push_back({false, false, false});
    std::optional<Error> first;
    for (const Try& t : tries) {
        try {
            skel_ = load(t.btf_tracepoint, t.io_hooks, t.tcp_send);
            btf_tracepoint_ = t.btf_tracepoint;
            io_hooks_ = t.io_hooks;
            tcp_send_hook_ = t.tcp_send;
            break;
        } catch (const Error& e) {
            log::debug(std::string("BPF load failed, trying with less: ") + e.what());
            if (!first)
                first = e;
        }
    }
    if (!skel_)
        throw *first;
    if (!io_hooks_)
        log::warn("the I/O hooks (tracepoints sock/sock_send_length, sock/sock_recv_length) are not available "
                  "here: a flow's owner is the process that opened it, not the process that moves its bytes");
    else if (!tcp_send_hook_)
        log::warn("the tracepoint tcp/tcp_sendmsg_locked is not available here (Linux 6.16 added it): when a TCP "
                  "socket changes owner, the new owner's first write is counted for the previous one");
}

Skeleton Bpf::load(bool btf_tracepoint, bool io_hooks, bool tcp_send) const {
    return load_skeleton([&](pdtt_bpf& s) {
        s.rodata->target_netns = opts_.target_netns;
        s.rodata->ring_wakeup_bytes = opts_.ring_bytes / 4;
        s.rodata->max_slots_per_uid = opts_.max_flows_per_uid;
        s.rodata->cgroup1_hierarchy = opts_.cgroup1_hierarchy;
        s.rodata->idle_hooks = forced().idle_hooks;
        bpf_map__set_max_entries(s.maps.flows, opts_.flow_entries);
        bpf_map__set_max_entries(s.maps.events, opts_.ring_bytes);
        bpf_program__set_autoload(s.progs.pdtt_state_btf, btf_tracepoint);
        bpf_program__set_autoload(s.progs.pdtt_state_tp, !btf_tracepoint);
        for (bpf_program* p : {s.progs.pdtt_sock_send, s.progs.pdtt_sock_recv})
            bpf_program__set_autoload(p, io_hooks);
        bpf_program__set_autoload(s.progs.pdtt_tcp_send, io_hooks && tcp_send);
    });
}

void Bpf::attach_tracepoints() {
    bpf_program* prog = btf_tracepoint_ ? skel_->progs.pdtt_state_btf : skel_->progs.pdtt_state_tp;
    if (!btf_tracepoint_ && !std::filesystem::exists("/sys/kernel/tracing/events") &&
        !std::filesystem::exists("/sys/kernel/debug/tracing/events")) {
        // The classic tracepoint is found through tracefs.
        if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
            log::warn("cannot mount tracefs on /sys/kernel/tracing: " + errstr(errno));
    }
    auto attach = [&](bpf_program* p, const std::string& what) {
        BpfLink l(bpf_program__attach(p));
        if (!l)
            fail(exit_code_for(errno), "cannot attach to tracepoint " + what + ": " + errstr(errno));
        tracepoints_.push_back(std::make_unique<LibbpfLinkAttachment>(std::move(l), what));
        log::debug("attached " + what);
    };
    // The I/O hooks first: a flow established from now on finds its owner.
    if (io_hooks_) {
        if (tcp_send_hook_)
            attach(skel_->progs.pdtt_tcp_send, "tp_btf/tcp_sendmsg_locked");
        attach(skel_->progs.pdtt_sock_send, "tp_btf/sock_send_length");
        attach(skel_->progs.pdtt_sock_recv, "tp_btf/sock_recv_length");
    }
    attach(prog, btf_tracepoint_ ? "tp_btf/inet_sock_set_state" : "tracepoint/sock/inet_sock_set_state");
}

std::unique_ptr<Attachment> Bpf::attach_xdp(const std::string& ifname, int ifindex, XdpMode mode) {
    int prog = bpf_program__fd(skel_->progs.pdtt_xdp);
    auto try_mode = [&](uint32_t flags) {
        LIBBPF_OPTS(bpf_link_create_opts, o, .flags = flags);
        return bpf_link_create(prog, ifindex, BPF_XDP, &o);
    };
    bool native = mode != XdpMode::generic;
    int fd = try_mode(native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    int err = fd < 0 ? errno : 0;
    if (fd < 0 && native && mode == XdpMode::automatic && err != EBUSY && err != EEXIST) {
        log::info(ifname + ": native XDP unavailable (" + errstr(err) + "), using generic XDP");
        native = false;
        fd = try_mode(XDP_FLAGS_SKB_MODE);
        err = fd < 0 ? errno : 0;
    }
    if (fd < 0) {
        if (err == EBUSY || err == EEXIST)
            fail(kExitRuntime, "another XDP program is attached to " + ifname + " (see 'ip link show " + ifname +
                                   "'); detach it first");
        if (mode == XdpMode::native)
            fail(kExitPrivilege, "cannot attach native XDP to " + ifname + " (" + errstr(err) +
                                     "); the driver may lack it: use --ingress tc, or --xdp-mode generic");
        fail(exit_code_for(err), "cannot attach XDP to " + ifname + ": " + errstr(err));
    }
    return std::make_unique<LinkAttachment>(Fd(fd),
                                            "xdp/" + std::string(native ? "native" : "generic") + " on " + ifname);
}

std::unique_ptr<Attachment> Bpf::attach_ingress(const std::string& ifname, int ifindex, IngressHook hook,
                                                XdpMode mode) {
    const std::string unfit = xdp_unfit(ifname);
    if (hook == IngressHook::xdp) {
        if (!unfit.empty())
            fail(kExitPrivilege, "cannot use XDP on " + ifname + ": " + unfit + "; use --ingress tc or auto");
        return attach_xdp(ifname, ifindex, mode);
    }
    // auto: native XDP only where the driver runs it well, never generic.
    if (hook == IngressHook::automatic && unfit.empty() && native_xdp_driver(ifname)) {
        try {
            return attach_xdp(ifname, ifindex, XdpMode::native);
        } catch (const Error& e) {
            log::warn(ifname + ": native XDP unavailable, using tc ingress (" + e.what() + ")");
        }
    }
    return attach_tc(ifname, ifindex, true);
}

std::unique_ptr<Attachment> Bpf::attach_tc(const std::string& ifname, int ifindex, bool ingress) {
    const char* dir = ingress ? "ingress" : "egress";
    int prog = bpf_program__fd(ingress ? skel_->progs.pdtt_ingress : skel_->progs.pdtt_egress);
    int type = ingress ? PDTT_BPF_TCX_INGRESS : PDTT_BPF_TCX_EGRESS;
    int fd = forced().clsact ? -1 : bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(type), nullptr);
    if (fd >= 0)
        return std::make_unique<LinkAttachment>(Fd(fd), std::string("tcx/") + dir + " on " + ifname);
    int err = forced().clsact ? EOPNOTSUPP : errno;
    log::debug(ifname + ": TCX unavailable (" + errstr(err) + "), using a clsact filter");

    bpf_tc_attach_point where = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
    int r = bpf_tc_hook_create(&hook);
    if (r && r != -EEXIST)
        fail(exit_code_for(r), "cannot create a clsact qdisc on " + ifname + ": " + errstr(r));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog, .flags = BPF_TC_F_REPLACE, .handle = kTcHandle,
                .priority = kTcPriority);
    // BPF_TC_F_REPLACE takes over a filter a killed agent left behind.
    if ((r = bpf_tc_attach(&hook, &opts)))
        fail(exit_code_for(r), std::string("cannot attach the ") + dir + " program to " + ifname + ": " + errstr(r));
    return std::make_unique<TcFilterAttachment>(ifindex, where, std::string("tc/clsact ") + dir + " on " + ifname);
}

void Bpf::set_monitored(int ifindex, bool on) {
    uint32_t key = static_cast<uint32_t>(ifindex), one = 1;
    int fd = bpf_map__fd(skel_->maps.monitored);
    if (on)
        bpf_map_update_elem(fd, &key, &one, BPF_ANY);
    else
        bpf_map_delete_elem(fd, &key);
}

bool Bpf::emit_deltas(const std::function<void()>& drain) {
    pdtt_delta_args args{};
    args.tick = ++tick_;
    args.headroom = opts_.ring_bytes / kDeltaHeadroomDivisor;
    int prog = bpf_program__fd(skel_->progs.pdtt_emit_deltas);
    for (int run = 0; run < kMaxDeltaRuns; run++) {
        args.more = 0;
        LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
        if (int err = bpf_prog_test_run_opts(prog, &opts)) {
            log::warn("delta pass failed: " + errstr(err));
            return false;
        }
        drain();
        if (!args.more)
            return true;
    }
    return false;
}

int Bpf::ring_fd() const { return bpf_map__fd(skel_->maps.events); }
int Bpf::flows_fd() const { return bpf_map__fd(skel_->maps.flows); }

bool Bpf::has_flow(const pdtt_flow_key& k) const {
    pdtt_flow v;
    return bpf_map_lookup_elem(flows_fd(), &k, &v) == 0;
}

size_t Bpf::insert_flows(const std::vector<FlowEntry>& flows) {
    size_t n = 0;
    for (FlowEntry e : flows) {
        e.flow.id = kSeededFlowIds | ++seeded_;
        e.flow.slot_uid = PDTT_SLOT_NONE; // counts in no uid's share
        n += bpf_map_update_elem(flows_fd(), &e.key, &e.flow, BPF_NOEXIST) == 0;
    }
    return n;
}

bool Bpf::take_flow(const pdtt_flow_key& k, pdtt_flow& out) {
    // In the kernel, so that the flow's slot is given back to its uid.
    pdtt_take_args args{};
    args.key = k;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
    if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.pdtt_take_flow), &opts) || !args.found)
        return false;
    out = args.flow;
    return true;
}

void Bpf::set_udp_owner(uint64_t cookie, uint32_t uid) {
    // A fresh generation tells the socket's flows to take it; the kernel
    // counts its own up from 1. An owner the I/O hooks saw is better: keep it.
    pdtt_owner o{};
    o.uid = uid;
    o.gen = kSeededFlowIds | ++owner_gens_;
    o.cookie = cookie;
    // After the write, as the kernel's writers do: UDP flows look at their entry again.
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.udp_owners), &cookie, &o, BPF_NOEXIST) == 0)
        __atomic_fetch_add(&skel_->bss->owner_changes, 1, __ATOMIC_SEQ_CST);
}

size_t Bpf::prune_udp_owners(const std::function<bool(uint64_t)>& alive) {
    int fd = bpf_map__fd(skel_->maps.udp_owners);
    // In batches: one syscall per few thousand entries, not two per entry.
    constexpr uint32_t kBatch = 4096;
    std::vector<uint64_t> keys(kBatch);
    std::vector<pdtt_owner> vals(kBatch);
    std::vector<uint64_t> dead;
    std::unordered_set<uint64_t> suspects;
    uint64_t in = 0, out = 0;
    bool first = true;
    for (;;) {
        uint32_t n = kBatch;
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data(), vals.data(), &n, nullptr);
        first = false;
        if (err && errno != ENOENT)
            break; // what was read is still pruned; the rest waits for the next call
        for (uint32_t i = 0; i < n; i++) {
            if (alive(keys[i]))
                continue;
            if (dead_owners_.count(keys[i]))
                dead.push_back(keys[i]);
            else
                suspects.insert(keys[i]);
        }
        if (err)
            break; // ENOENT: that was the last batch
        in = out;
    }
    dead_owners_ = std::move(suspects);
    size_t gone = 0;
    for (uint64_t k : dead) // a cookie is never reused: dead stays dead
        gone += bpf_map_delete_elem(fd, &k) == 0;
    return gone;
}

size_t Bpf::set_subuid_ranges(const std::vector<SubuidRange>& ranges) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(ranges.size(), PDTT_SUBUID_RANGES));
    uint32_t& count = skel_->bss->subuid_count;
    // Never a count past what is written: shrink first, grow last.
    count = std::min(count, n);
    int fd = bpf_map__fd(skel_->maps.subuid_ranges);
    for (uint32_t i = 0; i < n; i++) {
        pdtt_subuid_range r{ranges[i].first, ranges[i].count, ranges[i].owner, 0};
        bpf_map_update_elem(fd, &i, &r, BPF_ANY);
    }
    count = n;
    return n;
}

std::vector<std::pair<uint32_t, Counters>> Bpf::take_overflow() {
    // Taken, not read: the map holds only what came since the last tick, so
    // uids that come and go (a rootless container's) never fill it for good.
    std::vector<uint32_t> uids;
    int fd = bpf_map__fd(skel_->maps.overflow);
    uint32_t key = 0, next = 0;
    const uint32_t* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        uids.push_back(next);
        key = next;
        prev = &key;
    }
    std::vector<std::pair<uint32_t, Counters>> out;
    for (uint32_t uid : uids) {
        pdtt_counters c{};
        if (bpf_map_lookup_and_delete_elem(fd, &uid, &c) == 0)
            out.emplace_back(uid, Counters{c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets});
    }
    return out;
}

void Bpf::owners_seeded() { skel_->bss->owner_epoch++; }

Counters Bpf::unattributed() const {
    std::vector<pdtt_counters> per_cpu(libbpf_num_possible_cpus());
    uint32_t key = PDTT_UNATTRIBUTED;
    Counters sum;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.unattributed), &key, per_cpu.data()) == 0) {
        for (const auto& c : per_cpu)
            sum += Counters{c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets};
    }
    return sum;
}

StatArray Bpf::stats() const {
    StatArray out{};
    std::vector<uint64_t> per_cpu(libbpf_num_possible_cpus());
    for (uint32_t i = 0; i < PDTT_STAT_MAX; i++) {
        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &i, per_cpu.data()) == 0)
            for (uint64_t v : per_cpu)
                out[i] += v;
    }
    return out;
}

} // namespace pdtt
