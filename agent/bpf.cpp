#include "bpf.hpp"

#include "errors.hpp"
#include "fd.hpp"
#include "log.hpp"
#include "pdtt.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>

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
    Fd fd_;   // closing the last link fd detaches
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
    TcFilterAttachment(int ifindex, std::string what) : ifindex_(ifindex), what_(std::move(what)) {}
    ~TcFilterAttachment() override {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = BPF_TC_EGRESS);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kTcHandle, .priority = kTcPriority);
        bpf_tc_detach(&hook, &opts);
    }
    std::string describe() const override { return what_; }

private:
    int ifindex_;
    std::string what_;
};

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
    else if (log::verbose())   // warnings are explained by our own error line
        log::warn("libbpf: " + s);
    return 0;
}

bool is_virtual(const std::string& ifname) {
    return !std::filesystem::exists("/sys/class/net/" + ifname + "/device");
}

} // namespace

void install_libbpf_logger() { libbpf_set_print(libbpf_print); }

Bpf::Bpf(const BpfOptions& opts) : opts_(opts) {
    try {
        skel_ = load(true);
    } catch (const Error& first) {
        // tp_btf needs the tracepoint in vmlinux BTF; the classic one does not.
        log::debug(std::string("tp_btf load failed, trying the classic tracepoint: ") + first.what());
        try {
            skel_ = load(false);
        } catch (const Error&) {
            throw first;
        }
        btf_tracepoint_ = false;
    }
}

Skeleton Bpf::load(bool btf_tracepoint) const {
    return load_skeleton([&](pdtt_bpf& s) {
        s.rodata->target_netns = opts_.target_netns;
        s.rodata->ring_wakeup_bytes = opts_.ring_bytes / 4;
        bpf_map__set_max_entries(s.maps.flows, opts_.flow_entries);
        bpf_map__set_max_entries(s.maps.events, opts_.ring_bytes);
        bpf_program__set_autoload(s.progs.pdtt_state_btf, btf_tracepoint);
        bpf_program__set_autoload(s.progs.pdtt_state_tp, !btf_tracepoint);
    });
}

void Bpf::attach_state_tracepoint() {
    bpf_program* prog = btf_tracepoint_ ? skel_->progs.pdtt_state_btf : skel_->progs.pdtt_state_tp;
    if (!btf_tracepoint_ && !std::filesystem::exists("/sys/kernel/tracing/events") &&
        !std::filesystem::exists("/sys/kernel/debug/tracing/events")) {
        // The classic tracepoint is found through tracefs.
        if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
            log::warn("cannot mount tracefs on /sys/kernel/tracing: " + errstr(errno));
    }
    BpfLink l(bpf_program__attach(prog));
    if (!l)
        fail(exit_code_for(errno), "cannot attach to tracepoint sock/inet_sock_set_state: " + errstr(errno));
    tracepoint_ = std::make_unique<LibbpfLinkAttachment>(
        std::move(l), btf_tracepoint_ ? "tp_btf/inet_sock_set_state" : "tracepoint/sock/inet_sock_set_state");
    log::debug("attached " + tracepoint_->describe());
}

std::unique_ptr<Attachment> Bpf::attach_xdp(const std::string& ifname, int ifindex, XdpMode mode) {
    int prog = bpf_program__fd(skel_->progs.pdtt_xdp);
    auto try_mode = [&](uint32_t flags) {
        LIBBPF_OPTS(bpf_link_create_opts, o, .flags = flags);
        return bpf_link_create(prog, ifindex, BPF_XDP, &o);
    };
    bool native = mode == XdpMode::native || (mode == XdpMode::automatic && !is_virtual(ifname));
    int fd = try_mode(native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    int err = fd < 0 ? errno : 0;
    if (fd < 0 && native && mode == XdpMode::automatic) {
        log::debug(ifname + ": native XDP unavailable (" + errstr(err) + "), using generic");
        native = false;
        fd = try_mode(XDP_FLAGS_SKB_MODE);
        err = fd < 0 ? errno : 0;
    }
    if (fd < 0) {
        if (err == EBUSY || err == EEXIST)
            fail(kExitRuntime, "another XDP program is attached to " + ifname +
                                   " (see 'ip link show " + ifname + "'); detach it first");
        if (mode == XdpMode::native)
            fail(kExitPrivilege, "cannot attach native XDP to " + ifname + " (" + errstr(err) +
                                     "); the driver may lack it: use --xdp-mode generic");
        fail(exit_code_for(err), "cannot attach XDP to " + ifname + ": " + errstr(err));
    }
    return std::make_unique<LinkAttachment>(Fd(fd), "xdp/" + std::string(native ? "native" : "generic") + " on " + ifname);
}

std::unique_ptr<Attachment> Bpf::attach_egress(const std::string& ifname, int ifindex) {
    int prog = bpf_program__fd(skel_->progs.pdtt_egress);
    int fd = bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(PDTT_BPF_TCX_EGRESS), nullptr);
    if (fd >= 0)
        return std::make_unique<LinkAttachment>(Fd(fd), "tcx/egress on " + ifname);
    int err = errno;
    log::debug(ifname + ": TCX unavailable (" + errstr(err) + "), using a clsact filter");

    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
    int r = bpf_tc_hook_create(&hook);
    if (r && r != -EEXIST)
        fail(exit_code_for(r), "cannot create a clsact qdisc on " + ifname + ": " + errstr(r));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog, .flags = BPF_TC_F_REPLACE, .handle = kTcHandle,
                .priority = kTcPriority);
    // BPF_TC_F_REPLACE takes over a filter a killed agent left behind.
    if ((r = bpf_tc_attach(&hook, &opts)))
        fail(exit_code_for(r), "cannot attach the egress program to " + ifname + ": " + errstr(r));
    return std::make_unique<TcFilterAttachment>(ifindex, "tc/clsact egress on " + ifname);
}

void Bpf::emit_deltas() {
    LIBBPF_OPTS(bpf_test_run_opts, run);
    if (int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.pdtt_emit_deltas), &run))
        log::warn("delta pass failed: " + errstr(err));
}

int Bpf::ring_fd() const { return bpf_map__fd(skel_->maps.events); }
int Bpf::flows_fd() const { return bpf_map__fd(skel_->maps.flows); }

bool Bpf::has_flow(const pdtt_flow_key& k) const {
    pdtt_flow v;
    return bpf_map_lookup_elem(flows_fd(), &k, &v) == 0;
}

size_t Bpf::insert_flows(const std::vector<FlowEntry>& flows) {
    size_t n = 0;
    for (const auto& e : flows)
        n += bpf_map_update_elem(flows_fd(), &e.key, &e.flow, BPF_NOEXIST) == 0;
    return n;
}

bool Bpf::take_flow(const pdtt_flow_key& k, pdtt_flow& out) {
    return bpf_map_lookup_and_delete_elem(flows_fd(), &k, &out) == 0;
}

void Bpf::set_udp_owner(const pdtt_port_key& k, uint32_t uid) {
    bpf_map_update_elem(bpf_map__fd(skel_->maps.udp_owners), &k, &uid, BPF_ANY);
}

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
