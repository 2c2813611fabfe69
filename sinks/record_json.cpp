#include "record_json.hpp"

#include "format.hpp"

#include <algorithm>
#include <cmath>

namespace pdtt {

namespace json = boost::json;

namespace {

// Boost.JSON prints 10.0 as "1E1": keep whole seconds integral for readers.
json::value seconds(double s) {
    double ms = std::round(s * 1000);
    if (std::fmod(ms, 1000) == 0)
        return static_cast<int64_t>(ms / 1000);
    return ms / 1000;
}

json::object head(const char* type, Timestamp ts, const json::storage_ptr& sp) {
    json::object o(sp);
    o.reserve(32); // every record's keys: no rehash while it fills
    o["v"] = 1;
    o["type"] = type;
    char buf[32];
    o["ts"] = rfc3339_utc(ts, buf);
    return o;
}

// A string field, valid UTF-8 whatever it held; ASCII needs no repair copy.
json::value text(std::string_view s, const json::storage_ptr& sp) {
    bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    return ascii ? json::string(s, sp) : json::string(valid_utf8(s), sp);
}

json::value optional_text(const std::optional<std::string_view>& s, const json::storage_ptr& sp) {
    return s ? text(*s, sp) : json::value(nullptr);
}

// "classes": {"wan": {"tx_bytes": N, "rx_bytes": N}, ...}; left out when none are configured.
void add_classes(json::object& o, const std::vector<ClassTotals>& classes) {
    if (classes.empty())
        return;
    json::object by_class(o.storage());
    for (const auto& c : classes) {
        json::object t(o.storage());
        t["tx_bytes"] = c.tx_bytes;
        t["rx_bytes"] = c.rx_bytes;
        by_class[c.name] = std::move(t);
    }
    o["classes"] = std::move(by_class);
}

void add_counters(json::object& o, const Counters& c) {
    o["tx_bytes"] = c.tx_bytes;
    o["rx_bytes"] = c.rx_bytes;
    o["tx_packets"] = c.tx_packets;
    o["rx_packets"] = c.rx_packets;
}

const char* flow_type(FlowEvent t) {
    switch (t) {
    case FlowEvent::open:
        return "flow_open";
    case FlowEvent::delta:
        return "flow_delta";
    case FlowEvent::owner:
        return "flow_owner";
    case FlowEvent::close:
        break;
    }
    return "flow_close";
}

const char* direction_name(Direction d) {
    switch (d) {
    case Direction::outbound:
        return "outbound";
    case Direction::inbound:
        return "inbound";
    case Direction::unknown:
        break;
    }
    return "unknown";
}

} // namespace

json::object to_json(const FlowRecord& r, json::storage_ptr sp) {
    const FlowId& id = r.id;
    json::object o = head(flow_type(r.type), r.ts, sp);
    o["flow_id"] = id.flow_id;
    o["iface"] = text(id.iface, o.storage());
    o["user"] = text(id.user, o.storage());
    o["uid"] = id.uid;
    o["raw_uid"] = id.raw_uid;
    o["pid"] = id.pid ? json::value(*id.pid) : json::value(nullptr);
    o["comm"] = id.comm ? text(*id.comm, o.storage()) : json::value(nullptr);
    o["cgroup"] = id.cgroup.empty() ? json::value(nullptr) : text(id.cgroup, o.storage());
    o["job"] = optional_text(id.job, o.storage());
    o["step"] = optional_text(id.step, o.storage());
    o["proto"] = text(id.proto, o.storage());
    o["family"] = text(id.family, o.storage());
    o["local"] = text(id.local, o.storage());
    o["lport"] = id.lport;
    o["remote"] = text(id.remote, o.storage());
    o["rport"] = id.rport;
    o["direction"] = direction_name(id.direction);
    if (r.type == FlowEvent::open)
        return o;
    if (r.type == FlowEvent::owner) {
        o["from_uid"] = r.from_uid;
        o["from_user"] = text(r.from_user, o.storage());
        o["from_job"] = optional_text(r.from_job, o.storage());
    }
    add_counters(o, r.cnt);
    if (r.type == FlowEvent::close) {
        o["tcp_bytes_acked"] = r.tcp_bytes_acked;
        o["tcp_bytes_received"] = r.tcp_bytes_received;
        o["tcp_bytes_retrans"] = r.tcp_bytes_retrans;
        o["duration_ms"] = r.duration_ms;
    }
    return o;
}

json::object to_json(const UserReport& r, json::storage_ptr sp) {
    json::object o = head("user_report", r.ts, sp);
    o["user"] = text(r.user, o.storage());
    o["uid"] = r.uid;
    o["interval_s"] = seconds(r.interval_s);
    add_counters(o, {r.tx_bytes, r.rx_bytes, r.tx_packets, r.rx_packets});
    o["flows"] = r.flows;
    json::array conns(sp);
    conns.reserve(r.connections.size());
    for (const auto& c : r.connections) {
        json::object row(sp);
        row["local"] = text(c.local, row.storage());
        row["remote"] = text(c.remote, row.storage());
        row["tx_bytes"] = c.tx_bytes;
        row["rx_bytes"] = c.rx_bytes;
        conns.push_back(std::move(row));
    }
    o["connections"] = std::move(conns);
    add_classes(o, r.classes);
    return o;
}

json::object to_json(const JobReport& r, json::storage_ptr sp) {
    json::object o = head("job_report", r.ts, sp);
    o["job"] = text(r.job, o.storage());
    o["step"] = r.step ? text(*r.step, o.storage()) : json::value(nullptr);
    o["cgroup"] = text(r.cgroup, o.storage());
    o["user"] = text(r.user, o.storage());
    o["uid"] = r.uid;
    o["interval_s"] = seconds(r.interval_s);
    o["tx_bytes"] = r.tx_bytes;
    o["rx_bytes"] = r.rx_bytes;
    add_classes(o, r.classes);
    return o;
}

json::object to_json(const AgentStats& s, json::storage_ptr sp) {
    json::object o = head("agent_stats", s.ts, sp);
    o["interval_s"] = seconds(s.interval_s);
    o["events"] = s.events;
    o["ring_drops"] = s.ring_drops;
    o["flow_table_full"] = s.flow_table_full;
    o["aux_table_full"] = s.aux_table_full;
    o["flow_share_full"] = s.flow_share_full;
    o["owner_deferred"] = s.owner_deferred;
    o["deltas_incomplete"] = s.deltas_incomplete;
    o["flows_active"] = s.flows_active;
    o["flow_table_size"] = s.flow_table_size;
    o["sink_errors"] = s.sink_errors;
    o["interfaces_missing"] = s.interfaces_missing;
    return o;
}

} // namespace pdtt
