// The fields of every record, in the order docs/records.md gives, written down once. The JSON
// writer (record_json.cpp) and the syslog STRUCTURED-DATA writer
// (syslog_format.cpp) both walk these lists, so a field added here is in
// both, in the same place: adding a field is one line.
//
// A writer W offers, each with the field's name first:
//   type(t)                         the record type (JSON "type", syslog MSGID)
//   time(n, Timestamp)              RFC 3339 UTC with microseconds
//   text(n, string_view)            a string, repaired to valid UTF-8
//   text_or_null(n, optional<string_view>)  the same, or null (syslog: left out)
//   number(n, integer)              also optional<integer>: null when unset
//   seconds(n, double)              see seconds_text()
//   classes(n, vector<ClassTotals>) {"class": {class_row}, ...}; none: left out
//   connections(n, vector<PairRow>) [{pair_row}, ...]
#pragma once

#include "records.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace pdtt::fields {

inline std::string_view flow_type(FlowEvent t) {
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

inline std::string_view direction_name(Direction d) {
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

inline std::optional<std::string_view> view(const std::optional<std::string>& s) {
    return s ? std::optional<std::string_view>(*s) : std::nullopt;
}

// An empty view is unknown: null.
inline std::optional<std::string_view> unless_empty(std::string_view s) {
    return s.empty() ? std::nullopt : std::optional<std::string_view>(s);
}

// Seconds rounded to the millisecond, as the shortest plain decimal that
// reads back as the same double: "10", "2.5", "1.003" (never an exponent).
inline std::string_view seconds_text(double s, char (&buf)[32]) {
    double ms = std::round(s * 1000);
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, ms / 1000, std::chars_format::fixed);
    return ec == std::errc() ? std::string_view(buf, size_t(end - buf)) : std::string_view("0");
}

template <typename W> void head(W& w, std::string_view type, Timestamp ts) {
    w.number("v", 1);
    w.type(type);
    w.time("ts", ts);
}

template <typename W> void counters(W& w, const Counters& c) {
    w.number("tx_bytes", c.tx_bytes);
    w.number("rx_bytes", c.rx_bytes);
    w.number("tx_packets", c.tx_packets);
    w.number("rx_packets", c.rx_packets);
}

// What every record of one flow repeats: the JSON sink renders it once per
// flow (FlowRecord::id_json).
template <typename W> void identity(W& w, const FlowId& id) {
    w.number("flow_id", id.flow_id);
    w.text("iface", id.iface);
    w.text("user", id.user);
    w.number("uid", id.uid);
    w.number("raw_uid", id.raw_uid);
    w.number("pid", id.pid);
    w.text_or_null("comm", view(id.comm));
    w.text_or_null("cgroup", unless_empty(id.cgroup));
    w.text_or_null("job", id.job);
    w.text_or_null("step", id.step);
    w.text("proto", id.proto);
    w.text("family", id.family);
    w.text("local", id.local);
    w.number("lport", id.lport);
    w.text("remote", id.remote);
    w.number("rport", id.rport);
    w.text("direction", direction_name(id.direction));
}

// What follows the identity, by record type.
template <typename W> void flow_tail(W& w, const FlowRecord& r) {
    if (r.type == FlowEvent::open)
        return;
    if (r.type == FlowEvent::owner) {
        w.number("from_uid", r.from_uid);
        w.text("from_user", r.from_user);
        w.text_or_null("from_job", r.from_job);
    }
    counters(w, r.cnt);
    if (r.type == FlowEvent::close) {
        w.number("tcp_bytes_acked", r.tcp_bytes_acked);
        w.number("tcp_bytes_received", r.tcp_bytes_received);
        w.number("tcp_bytes_retrans", r.tcp_bytes_retrans);
        w.number("duration_ms", r.duration_ms);
    }
}

// A writer with identity(r) writes the identity its own way (the JSON
// writer reuses the flow's text); the others walk the list.
template <typename W> void flow(W& w, const FlowRecord& r) {
    head(w, flow_type(r.type), r.ts);
    if constexpr (requires { w.identity(r); })
        w.identity(r);
    else
        identity(w, r.id);
    flow_tail(w, r);
}

// One row of "connections".
template <typename W> void pair_row(W& w, const PairRow& c) {
    w.text("local", c.local);
    w.text("remote", c.remote);
    w.number("tx_bytes", c.tx_bytes);
    w.number("rx_bytes", c.rx_bytes);
}

// One class of "classes", under its name.
template <typename W> void class_row(W& w, const ClassTotals& c) {
    w.number("tx_bytes", c.tx_bytes);
    w.number("rx_bytes", c.rx_bytes);
}

// A user_report is its head, which every part of a split syslog message
// repeats, then the interval's totals, which only the first part carries.
template <typename W> void user_head(W& w, const UserReport& r) {
    head(w, "user_report", r.ts);
    w.text("user", r.user);
    w.number("uid", r.uid);
    w.seconds("interval_s", r.interval_s);
}

template <typename W> void user_totals(W& w, const UserReport& r) {
    counters(w, {r.tx_bytes, r.rx_bytes, r.tx_packets, r.rx_packets});
    w.number("flows", r.flows);
    w.connections("connections", r.connections);
    w.classes("classes", r.classes);
}

template <typename W> void user_report(W& w, const UserReport& r) {
    user_head(w, r);
    user_totals(w, r);
}

template <typename W> void job_report(W& w, const JobReport& r) {
    head(w, "job_report", r.ts);
    w.text("job", r.job);
    w.text_or_null("step", view(r.step));
    w.text("cgroup", r.cgroup);
    w.text("user", r.user);
    w.number("uid", r.uid);
    w.seconds("interval_s", r.interval_s);
    w.number("tx_bytes", r.tx_bytes);
    w.number("rx_bytes", r.rx_bytes);
    w.classes("classes", r.classes);
}

template <typename W> void agent_stats(W& w, const AgentStats& s) {
    head(w, "agent_stats", s.ts);
    w.seconds("interval_s", s.interval_s);
    w.number("events", s.events);
    w.number("ring_drops", s.ring_drops);
    w.number("flow_table_full", s.flow_table_full);
    w.number("aux_table_full", s.aux_table_full);
    w.number("flow_share_full", s.flow_share_full);
    w.number("owner_deferred", s.owner_deferred);
    w.number("deltas_incomplete", s.deltas_incomplete);
    w.number("flows_active", s.flows_active);
    w.number("flow_table_size", s.flow_table_size);
    w.number("sink_errors", s.sink_errors);
    w.number("interfaces_missing", s.interfaces_missing);
    w.number("cgroups_unresolved", s.cgroups_unresolved);
}

} // namespace pdtt::fields
