// What the agent core hands to sinks: decoded, attributed, named records.
// Sinks format these; they never see kernel structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pdtt {

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::time_point<Clock, std::chrono::microseconds>;

// uid of the pseudo-user that owns traffic matching no socket.
inline constexpr int64_t kUnattributedUid = -1;
inline constexpr const char* kUnattributedUser = "unattributed";

struct Counters {
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_packets = 0;
    uint64_t rx_packets = 0;

    Counters& operator+=(const Counters& o) {
        tx_bytes += o.tx_bytes;
        rx_bytes += o.rx_bytes;
        tx_packets += o.tx_packets;
        rx_packets += o.rx_packets;
        return *this;
    }
    bool empty() const { return tx_packets == 0 && rx_packets == 0 && tx_bytes == 0 && rx_bytes == 0; }
    bool operator==(const Counters&) const = default;
};

// What moved from `before` to `now`; a counter that went backwards moved nothing.
inline Counters since(const Counters& now, const Counters& before) {
    auto d = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
    return {d(now.tx_bytes, before.tx_bytes), d(now.rx_bytes, before.rx_bytes), d(now.tx_packets, before.tx_packets),
            d(now.rx_packets, before.rx_packets)};
}

enum class Direction { unknown, outbound, inbound };

// Identity of one flow as users see it. Names many flows share are views
// of storage that outlives every record (the aggregator's interned names,
// or literals): a flow costs its addresses, not copies of its names.
struct FlowId {
    uint64_t flow_id = 0; // unique per flow while the agent runs
    std::string_view iface;
    int64_t uid = kUnattributedUid;
    std::string_view user;
    std::optional<uint32_t> pid; // nullopt: the kernel never ran in the owner
    std::optional<std::string> comm;
    std::string_view proto;  // "tcp", "udp"
    std::string_view family; // "ipv4", "ipv6"
    std::string local;       // printable address
    uint16_t lport = 0;
    std::string remote;
    uint16_t rport = 0;
    Direction direction = Direction::unknown;
    // The owner's cgroup below the hierarchy root and the Slurm job it names;
    // views of a path the aggregator keeps alive. Empty cgroup: unknown.
    std::string_view cgroup;
    std::optional<std::string_view> job;
    std::optional<std::string_view> step;
    int64_t raw_uid = kUnattributedUid; // the uid the kernel saw: a subordinate uid where uid is its range's owner
};

enum class FlowEvent { open, delta, close, owner };

struct FlowRecord {
    FlowEvent type = FlowEvent::open;
    Timestamp ts;
    FlowId id; // owner: the new owner
    // open: what its first record moved; delta: since the previous record;
    // owner and close: since the flow opened or last changed owner
    Counters cnt;
    int64_t from_uid = kUnattributedUid; // owner only: the old owner
    std::string_view from_user;
    std::optional<std::string_view> from_job;
    uint64_t tcp_bytes_acked = 0; // close only
    uint64_t tcp_bytes_received = 0;
    uint64_t tcp_bytes_retrans = 0; // close only: tx_bytes counts these twice
    uint64_t duration_ms = 0;       // close only
    // The JSON sink's text of `id`, kept with the flow so that it is made
    // once per flow, not per record (from its first delta or owner record
    // on); whoever keeps the flow empties it when `id` changes. Null:
    // nothing keeps it. Valid during the sink call only.
    std::string* id_json = nullptr;
    // The traffic class of the remote address (--class); empty without classes.
    std::string_view cls;
};

// One "Connection: LOCAL -> REMOTE" row of the per-user file.
struct PairRow {
    std::string local;
    std::string remote;
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
};

// Bytes to and from one traffic class's remote addresses (--class).
struct ClassTotals {
    std::string_view name; // "other" when no class contains the address
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
};

struct UserReport {
    Timestamp ts; // end of the interval
    std::string user;
    int64_t uid = 0;
    double interval_s = 0; // length of this interval (shorter at shutdown)
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_packets = 0;
    uint64_t rx_packets = 0;
    uint64_t flows = 0; // flows that moved bytes in the interval
    std::vector<PairRow> connections;
    std::vector<ClassTotals> classes; // empty unless classes are configured
};

// One per (job, step, user) with traffic in the interval.
struct JobReport {
    Timestamp ts; // end of the interval
    std::string job;
    std::optional<std::string> step;
    std::string cgroup; // the step's cgroup (the job's, without a step)
    std::string user;
    int64_t uid = 0;
    double interval_s = 0;
    uint64_t tx_bytes = 0;
    uint64_t rx_bytes = 0;
    std::vector<ClassTotals> classes; // empty unless classes are configured
};

struct AgentStats {
    Timestamp ts;
    double interval_s = 0;
    uint64_t events = 0;             // ring records consumed, since start
    uint64_t ring_drops = 0;         // kernel: ring reservation failures, since start
    uint64_t flow_table_full = 0;    // kernel: flow inserts that failed, since start
    uint64_t aux_table_full = 0;     // kernel: pid/comm side table full, since start
    uint64_t flow_share_full = 0;    // kernel: flows refused a slot, their uid holding its share
    uint64_t owner_deferred = 0;     // kernel: owner changes that waited for ring space
    uint64_t deltas_incomplete = 0;  // delta passes that gave up before every flow was reported
    uint64_t flows_active = 0;       // flows the agent tracks now
    uint64_t flows_udp = 0;          // of which UDP
    uint64_t flow_table_size = 0;    // capacity of the kernel flow table
    uint64_t sink_errors = 0;        // write errors over all sinks, since start
    uint64_t interfaces_missing = 0; // monitored interfaces deleted and not back yet
    uint64_t cgroups_unresolved = 0; // cgroup ids that named no cgroup any more when looked up, since start
};

// The record types users can pick for syslog (--syslog-records), as the
// records' "type" fields name them.
enum class RecordType : uint8_t { flow_owner, flow_close, user_report, job_report, agent_stats };
inline constexpr std::string_view kSyslogRecordNames[] = {"flow_owner", "flow_close", "user_report", "job_report",
                                                          "agent_stats"};

// A set of record types; all of them by default.
struct RecordTypes {
    uint32_t bits = (1u << std::size(kSyslogRecordNames)) - 1;
    bool has(RecordType t) const { return bits & (1u << static_cast<unsigned>(t)); }
    void add(RecordType t) { bits |= 1u << static_cast<unsigned>(t); }
    bool operator==(const RecordTypes&) const = default;
    // The type a name stands for, or nothing.
    static std::optional<RecordType> find(std::string_view name) {
        for (size_t i = 0; i < std::size(kSyslogRecordNames); ++i)
            if (kSyslogRecordNames[i] == name)
                return static_cast<RecordType>(i);
        return std::nullopt;
    }
};

} // namespace pdtt
