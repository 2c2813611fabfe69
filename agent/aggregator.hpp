// Flow table and user table. Kernel records carry cumulative counters, so
// the delta of a record is its counters minus what this flow already
// accounted: lost, duplicated or reordered records never double-count.
#pragma once

#include "abi.hpp"
#include "cgroups.hpp"
#include "classes.hpp"
#include "names.hpp"
#include "records.hpp"
#include "subuid.hpp"
#include "sink.hpp"
#include "wall_clock.hpp"

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace pdtt {

struct FlowKeyHash {
    size_t operator()(const pdtt_flow_key& k) const {
        return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof(k)));
    }
};
struct FlowKeyEq {
    bool operator()(const pdtt_flow_key& a, const pdtt_flow_key& b) const noexcept;
};
// Finds a std::string key by a view: no key is made to look one up.
struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Aggregator {
public:
    using IfName = std::function<std::string(uint32_t ifindex)>;
    // Owner of a UDP flow the kernel side could not attribute (uid
    // PDTT_UID_UNRESOLVED); kUnattributedUid when no socket owns it.
    using Resolve = std::function<int64_t(const pdtt_flow_key&)>;

    Aggregator(SinkList& sinks, UserNames& names, IfName ifname, const WallClock& clock, Resolve resolve = {});

    // Flows carry the path and Slurm job of their owner's cgroup id (null:
    // ids are not resolved); user and job reports carry per-class totals
    // (null or empty: no classes). Both must outlive the aggregator; set
    // them before the first event.
    void set_cgroups(CgroupResolver* cgroups) { cgroups_ = cgroups; }
    void set_classes(const TrafficClasses* classes) { classes_ = classes && !classes->empty() ? classes : nullptr; }
    // Subordinate uids are reported as their range's owner (raw_uid keeps
    // the kernel's); null: none. Replaced whenever /etc/subuid changes.
    void set_subuids(std::shared_ptr<const SubuidMap> m) { subuids_ = std::move(m); }

    void on_event(const pdtt_event& e);
    // Call after each delta pass's records were consumed. A record of a flow
    // closed in the pass before the last one can no longer be in the ring.
    void deltas_done() {
        std::swap(closed_, closed_before_);
        closed_.clear(); // keeps its room: a pass closes about as many as the last
    }
    void add_unattributed(const Counters& delta);
    // Bytes of flows the kernel had no slot for, still the owner's: one
    // "* -> *" row in the user's report.
    void add_overflow(int64_t uid, const Counters& delta);
    // One user_report per user, then one job_report per (job, step, user),
    // with traffic since the last report.
    void report(Timestamp end, double interval_s);
    // A record whose user's name is still being looked up is held, with its
    // own bytes, ts and interval_s, until the name arrives or `wait` has
    // passed (then it names "uid-N"). A user's records
    // keep their order, other users' are not held up. Each record held
    // sends the oldest ones that may go; release_held sends every one that
    // may (call it every tick); flush_held sends them all,
    // after waiting for their names until `until` (shutdown).
    void set_name_wait(std::chrono::milliseconds wait) { name_wait_ = wait; }
    void release_held(std::chrono::steady_clock::time_point now);
    void flush_held(std::chrono::steady_clock::time_point until);
    size_t held() const { return held_.size(); }
    // Forgets flows quiet for a whole interval that the kernel no longer
    // has: their close record was lost. The kernel sends a flow's close
    // before it removes the flow, so `drain` (consume the ring) runs between
    // looking and forgetting: a close still in the ring closes its flow,
    // where forgetting it first made that close open the flow again.
    void prune(const std::function<bool(const pdtt_flow_key&)>& kernel_has, const std::function<void()>& drain);

    size_t active() const { return flows_.size(); }
    size_t udp_active() const { return udp_flows_; }

    // UDP flows to close: idle for `idle_ns` (CLOCK_MONOTONIC), or whose
    // socket is gone. The caller takes their final counters from the kernel.
    std::vector<pdtt_flow_key> udp_to_close(uint64_t now_ns, uint64_t idle_ns,
                                            const std::function<bool(const pdtt_flow_key&)>& socket_alive) const;
    void forget(const pdtt_flow_key& k);

private:
    // No report generation. Generations are 64-bit: at 2^32 reports a 32-bit
    // one would reach kNoGen and make a flow look placed in rows it is not.
    static constexpr uint64_t kNoGen = UINT64_MAX;

    // What the agent keeps of a flow, compact: with 100,000 flows open it
    // is most of the agent's memory. Its record's FlowId is made from it
    // when a record goes out (identity()).
    struct Flow {
        pdtt_flow_key key;
        uint8_t direction = PDTT_DIR_UNKNOWN; // enum pdtt_direction
        bool udp = false;
        bool named = false;            // user is the name, not "uid-N" while it is looked up
        bool moved = false;            // a delta record of it went out
        ClassId cls = kOtherClass;     // of its remote address, fixed at open
        uint32_t pid = 0;              // 0: the kernel never ran in the owner
        char comm[PDTT_COMM_LEN] = {}; // empty: none
        uint32_t pair = 0;             // its row in its user's pairs, valid in generation gen
        uint32_t job_slot = 0;         // its row in jobs_, valid in generation job_gen
        uint64_t gen = kNoGen;         // report generation it last moved bytes in
        uint64_t job_gen = kNoGen;     // report generation job_slot is valid in
        uint64_t flow_id = 0;
        int64_t uid = kUnattributedUid;
        int64_t raw_uid = kUnattributedUid; // FlowId::raw_uid
        const std::string* user = nullptr;  // interned
        const std::string* iface = nullptr; // interned, its name at open
        Counters accounted;
        uint64_t open_ns = 0;
        uint64_t active_ns = 0; // kernel time of the last record that moved bytes
        uint64_t cgroup_id = 0; // the owner's, as the kernel last reported it
        CgroupInfoPtr cg;       // its path; null while it is being resolved
        // Counters when the current owner took over; null: zero (the owner
        // it opened with, as most flows keep).
        std::unique_ptr<Counters> owner_base;
        // FlowRecord::id_json, made when a record may keep it; emptied
        // whenever the identity changes.
        std::unique_ptr<std::string> id_json;
    };
    struct ClassCounters {
        uint64_t tx = 0, rx = 0;
    };
    // One (job, step, user) of this interval.
    struct Job {
        std::string job;
        std::optional<std::string> step;
        std::string cgroup;
        int64_t uid = 0;
        Counters cnt;
        std::vector<ClassCounters> classes;
    };
    struct Pair {
        std::string local, remote;
        uint64_t tx = 0, rx = 0;
    };
    struct User {
        Counters cnt;
        uint64_t flows = 0;
        std::vector<Pair> pairs;
        boost::unordered_flat_map<std::string, size_t, TextHash, std::equal_to<>> pair_index; // local \0 remote
        std::vector<ClassCounters> classes;
    };

    int64_t owner_of(int64_t raw) const { return subuids_ && raw >= 0 ? int64_t(subuids_->owner(uint32_t(raw))) : raw; }
    std::unique_ptr<Flow> make_flow(const pdtt_event& e);
    FlowId identity(const Flow& f) const;  // a record's FlowId
    std::string* keep_json(Flow& f) const; // f.id_json, made when it is not there
    static Counters owner_base(const Flow& f) { return f.owner_base ? *f.owner_base : Counters{}; }
    static void identity_changed(Flow& f) {
        if (f.id_json)
            f.id_json->clear();
    }
    const std::string& user_name(int64_t uid, bool& named); // never waits
    // A flow record and what its views point into.
    struct HeldFlow {
        FlowRecord r;
        CgroupInfoPtr cg, from_cg;
    };
    struct Held {
        std::chrono::steady_clock::time_point until;
        std::variant<UserReport, JobReport, HeldFlow> record;
    };
    static std::pair<int64_t, int64_t> uids(const Held& h); // whose names it carries
    // Sends r now, or holds it while its user's name is pending or an
    // earlier record naming the user is held.
    template <class Report> void send_or_hold(Report&& r, std::chrono::steady_clock::time_point now);
    // r's views point into cg (its job) and from_cg (its from_job): a held r
    // keeps them alive.
    void send_flow(const FlowRecord& r, const Flow& f, const CgroupInfoPtr& cg, bool from_named = true,
                   CgroupInfoPtr from_cg = {});
    // Keeps h, then sends the oldest held records that may go now.
    void hold(Held h, std::chrono::steady_clock::time_point now);
    // Its users' names are known, or it waited long enough.
    bool may_go(const Held& h, std::chrono::steady_clock::time_point now);
    void sent(const Held& h); // h went out: it no longer holds its users back
    void send(UserReport& r);
    void send(JobReport& r);
    void send(HeldFlow& h);
    void dispatch(const FlowRecord& r);
    const std::string& intern(const std::string& s) { return *interned_.insert(s).first; }
    void account(Flow& f, const Counters& delta);
    void add_to_pair(User& u, uint32_t& pair, const std::string& local, const std::string& remote, const Counters& d);
    void note_process(Flow& f, const pdtt_event& e);
    void set_cgroup(Flow& f, uint64_t id, CgroupInfoPtr cg);
    CgroupInfoPtr lookup_cgroup(uint64_t id) { return cgroups_ && id ? cgroups_->lookup(id) : nullptr; }
    void add_to_job(Flow& f, const Counters& delta);
    void add_class(std::vector<ClassCounters>& v, ClassId cls, const Counters& delta) const;
    std::vector<ClassTotals> class_totals(const std::vector<ClassCounters>& v) const;
    bool change_owner(Flow& f, const pdtt_event& e); // false: same owner, no record
    bool closed(uint64_t flow_id) const { return closed_.count(flow_id) || closed_before_.count(flow_id); }
    FlowRecord record(FlowEvent type, Flow& f, const pdtt_event& e, const Counters& cnt) const;

    SinkList& sinks_;
    UserNames& names_;
    IfName ifname_;
    const WallClock& clock_;
    Resolve resolve_;
    CgroupResolver* cgroups_ = nullptr;
    const TrafficClasses* classes_ = nullptr;
    std::shared_ptr<const SubuidMap> subuids_;
    uint64_t gen_ = 0;
    size_t udp_flows_ = 0;
    // Open addressing over pointers to flows: a lookup is one probe of the
    // group's hashes and the flow itself, where a node table also walked a
    // bucket list through other flows' nodes (a quarter of the pipeline's
    // time). A slot is a pointer, so the empty slots of open addressing
    // cost little (flows inline took half again the agent's memory at
    // 100,000 flows), and a flow never moves. Found by its key.
    struct FlowHash {
        using is_transparent = void;
        size_t operator()(const pdtt_flow_key& k) const { return FlowKeyHash{}(k); }
        size_t operator()(const std::unique_ptr<Flow>& f) const { return FlowKeyHash{}(f->key); }
    };
    struct FlowEq {
        using is_transparent = void;
        static const pdtt_flow_key& key(const pdtt_flow_key& k) { return k; }
        static const pdtt_flow_key& key(const std::unique_ptr<Flow>& f) { return f->key; }
        template <class A, class B> bool operator()(const A& a, const B& b) const noexcept {
            return FlowKeyEq{}(key(a), key(b));
        }
    };
    using FlowMap = boost::unordered_flat_set<std::unique_ptr<Flow>, FlowHash, FlowEq>;
    void erase(FlowMap::iterator it);
    FlowMap flows_;
    boost::unordered_flat_set<uint64_t> closed_, closed_before_; // flow ids closed in this and the last pass
    std::unordered_map<int64_t, User> users_;
    std::vector<Job> jobs_;                             // this interval's
    std::unordered_map<std::string, size_t> job_index_; // job, step, uid -> jobs_ row
    std::unordered_set<std::string> interned_;          // user and interface names; nodes never move
    std::string pair_key_;                              // add_to_pair's, reused
    std::chrono::milliseconds name_wait_{5000};
    std::deque<Held> held_;                         // oldest first
    std::unordered_map<int64_t, size_t> held_uids_; // uid -> held records naming it
};

} // namespace pdtt
