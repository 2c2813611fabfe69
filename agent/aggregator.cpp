#include "aggregator.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace pdtt {

namespace {

Counters to_counters(const pdtt_counters& c) { return {c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets}; }

std::optional<std::string_view> job_of(const CgroupInfoPtr& cg) { return cg ? cg->job() : std::nullopt; }

const char* proto_name(uint8_t p) {
    switch (p) {
    case IPPROTO_TCP:
        return "tcp";
    case IPPROTO_UDP:
        return "udp";
    default:
        return "other";
    }
}

} // namespace

bool FlowKeyEq::operator()(const pdtt_flow_key& a, const pdtt_flow_key& b) const noexcept {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}

Aggregator::Aggregator(SinkList& sinks, UserNames& names, IfName ifname, const WallClock& clock, Resolve resolve) :
    sinks_(sinks), names_(names), ifname_(std::move(ifname)), clock_(clock), resolve_(std::move(resolve)) {}

std::unique_ptr<Aggregator::Flow> Aggregator::make_flow(const pdtt_event& e) {
    auto f = std::make_unique<Flow>();
    f->key = e.key;
    f->open_ns = e.open_ns;
    f->flow_id = e.flow_id;
    f->udp = e.key.proto == IPPROTO_UDP;
    f->active_ns = e.ts_ns;
    f->iface = &intern(ifname_(e.ifindex));
    if (e.uid != PDTT_UID_UNRESOLVED)
        f->raw_uid = e.uid;
    else
        f->raw_uid = resolve_ ? resolve_(e.key) : kUnattributedUid;
    f->uid = owner_of(f->raw_uid);
    f->user = &user_name(f->uid, f->named);
    f->pid = e.pid;
    std::memcpy(f->comm, e.comm, sizeof(f->comm));
    f->direction = e.direction;
    if (classes_)
        f->cls = classes_->classify(e.key.raddr);
    set_cgroup(*f, e.cgroup, lookup_cgroup(e.cgroup));
    return f;
}

FlowId Aggregator::identity(const Flow& f) const {
    FlowId id;
    id.flow_id = f.flow_id;
    id.iface = *f.iface;
    id.uid = f.uid;
    id.user = *f.user;
    if (f.pid)
        id.pid = f.pid;
    if (f.comm[0])
        id.comm.emplace(f.comm, strnlen(f.comm, sizeof(f.comm)));
    id.proto = proto_name(f.key.proto);
    id.family = is_v4_mapped(f.key.raddr) ? "ipv4" : "ipv6";
    id.local = format_addr(f.key.laddr);
    id.lport = f.key.lport;
    id.remote = format_addr(f.key.raddr);
    id.rport = f.key.rport;
    id.direction = f.direction == PDTT_DIR_OUTBOUND  ? Direction::outbound
                   : f.direction == PDTT_DIR_INBOUND ? Direction::inbound
                                                     : Direction::unknown;
    // Views of the path f.cg keeps alive.
    id.cgroup = f.cg ? std::string_view(f.cg->path()) : std::string_view();
    id.job = job_of(f.cg);
    id.step = f.cg ? f.cg->step() : std::nullopt;
    id.raw_uid = f.raw_uid;
    return id;
}

std::string* Aggregator::keep_json(Flow& f) const {
    if (!f.id_json)
        f.id_json = std::make_unique<std::string>();
    return f.id_json.get();
}

const std::string& Aggregator::user_name(int64_t uid, bool& named) {
    std::optional<std::string> n = names_.known(uid);
    named = n.has_value();
    return intern(named ? *n : "uid-" + std::to_string(uid));
}

void Aggregator::set_cgroup(Flow& f, uint64_t id, CgroupInfoPtr cg) {
    f.cgroup_id = id;
    f.cg = std::move(cg);
    f.job_gen = kNoGen; // its bytes from now on may be another job's or step's
    identity_changed(f);
}

void Aggregator::add_class(std::vector<ClassCounters>& v, ClassId cls, const Counters& delta) const {
    if (v.empty())
        v.resize(classes_->names().size());
    v[cls].tx += delta.tx_bytes;
    v[cls].rx += delta.rx_bytes;
}

// Every class and "other", zeros too: a reader finds the same keys each time.
std::vector<ClassTotals> Aggregator::class_totals(const std::vector<ClassCounters>& v) const {
    std::vector<ClassTotals> out;
    if (!classes_)
        return out;
    const auto& names = classes_->names();
    out.reserve(names.size());
    for (size_t i = 0; i < names.size(); ++i)
        out.push_back({names[i], i < v.size() ? v[i].tx : 0, i < v.size() ? v[i].rx : 0});
    return out;
}

void Aggregator::add_to_job(Flow& f, const Counters& delta) {
    const std::optional<std::string_view> job_name = job_of(f.cg);
    if (!job_name)
        return;
    if (f.job_gen != gen_) { // first bytes of this flow's job in this interval: find its row once
        const std::string_view job = *job_name;
        const std::optional<std::string_view> step = f.cg->step();
        std::string key(job);
        key += '\0';
        if (step)
            key += *step;
        key += '\0';
        key += std::to_string(f.uid);
        auto [it, fresh] = job_index_.try_emplace(std::move(key), jobs_.size());
        if (fresh) {
            Job j;
            j.job = job;
            const std::string& path = f.cg->path();
            // The step's own cgroup (the job's without a step), not a task's below it.
            std::string_view last = step ? *step : job;
            j.cgroup = path.substr(0, size_t(last.data() - path.data()) + last.size());
            if (step)
                j.step = std::string(*step);
            j.uid = f.uid;
            jobs_.push_back(std::move(j));
        }
        f.job_slot = uint32_t(it->second);
        f.job_gen = gen_;
    }
    Job& j = jobs_[f.job_slot];
    j.cnt += delta;
    if (classes_)
        add_class(j.classes, f.cls, delta);
}

FlowRecord Aggregator::record(FlowEvent type, Flow& f, const pdtt_event& e, const Counters& cnt) const {
    FlowRecord r;
    r.type = type;
    r.ts = clock_.from_mono(type == FlowEvent::open ? e.open_ns : e.ts_ns);
    r.id = identity(f);
    // Kept from a flow's second delta on: one that moves once and then
    // idles (most of a host's many open connections) keeps no copy. Open
    // and close records only read one that is there.
    if (type == FlowEvent::owner || (type == FlowEvent::delta && f.moved))
        r.id_json = keep_json(f);
    else if (type != FlowEvent::delta)
        r.id_json = f.id_json.get();
    r.cnt = cnt;
    if (classes_)
        r.cls = classes_->names()[f.cls];
    return r;
}

void Aggregator::add_to_pair(User& u, uint32_t& pair, const std::string& local, const std::string& remote,
                             const Counters& d) {
    pair_key_.assign(local).append(1, '\0').append(remote);
    auto it = u.pair_index.find(std::string_view(pair_key_));
    if (it == u.pair_index.end()) {
        it = u.pair_index.emplace(pair_key_, u.pairs.size()).first;
        u.pairs.push_back({local, remote, 0, 0});
    }
    pair = uint32_t(it->second);
    u.pairs[pair].tx += d.tx_bytes;
    u.pairs[pair].rx += d.rx_bytes;
}

void Aggregator::account(Flow& f, const Counters& delta) {
    User& u = users_[f.uid];
    u.cnt += delta;
    if (classes_)
        add_class(u.classes, f.cls, delta);
    add_to_job(f, delta);
    if (f.gen != gen_) { // first bytes of this flow in this interval: find its row once
        f.gen = gen_;
        u.flows++;
        add_to_pair(u, f.pair, format_addr(f.key.laddr), format_addr(f.key.raddr), delta);
        return;
    }
    Pair& p = u.pairs[f.pair];
    p.tx += delta.tx_bytes;
    p.rx += delta.rx_bytes;
}

void Aggregator::add_overflow(int64_t uid, const Counters& delta) {
    if (delta.empty())
        return;
    static const std::string any = "*";
    User& u = users_[owner_of(uid)];
    u.cnt += delta;
    uint32_t pair = 0;
    add_to_pair(u, pair, any, any, delta);
}

// A new pid or comm of the same owner is only noted.
void Aggregator::note_process(Flow& f, const pdtt_event& e) {
    if (!e.pid || f.pid == e.pid)
        return;
    identity_changed(f);
    f.pid = e.pid;
    std::memcpy(f.comm, e.comm, sizeof(f.comm));
}

// The kernel counted everything up to e.cnt for the old owner; from here on
// the bytes are the new one's. The owner is the user and the job: another
// cgroup of the same job (a new step, a task's own) is only noted.
bool Aggregator::change_owner(Flow& f, const pdtt_event& e) {
    const bool new_uid = e.uid != PDTT_UID_UNRESOLVED && owner_of(e.uid) != f.uid;
    if (e.uid != PDTT_UID_UNRESOLVED && !new_uid && f.raw_uid != e.uid) {
        f.raw_uid = e.uid; // another uid of the owner's range: the same user
        identity_changed(f);
    }
    CgroupInfoPtr old_cg = f.cg; // keeps the old job's views alive for the record
    if (e.cgroup != f.cgroup_id)
        set_cgroup(f, e.cgroup, lookup_cgroup(e.cgroup));
    // A cgroup learnt (none or not resolved before: a flow opened in softirq)
    // or not resolved yet names no job change.
    const bool new_job = old_cg && f.cg && job_of(f.cg) != job_of(old_cg);
    if (!new_uid && !new_job) {
        note_process(f, e);
        return false;
    }
    FlowRecord r = record(FlowEvent::owner, f, e, since(to_counters(e.cnt), owner_base(f)));
    r.from_uid = f.uid;
    r.from_user = *f.user;
    r.from_job = job_of(old_cg);
    const bool from_named = f.named;
    if (new_uid) {
        f.raw_uid = e.uid;
        f.uid = owner_of(e.uid);
        f.user = &user_name(f.uid, f.named);
        f.gen = kNoGen; // its bytes from now on are in another user's rows
        f.job_gen = kNoGen;
    }
    f.pid = 0; // its comm stays until the new owner's is known
    note_process(f, e);
    identity_changed(f);
    if (!f.owner_base)
        f.owner_base = std::make_unique<Counters>();
    *f.owner_base = to_counters(e.cnt);
    r.id = identity(f);
    send_flow(r, f, f.cg, from_named, std::move(old_cg));
    return true;
}

void Aggregator::on_event(const pdtt_event& e) {
    auto it = flows_.find(e.key);
    if (it != flows_.end() && (*it)->flow_id != e.flow_id) {
        if (closed(e.flow_id))
            return; // a straggler of an earlier flow on this 5-tuple: counted at its close
        erase(it);  // a new flow on the 5-tuple of one whose close was lost
        it = flows_.end();
    }
    if (it == flows_.end()) {
        if (closed(e.flow_id))
            return; // a delta emitted in a race with this flow's close: already counted
        it = flows_.insert(make_flow(e)).first;
        udp_flows_ += (*it)->udp;
        // Its open record was lost (ring full) when this is not FLOW_OPEN.
        // FLOW_OPEN counts the first packet: the open record carries it.
        FlowRecord r = record(FlowEvent::open, **it, e, e.type == PDTT_EV_FLOW_OPEN ? to_counters(e.cnt) : Counters{});
        send_flow(r, **it, (*it)->cg);
    }
    Flow& f = **it;
    if (!f.named) // its first records said "uid-N": its name may be known by now
        f.user = &user_name(f.uid, f.named);
    if (f.cgroup_id && !f.cg) // resolved since, perhaps
        if (CgroupInfoPtr cg = lookup_cgroup(f.cgroup_id))
            set_cgroup(f, f.cgroup_id, std::move(cg));
    Counters delta = since(to_counters(e.cnt), f.accounted);
    if (!delta.empty()) {
        account(f, delta);
        f.accounted = to_counters(e.cnt);
        f.active_ns = e.ts_ns;
    }

    switch (e.type) {
    case PDTT_EV_FLOW_DELTA:
        note_process(f, e);
        if (!delta.empty()) {
            send_flow(record(FlowEvent::delta, f, e, delta), f, f.cg);
            f.moved = true;
        }
        break;
    case PDTT_EV_FLOW_OWNER: {
        // Same owner: what moved is a delta like any other, of the job it
        // was accounted to above, though the cgroup may have been learnt now.
        const CgroupInfoPtr keep = f.cg; // r views its path
        FlowRecord r = record(FlowEvent::delta, f, e, delta);
        r.id_json = nullptr; // r's identity may be older than the flow's now: not one to keep
        if (!change_owner(f, e) && !delta.empty())
            send_flow(r, f, keep); // r views the cgroup before the change
        break;
    }
    case PDTT_EV_FLOW_CLOSE: {
        note_process(f, e);
        FlowRecord r = record(FlowEvent::close, f, e, since(to_counters(e.cnt), owner_base(f)));
        r.tcp_bytes_acked = e.tcp_bytes_acked;
        r.tcp_bytes_received = e.tcp_bytes_received;
        r.tcp_bytes_retrans = e.tcp_bytes_retrans;
        r.duration_ms = e.ts_ns > f.open_ns ? (e.ts_ns - f.open_ns) / 1'000'000 : 0;
        send_flow(r, f, f.cg);
        closed_.insert(e.flow_id);
        erase(it);
        break;
    }
    default:
        break;
    }
}

void Aggregator::erase(FlowMap::iterator it) {
    udp_flows_ -= (*it)->udp;
    flows_.erase(it);
}

void Aggregator::forget(const pdtt_flow_key& k) {
    if (auto it = flows_.find(k); it != flows_.end())
        erase(it);
}

std::vector<pdtt_flow_key>
Aggregator::udp_to_close(uint64_t now_ns, uint64_t idle_ns,
                         const std::function<bool(const pdtt_flow_key&)>& socket_alive) const {
    std::vector<pdtt_flow_key> out;
    if (udp_flows_ == 0)
        return out;
    for (const auto& f : flows_)
        if (f->udp && (now_ns - f->active_ns >= idle_ns || !socket_alive(f->key)))
            out.push_back(f->key);
    return out;
}

void Aggregator::add_unattributed(const Counters& delta) {
    if (!delta.empty())
        users_[kUnattributedUid].cnt += delta;
}

void Aggregator::send(UserReport& r) {
    r.user = names_.name(r.uid);
    for (auto& s : sinks_)
        s->user_report(r);
}

void Aggregator::send(JobReport& r) {
    r.user = names_.name(r.uid);
    for (auto& s : sinks_)
        s->job_report(r);
}

void Aggregator::send(HeldFlow& h) {
    h.r.id.user = intern(names_.name(h.r.id.uid));
    if (h.r.type == FlowEvent::owner)
        h.r.from_user = intern(names_.name(h.r.from_uid));
    dispatch(h.r);
}

void Aggregator::dispatch(const FlowRecord& r) {
    for (auto& s : sinks_) {
        switch (r.type) {
        case FlowEvent::open:
            s->flow_open(r);
            break;
        case FlowEvent::delta:
            s->flow_delta(r);
            break;
        case FlowEvent::close:
            s->flow_close(r);
            break;
        case FlowEvent::owner:
            s->flow_owner(r);
            break;
        }
    }
}

std::pair<int64_t, int64_t> Aggregator::uids(const Held& h) {
    if (const auto* f = std::get_if<HeldFlow>(&h.record))
        return {f->r.id.uid, f->r.type == FlowEvent::owner ? f->r.from_uid : f->r.id.uid};
    if (const auto* u = std::get_if<UserReport>(&h.record))
        return {u->uid, u->uid};
    const int64_t uid = std::get<JobReport>(h.record).uid;
    return {uid, uid};
}

void Aggregator::hold(Held h, std::chrono::steady_clock::time_point now) {
    auto [a, b] = uids(h);
    held_uids_[a]++;
    if (b != a)
        held_uids_[b]++;
    held_.push_back(std::move(h));
    // The oldest go as soon as their names are known, not at the next tick:
    // a burst of a new user's records (its first connections at 20,000 a
    // second) would otherwise wait in memory for up to a second. In order,
    // from the front only: no earlier record of their users is held.
    while (!held_.empty() && may_go(held_.front(), now)) {
        std::visit([this](auto& r) { send(r); }, held_.front().record);
        sent(held_.front());
        held_.pop_front();
    }
}

bool Aggregator::may_go(const Held& h, std::chrono::steady_clock::time_point now) {
    auto [a, b] = uids(h);
    return h.until <= now || (names_.known(a) && (b == a || names_.known(b)));
}

void Aggregator::sent(const Held& h) {
    auto [a, b] = uids(h);
    for (int64_t u : {a, b}) {
        if (--held_uids_[u] == 0)
            held_uids_.erase(u);
        if (b == a)
            break;
    }
}

// The hot path: a named flow while nothing is held costs two tests.
void Aggregator::send_flow(const FlowRecord& r, const Flow& f, const CgroupInfoPtr& cg, bool from_named,
                           CgroupInfoPtr from_cg) {
    const bool owner = r.type == FlowEvent::owner;
    if (f.named && from_named &&
        (held_uids_.empty() || (!held_uids_.count(r.id.uid) && !(owner && held_uids_.count(r.from_uid))))) {
        dispatch(r);
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    Held h{now + name_wait_, HeldFlow{r, cg, std::move(from_cg)}};
    // Its flow's kept identity may be gone (or name another user) when it goes out.
    std::get<HeldFlow>(h.record).r.id_json = nullptr;
    hold(std::move(h), now);
}

template <class Report> void Aggregator::send_or_hold(Report&& r, std::chrono::steady_clock::time_point now) {
    if (!held_uids_.count(r.uid) && names_.known(r.uid))
        send(r);
    else
        hold({now + name_wait_, std::forward<Report>(r)}, now);
}

void Aggregator::release_held(std::chrono::steady_clock::time_point now) {
    // In order, and a user's later records never before its earlier ones.
    std::unordered_set<int64_t> waiting;
    for (auto it = held_.begin(); it != held_.end();) {
        auto [a, b] = uids(*it);
        const bool may = !waiting.count(a) && !waiting.count(b) && may_go(*it, now);
        if (!may) {
            waiting.insert(a);
            waiting.insert(b);
            ++it;
            continue;
        }
        std::visit([this](auto& r) { send(r); }, it->record);
        sent(*it);
        it = held_.erase(it);
    }
}

void Aggregator::flush_held(std::chrono::steady_clock::time_point until) {
    for (const Held& h : held_) {
        auto [a, b] = uids(h);
        names_.wait(a, std::min(until, h.until));
        names_.wait(b, std::min(until, h.until));
    }
    for (Held& h : held_)
        std::visit([this](auto& r) { send(r); }, h.record);
    held_.clear();
    held_uids_.clear();
}

void Aggregator::report(Timestamp end, double interval_s) {
    const auto now = std::chrono::steady_clock::now();
    release_held(now); // a user's older reports first
    for (auto& [uid, u] : users_) {
        if (u.cnt.empty())
            continue;
        UserReport r;
        r.ts = end;
        r.uid = uid;
        r.interval_s = interval_s;
        r.tx_bytes = u.cnt.tx_bytes;
        r.rx_bytes = u.cnt.rx_bytes;
        r.tx_packets = u.cnt.tx_packets;
        r.rx_packets = u.cnt.rx_packets;
        r.flows = u.flows;
        r.connections.reserve(u.pairs.size());
        for (auto& p : u.pairs)
            r.connections.push_back({std::move(p.local), std::move(p.remote), p.tx, p.rx});
        r.classes = class_totals(u.classes);
        send_or_hold(std::move(r), now);
    }
    for (auto& j : jobs_) {
        if (j.cnt.empty())
            continue;
        JobReport r;
        r.ts = end;
        r.job = std::move(j.job);
        r.step = std::move(j.step);
        r.cgroup = std::move(j.cgroup);
        r.uid = j.uid;
        r.interval_s = interval_s;
        r.tx_bytes = j.cnt.tx_bytes;
        r.rx_bytes = j.cnt.rx_bytes;
        r.classes = class_totals(j.classes);
        send_or_hold(std::move(r), now);
    }
    users_.clear();
    jobs_.clear();
    job_index_.clear();
    gen_++;
}

void Aggregator::prune(const std::function<bool(const pdtt_flow_key&)>& kernel_has,
                       const std::function<void()>& drain) {
    std::vector<std::pair<pdtt_flow_key, uint64_t>> gone; // key, flow id
    for (const auto& f : flows_)
        // Only flows quiet for a whole interval are worth a syscall.
        if (f->gen + 1 < gen_ && !kernel_has(f->key))
            gone.emplace_back(f->key, f->flow_id);
    if (gone.empty())
        return;
    drain(); // may close some of them, or open a new flow on one's 5-tuple
    for (const auto& [k, id] : gone)
        if (auto it = flows_.find(k); it != flows_.end() && (*it)->flow_id == id)
            erase(it);
}

} // namespace pdtt
