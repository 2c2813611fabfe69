// Owners of the kernel side: the loaded skeleton and every attachment.
// Each handle has one move-only owner; destroying it detaches. Everything is
// attached through BPF links where the kernel has them, so a killed agent
// leaves nothing behind.
#pragma once

#include "abi.hpp"
#include "config.hpp"
#include "records.hpp"
#include "skeleton.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
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
    uint32_t target_netns = 0;       // inode of the monitored namespace
    uint32_t flow_entries = PDTT_DEFAULT_FLOW_ENTRIES;  // kernel flow table capacity
    uint32_t ring_bytes = PDTT_DEFAULT_RING_MIB << 20;  // ring buffer size, a power of two
};

using StatArray = std::array<uint64_t, PDTT_STAT_MAX>;

class Bpf {
public:
    // open, set rodata and sizes, load. Throws pdtt::Error.
    explicit Bpf(const BpfOptions& opts);
    Bpf(const Bpf&) = delete;
    Bpf& operator=(const Bpf&) = delete;

    void attach_state_tracepoint();
    void detach_tracepoint() { tracepoint_.reset(); }
    // The caller owns what these return: destroying it detaches.
    std::unique_ptr<Attachment> attach_xdp(const std::string& ifname, int ifindex, XdpMode mode);
    std::unique_ptr<Attachment> attach_egress(const std::string& ifname, int ifindex);

    // Runs the kernel's delta program: one FLOW_DELTA per flow whose counters moved.
    void emit_deltas();

    // The ring map, for the ring reader to consume. No other map fd leaves
    // Bpf: the rest of the agent uses the operations below.
    int ring_fd() const;

    bool has_flow(const pdtt_flow_key& k) const;
    // Enters flows the kernel table does not hold yet; returns how many went
    // in (the others were there already, or the table was full).
    size_t insert_flows(const std::vector<FlowEntry>& flows);
    // Removes a flow from the kernel table, returning its final counters.
    bool take_flow(const pdtt_flow_key& k, pdtt_flow& out);
    // The owner of a local UDP port, for receivers that never sent.
    void set_udp_owner(const pdtt_port_key& k, uint32_t uid);
    uint32_t flow_capacity() const { return opts_.flow_entries; }
    Counters unattributed() const;   // summed over CPUs, since load
    StatArray stats() const;         // summed over CPUs, since load

private:
    Skeleton load(bool btf_tracepoint) const;
    int flows_fd() const;

    BpfOptions opts_;
    Skeleton skel_;
    bool btf_tracepoint_ = true;
    std::unique_ptr<Attachment> tracepoint_;   // declared after skel_: detached before it is destroyed
};

// Routes libbpf's messages to our log (debug ones only with -v).
void install_libbpf_logger();

} // namespace pdtt
