// Records with arbitrary strings and numbers from a fuzzer's bytes, for the
// targets that check what the sinks make of them.
#pragma once

#include "records.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pdtt::fuzz {

// Owns the text that records only view (FlowId's names).
class Records {
public:
    explicit Records(FuzzedDataProvider& p) : p_(p) {}

    std::string text() { return p_.ConsumeRandomLengthString(48); }
    std::string_view view() { return keep_.emplace_back(text()); }
    std::optional<std::string> maybe_text() { return p_.ConsumeBool() ? std::optional(text()) : std::nullopt; }
    std::optional<std::string_view> maybe_view() { return p_.ConsumeBool() ? std::optional(view()) : std::nullopt; }
    // Up to 2100: what a clock can say, not what an int64 can.
    Timestamp ts() {
        return Timestamp(std::chrono::microseconds(p_.ConsumeIntegralInRange<int64_t>(0, 4102444800000000)));
    }
    double seconds() { return p_.ConsumeFloatingPointInRange<double>(0, 1e6); }
    uint64_t num() { return p_.ConsumeIntegral<uint64_t>(); }
    Counters counters() { return {num(), num(), num(), num()}; }

    FlowRecord flow() {
        FlowRecord r;
        r.type = static_cast<FlowEvent>(p_.ConsumeIntegralInRange(0, 3));
        r.ts = ts();
        FlowId& id = r.id;
        id.flow_id = num();
        id.iface = view();
        id.uid = p_.ConsumeIntegral<int64_t>();
        id.user = view();
        if (p_.ConsumeBool())
            id.pid = p_.ConsumeIntegral<uint32_t>();
        id.comm = maybe_text();
        id.proto = view();
        id.family = view();
        id.local = text();
        id.lport = p_.ConsumeIntegral<uint16_t>();
        id.remote = text();
        id.rport = p_.ConsumeIntegral<uint16_t>();
        id.direction = static_cast<Direction>(p_.ConsumeIntegralInRange(0, 2));
        id.cgroup = view();
        id.job = maybe_view();
        id.step = maybe_view();
        r.cnt = counters();
        r.from_uid = p_.ConsumeIntegral<int64_t>();
        r.from_user = view();
        r.from_job = maybe_view();
        r.tcp_bytes_acked = num();
        r.tcp_bytes_received = num();
        r.tcp_bytes_retrans = num();
        r.duration_ms = num();
        return r;
    }

    std::vector<ClassTotals> classes() {
        // Names as --class takes them: distinct, [A-Za-z0-9_-]{1,32}.
        static constexpr std::string_view alphabet = "ABCXYZabcxyz0189_-";
        std::vector<ClassTotals> v(p_.ConsumeIntegralInRange(0, 4));
        for (size_t i = 0; i < v.size(); ++i) {
            std::string name = "c" + std::to_string(i);
            for (size_t n = p_.ConsumeIntegralInRange(0, 30); n > 0; --n)
                name += alphabet[p_.ConsumeIntegralInRange<size_t>(0, alphabet.size() - 1)];
            v[i] = {keep_.emplace_back(std::move(name)), num(), num()};
        }
        return v;
    }

    UserReport user_report() {
        UserReport r;
        r.ts = ts();
        r.user = text();
        r.uid = p_.ConsumeIntegral<int64_t>();
        r.interval_s = seconds();
        r.tx_bytes = num();
        r.rx_bytes = num();
        r.tx_packets = num();
        r.rx_packets = num();
        r.flows = num();
        r.connections.resize(p_.ConsumeIntegralInRange(0, 40));
        for (auto& c : r.connections)
            c = {text(), text(), num(), num()};
        r.classes = classes();
        return r;
    }

    JobReport job_report() {
        JobReport r;
        r.ts = ts();
        r.job = text();
        r.step = maybe_text();
        r.cgroup = text();
        r.user = text();
        r.uid = p_.ConsumeIntegral<int64_t>();
        r.interval_s = seconds();
        r.tx_bytes = num();
        r.rx_bytes = num();
        r.classes = classes();
        return r;
    }

    AgentStats agent_stats() {
        AgentStats s;
        s.ts = ts();
        s.interval_s = seconds();
        for (uint64_t* f : {&s.events, &s.ring_drops, &s.flow_table_full, &s.aux_table_full, &s.flow_share_full,
                            &s.owner_deferred, &s.deltas_incomplete, &s.flows_active, &s.flows_udp, &s.flow_table_size,
                            &s.sink_errors, &s.interfaces_missing})
            *f = num();
        return s;
    }

private:
    FuzzedDataProvider& p_;
    std::deque<std::string> keep_; // views stay valid as it grows
};

} // namespace pdtt::fuzz
