// Owners of the kernel side: the loaded skeleton and every attachment.
// Each handle has one move-only owner; destroying it detaches. Everything is
// attached through BPF links where the kernel has them, so a killed agent
// leaves nothing behind.
#pragma once

#include "abi.hpp"
#include "config.hpp"
#include "records.hpp"
#include "skeleton.hpp"
#include "subuid.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pdtt {

// One attached program; detaches when destroyed. Owned through a
// unique_ptr, never copied: a copy would detach twice.
class Attachment {
public:
    Attachment() = default;
    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;
    virtual ~Attachment() = default;
    virtual std::string describe() const = 0;
};

struct BpfOptions {
    uint32_t target_netns = 0;                         // inode of the monitored namespace
    uint32_t max_flows_per_uid = 0;                    // slots one uid may hold; 0: no bound
    uint32_t flow_entries = PDTT_DEFAULT_FLOW_ENTRIES; // kernel flow table capacity
    uint32_t ring_bytes = PDTT_DEFAULT_RING_MIB << 20; // ring buffer size, a power of two
    uint32_t cgroup1_hierarchy = 0;                    // owners' cgroups from this v1 hierarchy; 0: v2
};

using StatArray = std::array<uint64_t, PDTT_STAT_MAX>;

class Bpf {
public:
    // open, set rodata and sizes, load. Throws pdtt::Error.
    explicit Bpf(const BpfOptions& opts);
    Bpf(const Bpf&) = delete;
    Bpf& operator=(const Bpf&) = delete;

    // The state tracepoint, and the I/O hooks that tell who moves the bytes
    // where the kernel has them (io_hooks() says whether it does;
    // tcp_send_hook() whether a TCP write's owner is known before it leaves).
    void attach_tracepoints();
    void detach_tracepoints() { tracepoints_.clear(); }
    bool io_hooks() const { return io_hooks_; }
    bool tcp_send_hook() const { return tcp_send_hook_; }
    // The caller owns what these return: destroying it detaches.
    // The ingress hook --ingress asks for (README: How it works); throws
    // pdtt::Error with exit status 3 when the device cannot have it.
    std::unique_ptr<Attachment> attach_ingress(const std::string& ifname, int ifindex, IngressHook hook, XdpMode mode);
    std::unique_ptr<Attachment> attach_xdp(const std::string& ifname, int ifindex, XdpMode mode);
    std::unique_ptr<Attachment> attach_tc(const std::string& ifname, int ifindex, bool ingress);
    // Whether a TCP flow crossing ifindex takes a slot in the flow table.
    void set_monitored(int ifindex, bool on);

    // One delta pass: FLOW_DELTA for every flow whose counters moved since
    // its last record. The kernel stops when the ring is nearly full; drain
    // empties it and the pass goes on. False if the pass had to give up.
    bool emit_deltas(const std::function<void()>& drain);

    // The ring map, for the ring reader to consume. No other map fd leaves
    // Bpf: the rest of the agent uses the operations below.
    int ring_fd() const;

    bool has_flow(const pdtt_flow_key& k) const;
    // Enters flows the kernel table does not hold yet; returns how many went
    // in (the others were there already, or the table was full).
    size_t insert_flows(const std::vector<FlowEntry>& flows);
    // Removes a flow from the kernel table, returning its final counters.
    bool take_flow(const pdtt_flow_key& k, pdtt_flow& out);
    // The owner of a UDP socket (by its cookie) that the I/O hooks have not
    // seen yet, from the socket table.
    void set_udp_owner(uint64_t cookie, uint32_t uid);
    // Drops the udp_owners entries of closed sockets (alive(cookie) false).
    // An entry goes when two calls in a row found it dead: a socket made
    // after the caller's socket dump is never dropped. Returns how many went.
    size_t prune_udp_owners(const std::function<bool(uint64_t)>& alive);
    // The /etc/subuid ranges (sorted, disjoint) whose uids count in their
    // owner's share of the flow table; returns how many the kernel took
    // (at most PDTT_SUBUID_RANGES, the lowest).
    size_t set_subuid_ranges(const std::vector<SubuidRange>& ranges);
    // Bytes of flows that found no slot, per owner uid, since the last call.
    std::vector<std::pair<uint32_t, Counters>> take_overflow();
    // Owners the I/O hooks cached before the flows older than the agent were
    // entered are looked at again.
    void owners_seeded();
    uint32_t flow_capacity() const { return opts_.flow_entries; }
    uint32_t target_netns() const { return opts_.target_netns; }
    Counters unattributed() const; // summed over CPUs, since load
    StatArray stats() const;       // summed over CPUs, since load

private:
    Skeleton load(bool btf_tracepoint, bool io_hooks, bool tcp_send) const;
    int flows_fd() const;

    BpfOptions opts_;
    Skeleton skel_;
    bool btf_tracepoint_ = true;
    bool io_hooks_ = true;
    bool tcp_send_hook_ = true;                // tcp_sendmsg_locked: a TCP write's owner before its segments leave
    uint64_t tick_ = 0;                        // delta passes so far
    uint64_t seeded_ = 0;                      // flow ids handed to seeded flows
    uint64_t owner_gens_ = 0;                  // udp_owners generations the agent wrote
    std::unordered_set<uint64_t> dead_owners_; // udp_owners cookies found dead last prune
    std::vector<std::unique_ptr<Attachment>> tracepoints_; // after skel_: detached before it is destroyed
};

// Whether ifname's driver is one known to run native XDP well (mlx5_core,
// ice, i40e, ...); virtio_net, veth and tun accept XDP but pay for it.
bool native_xdp_driver(const std::string& ifname);

// Why the XDP program cannot parse ifname's frames ("" if it can): it reads
// an Ethernet header, which layer-3 devices (tun, WireGuard) and IPoIB lack.
std::string xdp_unfit(const std::string& ifname);

// Routes libbpf's messages to our log (debug ones only with -v).
void install_libbpf_logger();

} // namespace pdtt
