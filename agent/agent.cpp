#include "agent.hpp"

#include "factory.hpp"
#include "log.hpp"
#include "netlink.hpp"
#include "privileges.hpp"
#include "sockdiag.hpp"

#include <linux/capability.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/btf.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace pdtt {

namespace {

constexpr int kCapNetAdmin = 12;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;
constexpr int kCapSysAdmin = 21;

bool has_cap(const __user_cap_data_struct (&d)[2], int cap) { return d[cap / 32].effective & (1u << (cap % 32)); }

Timestamp wall_now() { return std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()); }

uint32_t netns_inode() {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0)
        throw Error(kExitRuntime, "cannot read /proc/self/ns/net: " + std::string(std::strerror(errno)));
    return static_cast<uint32_t>(st.st_ino);
}

// A kfunc the running kernel offers, from its BTF.
bool kernel_has_kfunc(const char* name) {
    struct btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        return false;
    const bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return found;
}

// The sinks know their own settings, not the agent's Config.
SinkSettings sink_settings(const Config& cfg) {
    SinkSettings s;
    s.files = cfg.files;
    s.log_prefix = cfg.log_prefix;
    switch (cfg.stdout_mode) {
    case StdoutMode::text:
        s.console = ConsoleFormat::text;
        break;
    case StdoutMode::json:
        s.console = ConsoleFormat::json;
        break;
    case StdoutMode::none:
        s.console = ConsoleFormat::none;
        break;
    }
    for (const auto& url : cfg.syslog) {
        SyslogOptions o{url, cfg.syslog_facility, cfg.syslog_app_name};
        o.ca_file = cfg.syslog_ca;
        o.cert_file = cfg.syslog_cert;
        o.key_file = cfg.syslog_key;
        s.syslog.push_back(std::move(o));
    }
    s.syslog_records = cfg.syslog_records;
    s.metrics = {cfg.metrics_listen, cfg.metrics_token_file, PDTT_VERSION};
    return s;
}

// Shutdown's last step: the loop runs on while a sink still delivers,
// until the one deadline they share, then stops.
void stop_when_drained(boost::asio::steady_timer& timer, const SinkList& sinks, boost::asio::io_context& io,
                       std::chrono::steady_clock::time_point deadline) {
    bool drained = std::all_of(sinks.begin(), sinks.end(), [](const auto& s) { return s->drained(); });
    if (drained || std::chrono::steady_clock::now() >= deadline) {
        io.stop();
        return;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([&timer, &sinks, &io, deadline](const boost::system::error_code&) {
        stop_when_drained(timer, sinks, io, deadline);
    });
}

} // namespace

void check_privileges() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0)
        return; // let the load report what is missing
    bool bpf = has_cap(data, kCapSysAdmin) || (has_cap(data, kCapBpf) && has_cap(data, kCapPerfmon));
    if (!bpf || !has_cap(data, kCapNetAdmin))
        throw Error(kExitPrivilege, "missing privilege: run as root, or grant CAP_BPF, CAP_PERFMON and "
                                    "CAP_NET_ADMIN (e.g. AmbientCapabilities= in the systemd unit)");
}

void check_btf() {
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        throw Error(kExitPrivilege, "the kernel has no BTF at /sys/kernel/btf/vmlinux: "
                                    "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y");
}

int resolve_interface(const std::string& name) {
    if (unsigned idx = ::if_nametoindex(name.c_str()))
        return static_cast<int>(idx);
    std::string names;
    if (struct if_nameindex* all = ::if_nameindex()) {
        for (struct if_nameindex* i = all; i->if_index; i++)
            names += (names.empty() ? "" : ", ") + std::string(i->if_name);
        ::if_freenameindex(all);
    }
    throw Error(kExitUsage, "interface '" + name + "' does not exist; interfaces here: " + names);
}

Agent::Agent(const Config& cfg) :
    cfg_(cfg), signals_(io_, SIGINT, SIGTERM, SIGHUP), tick_{boost::asio::steady_timer(io_),
                                                             std::min(cfg.interval, std::chrono::milliseconds(1000)),
                                                             [this] { tick_unless_reporting(); }},
    report_{boost::asio::steady_timer(io_), cfg.interval, [this] { report(false); }} {
    log::verbose() = cfg.verbose;
    install_libbpf_logger();
    check_privileges();
    check_btf();
    for (const auto& name : cfg_.interfaces) {
        Iface i{name, 0, {}, {}, false};
        if (!cfg_.wait_for_interfaces)
            i.ifindex = resolve_interface(name);
        else if (!(i.ifindex = static_cast<int>(::if_nametoindex(name.c_str()))))
            log::info("interface " + name + " does not exist yet: waiting for it (--wait-for-interfaces)");
        // Traffic of a VLAN device crosses its parent too: count it once, there.
        for (std::string p = vlan_parent(name); !p.empty(); p = vlan_parent(p))
            if (std::find(cfg_.interfaces.begin(), cfg_.interfaces.end(), p) != cfg_.interfaces.end())
                i.counted_on = p;
        if (!i.counted_on.empty())
            log::info(name + ": a VLAN of " + i.counted_on + ", which is monitored too: counted there, once");
        ifaces_.push_back(std::move(i));
    }

    sinks_ = make_sinks(sink_settings(cfg_), io_);

    BpfOptions opts;
    opts.target_netns = netns_inode();
    opts.flow_entries = cfg_.flow_table_size;
    opts.ring_bytes = cfg_.ring_buffer_mib << 20;
    // No uid may hold more than its share (a quarter of the table unless
    // configured): with lo monitored, or a connection flood against sshd, it
    // fills through legitimate paths.
    opts.max_flows_per_uid = cfg_.max_flows_per_user ? std::min(cfg_.max_flows_per_user, cfg_.flow_table_size)
                                                     : std::max<uint32_t>(1, cfg_.flow_table_size / 4);
    // Jobs: the hierarchy owners' cgroups are read from, fixed before load.
    std::optional<CgroupMount> cgroup_mount = choose_cgroup_mount(cfg_.cgroup_v1);
    if (cgroup_mount && cgroup_mount->version == 1 && !kernel_has_kfunc("bpf_task_get_cgroup1")) {
        log::warn("cgroup v1 hierarchy " + cgroup_mount->mount_point +
                  ": this kernel lacks bpf_task_get_cgroup1 (Linux 6.8+); jobs come from cgroup v2 instead");
        cgroup_mount = find_cgroup2_mount();
    }
    if (cgroup_mount && cgroup_mount->version == 1)
        opts.cgroup1_hierarchy = static_cast<uint32_t>(cgroup_mount->hierarchy_id);
    bpf_ = std::make_unique<Bpf>(opts);
    bpf_->attach_tracepoints();
    // After the tracepoint, so a seeded flow that closes later is seen closing.
    size_t seeded = bpf_->insert_flows(find_existing_flows(opts.target_netns));
    bpf_->owners_seeded();
    log::debug("sock_diag: " + std::to_string(seeded) + " established TCP sockets entered");
    for (auto& i : ifaces_)
        if (i.counted_on.empty() && i.ifindex != 0)
            attach(i);
    links_ = std::make_unique<LinkMonitor>(io_, [this](const LinkEvent& ev) { on_link(ev); });
    // One that appeared before the monitor listened sends no event we see.
    for (auto& i : ifaces_)
        if (i.counted_on.empty() && i.ifindex == 0)
            attach_if_present(i);

    agg_ = std::make_unique<Aggregator>(
        sinks_, names_,
        [this](uint32_t idx) -> std::string {
            for (const auto& i : ifaces_)
                if (i.ifindex == static_cast<int>(idx))
                    return i.name;
            return "if" + std::to_string(idx);
        },
        clock_, [this](const pdtt_flow_key& k) { return resolve_udp(k); });
    // Jobs: cgroup ids to paths, off the loop when a walk is needed.
    if (cgroup_mount) {
        CgroupResolver::Options o;
        o.wake = [this] { boost::asio::post(io_, [this] { cgroups_->poll(); }); };
        cgroups_ = std::make_unique<CgroupResolver>(*cgroup_mount, std::move(o));
        agg_->set_cgroups(cgroups_.get());
        log::info(std::string(cgroup_mount->version == 1 ? "jobs from cgroup v1 at " : "jobs from cgroup v2 at ") +
                  cgroup_mount->mount_point + (cgroups_->stats().handles ? ", ids resolved by handle" : ""));
    } else {
        log::info("no cgroup mount: flows carry no cgroup or job");
    }
    agg_->set_classes(&cfg_.classes);
    std::vector<std::string> problems;
    use_subuids(subuids_.load_now(&problems), problems);
    ring_ = std::make_unique<RingReader>(io_, bpf_->ring_fd(), [this](const pdtt_event& e) { agg_->on_event(e); });
    // Everything that needed more is done; the cgroup resolver keeps what its handles need.
    log::info(
        "capabilities kept: " + drop_privileges(PrivilegeNeeds{.file_handles = cgroups_ && cgroups_->stats().handles}) +
        "; no_new_privs set");
}

Agent::~Agent() = default;

void Agent::attach(Iface& i) {
    // --ingress decides (README: How it works): native XDP on NICs whose driver runs it
    // well, tc elsewhere (virtio_net, veth, tun accept XDP but pay for it).
    i.links.push_back(bpf_->attach_ingress(i.name, i.ifindex, cfg_.ingress, cfg_.xdp_mode));
    i.links.push_back(bpf_->attach_tc(i.name, i.ifindex, false));
    bpf_->set_monitored(i.ifindex, true);
    i.was_attached = true;
    log::info("attached " + i.links[0]->describe() + ", " + i.links[1]->describe());
}

void Agent::on_link(const LinkEvent& ev) {
    for (auto& i : ifaces_) {
        if (!i.counted_on.empty())
            continue;
        if (ev.removed && ev.ifindex == i.ifindex) {
            // The kernel already detached our links with the device.
            i.links.clear();
            bpf_->set_monitored(i.ifindex, false);
            i.ifindex = 0;
            log::warn("interface " + i.name + " was deleted; counting resumes when it comes back");
        } else if (!ev.removed && i.ifindex == 0 && ev.name == i.name) {
            i.ifindex = ev.ifindex;
            try {
                bool back = i.was_attached;
                attach(i);
                log::info("interface " + i.name + (back ? " is back; counting resumes" : " appeared; counting starts"));
            } catch (const Error& e) {
                i.links.clear();
                i.ifindex = 0;
                log::warn(std::string(e.what()) + " (will retry when it changes again)");
            }
        }
    }
    notify_.status(awaited());
}

void Agent::attach_if_present(Iface& i) {
    unsigned idx = ::if_nametoindex(i.name.c_str());
    if (idx != 0)
        on_link(LinkEvent{false, static_cast<int>(idx), i.name});
}

std::vector<std::string> Agent::awaited() const {
    std::vector<std::string> names;
    for (const auto& i : ifaces_)
        if (i.counted_on.empty() && i.ifindex == 0)
            names.push_back(i.name);
    return names;
}

int Agent::run() {
    std::signal(SIGPIPE, SIG_IGN); // a closed stdout pipe is a counted write error
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec)
            on_signal(sig);
    });
    ring_->start();
    links_->start();
    interval_start_ = std::chrono::steady_clock::now();
    tick_.next = interval_start_ + tick_.period;
    report_.next = interval_start_ + report_.period;
    arm(tick_);
    arm(report_);
    log::info("monitoring " + std::to_string(ifaces_.size()) + " interface(s); report every " +
              std::to_string(cfg_.interval.count() / 1000.0).substr(0, 5) + " s");
    notify_.start(awaited());
    io_.run();
    return kExitOk;
}

void Agent::on_signal(int sig) {
    if (sig == SIGHUP) {
        log::debug("SIGHUP: reopening log files");
        for (auto& s : sinks_)
            s->reopen();
        signals_.async_wait([this](const boost::system::error_code& ec, int s) {
            if (!ec)
                on_signal(s);
        });
        return;
    }
    shutdown();
}

void Agent::arm(Periodic& p) {
    p.timer.expires_at(p.next);
    p.timer.async_wait([this, &p](const boost::system::error_code& ec) {
        if (ec || stopping_)
            return;
        p.next += p.period;
        p.fire();
        arm(p);
    });
}

// A report due at the same moment ticks itself: one tick then, not two a
// millisecond apart (which would give a flow two deltas in one second).
void Agent::tick_unless_reporting() {
    auto due = tick_.next - tick_.period;
    if (due != report_.next && due != report_.next - report_.period)
        tick();
}

void Agent::tick() {
    ring_->drain(); // closes first, so the kernel's deltas find them gone
    std::vector<std::string> problems;
    if (auto m = subuids_.poll(&problems)) // before the records that need it
        use_subuids(std::move(m), problems);
    if (!bpf_->emit_deltas([this] { ring_->drain(); }))
        deltas_incomplete_++;
    close_udp_flows();
    agg_->deltas_done();
    agg_->release_held(std::chrono::steady_clock::now()); // reports whose user's name has arrived
    Counters u = bpf_->unattributed();
    agg_->add_unattributed(since(u, unattributed_seen_));
    unattributed_seen_ = u;
    for (const auto& [uid, delta] : bpf_->take_overflow()) {
        // A flow whose owner the kernel side did not know: nobody's.
        if (uid == PDTT_UID_UNRESOLVED)
            agg_->add_unattributed(delta);
        else
            agg_->add_overflow(uid, delta);
    }
}

// Subordinate uids count as their range's owner: in reports, and in the
// kernel's per-user share of the flow table.
void Agent::use_subuids(std::shared_ptr<const SubuidMap> m, const std::vector<std::string>& problems) {
    for (const auto& p : problems)
        log::warn(subuids_.path() + ": " + p);
    size_t loaded = bpf_->set_subuid_ranges(m->ranges());
    if (loaded < m->ranges().size())
        log::warn(subuids_.path() + ": " + std::to_string(m->ranges().size() - loaded) + " ranges past the kernel's " +
                  std::to_string(loaded) + " count in their own uid's flow share");
    log::debug(subuids_.path() + ": " + std::to_string(m->ranges().size()) + " subordinate uid ranges");
    agg_->set_subuids(std::move(m));
}

int64_t Agent::resolve_udp(const pdtt_flow_key& k) {
    uint64_t now = WallClock::mono_now_ns();
    if (now - udp_socks_ns_ > 100'000'000) { // one socket table read serves a burst
        try {
            udp_socks_ = udp_sockets(bpf_->target_netns());
        } catch (const Error& e) {
            log::warn(e.what());
        }
        udp_socks_ns_ = now;
    }
    const UdpSocket* sock = udp_socks_.receiver(k);
    if (!sock)
        return kUnattributedUid;
    // Teach the kernel side, so the socket's next peers are attributed there.
    bpf_->set_udp_owner(sock->cookie, sock->uid);
    return sock->uid;
}

void Agent::close_udp_flows() {
    // udp_owners fills from every UDP socket that moves bytes, flows or not:
    // prune it every few ticks even when no UDP flow is open.
    constexpr uint64_t kPruneTicks = 5;
    bool prune = ++udp_ticks_ % kPruneTicks == 0;
    if (agg_->udp_active() == 0 && !prune)
        return;
    try {
        udp_socks_ = udp_sockets(bpf_->target_netns());
        udp_socks_ns_ = WallClock::mono_now_ns();
    } catch (const Error& e) {
        log::warn(e.what());
        return;
    }
    if (prune) {
        size_t gone = bpf_->prune_udp_owners([this](uint64_t cookie) { return udp_socks_.alive(cookie); });
        if (gone)
            log::debug("udp_owners: " + std::to_string(gone) + " entries of closed sockets dropped");
    }
    uint64_t now = WallClock::mono_now_ns();
    auto idle_ns = static_cast<uint64_t>(std::chrono::nanoseconds(cfg_.udp_timeout).count());
    auto keys =
        agg_->udp_to_close(now, idle_ns, [this](const pdtt_flow_key& k) { return udp_socks_.receiver(k) != nullptr; });
    for (const auto& k : keys) {
        pdtt_flow f;
        if (!bpf_->take_flow(k, f)) {
            agg_->forget(k);
            continue;
        }
        // The same record the tracepoint emits for a TCP close.
        agg_->on_event(make_event(PDTT_EV_FLOW_CLOSE, now, k, f));
    }
}

AgentStats Agent::stats(double interval_s) const {
    StatArray k = bpf_->stats();
    AgentStats s;
    s.ts = wall_now();
    s.interval_s = interval_s;
    s.events = ring_->consumed();
    s.ring_drops = k[PDTT_STAT_RB_DROPS];
    s.flow_table_full = k[PDTT_STAT_FLOW_FULL];
    s.aux_table_full = k[PDTT_STAT_AUX_FULL];
    s.flow_share_full = k[PDTT_STAT_SHARE_FULL];
    s.owner_deferred = k[PDTT_STAT_OWNER_DEFERRED];
    s.deltas_incomplete = deltas_incomplete_;
    s.flows_active = agg_->active();
    s.flows_udp = agg_->udp_active();
    s.flow_table_size = bpf_->flow_capacity();
    for (const auto& sink : sinks_)
        s.sink_errors += sink->errors();
    for (const auto& i : ifaces_)
        s.interfaces_missing += i.counted_on.empty() && i.ifindex == 0;
    if (cgroups_)
        s.cgroups_unresolved = cgroups_->stats().unresolved;
    return s;
}

void Agent::report(bool final) {
    tick();
    auto now = std::chrono::steady_clock::now();
    double interval_s = std::chrono::duration<double>(now - interval_start_).count();
    interval_start_ = now;
    clock_.resync();
    agg_->report(wall_now(), interval_s);
    if (final) // what waits for a name waits no longer than a part of the 2 s
        agg_->flush_held(now + std::chrono::milliseconds(500));
    AgentStats st = stats(interval_s);
    for (auto& s : sinks_) {
        s->agent_stats(st);
        s->interval_end();
        if (final)
            s->flush();
    }
    if (!final)
        agg_->prune([this](const pdtt_flow_key& k) { return bpf_->has_flow(k); }, [this] { ring_->drain(); });
}

void Agent::shutdown() {
    if (stopping_)
        return;
    stopping_ = true;
    notify_.stopping();
    // Exit within two seconds of the signal, whatever the sinks are
    // doing; the rest is the final report, detaching and exit itself.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
    log::debug("stopping: final report");
    report(true);
    ring_->stop();
    tick_.timer.cancel();
    report_.timer.cancel();
    signals_.cancel();
    links_->stop();
    ifaces_.clear();
    bpf_->detach_tracepoints();
    for (auto& s : sinks_)
        s->drain(deadline);
    stop_when_drained(tick_.timer, sinks_, io_, deadline);
}

} // namespace pdtt
