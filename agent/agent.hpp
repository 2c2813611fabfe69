// The agent: checks the host, loads and attaches the kernel side, then runs
// one Boost.Asio loop (ring buffer, tick and report timers, signals).
#pragma once

#include "aggregator.hpp"
#include "bpf.hpp"
#include "cgroups.hpp"
#include "config.hpp"
#include "names.hpp"
#include "netlink.hpp"
#include "notify.hpp"
#include "ring.hpp"
#include "sink.hpp"
#include "sockdiag.hpp"
#include "subuid.hpp"
#include "wall_clock.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pdtt {

// Throws Error(kExitPrivilege) unless we may load and attach BPF programs.
void check_privileges();
// Throws Error(kExitPrivilege) when the kernel has no BTF.
void check_btf();
// ifindex of NAME; Error(kExitUsage) naming the interfaces that exist.
int resolve_interface(const std::string& name);

class Agent {
public:
    explicit Agent(const Config& cfg);
    ~Agent();
    // Runs until SIGINT/SIGTERM; returns the exit status.
    int run();

private:
    // One monitored interface and what is attached to it.
    struct Iface {
        std::string name;
        int ifindex = 0; // 0 while it does not exist
        std::vector<std::unique_ptr<Attachment>> links;
        std::string counted_on;    // a monitored VLAN parent counts it
        bool was_attached = false; // a return, not a first appearance
    };
    // Calls fire every period on a fixed schedule: a slow fire never makes it drift.
    struct Periodic {
        boost::asio::steady_timer timer;
        std::chrono::milliseconds period;
        std::function<void()> fire;
        std::chrono::steady_clock::time_point next{};
    };

    void attach(Iface& i);
    void attach_if_present(Iface& i); // --wait-for-interfaces: it may be there by now
    std::vector<std::string> awaited() const;
    void on_link(const LinkEvent& ev);
    void on_signal(int sig);
    void arm(Periodic& p);
    void tick(); // drain, kernel deltas, UDP closes, unattributed delta
    void tick_unless_reporting();
    int64_t resolve_udp(const pdtt_flow_key& k);
    void close_udp_flows(); // idle, or their socket is gone
    void use_subuids(std::shared_ptr<const SubuidMap> m, const std::vector<std::string>& problems);
    void report(bool final);
    AgentStats stats(double interval_s) const;
    void shutdown();

    Config cfg_;
    boost::asio::io_context io_;
    boost::asio::signal_set signals_;
    Periodic tick_;
    Periodic report_;
    std::chrono::steady_clock::time_point interval_start_;
    SinkList sinks_;
    UserNames names_;
    WallClock clock_;
    std::unique_ptr<Bpf> bpf_;
    std::unique_ptr<CgroupResolver> cgroups_; // null without a cgroup2 mount
    std::unique_ptr<Aggregator> agg_;
    std::unique_ptr<RingReader> ring_;
    std::vector<Iface> ifaces_;
    std::unique_ptr<LinkMonitor> links_;
    Notifier notify_{io_};
    Counters unattributed_seen_;
    uint64_t deltas_incomplete_ = 0; // delta passes that gave up
    UdpSockets udp_socks_;
    uint64_t udp_socks_ns_ = 0; // when udp_socks_ was read
    uint64_t udp_ticks_ = 0;    // ticks so far, for the udp_owners prune
    SubuidWatcher subuids_;     // /etc/subuid
    bool stopping_ = false;
};

} // namespace pdtt
