// The records the sink tests write: a fixed time and one user's TCP flow,
// which each test dresses further.
#pragma once

#include "records.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace pdtt::test {

// 2024-01-15 10:30:00 UTC plus micros.
inline Timestamp at(int64_t micros = 0) {
    return Timestamp(std::chrono::microseconds(int64_t{1705314600} * 1'000'000 + micros));
}

// Local time is UTC while it lives.
struct UtcZone {
    UtcZone() {
        setenv("TZ", "UTC", 1);
        tzset();
    }
};

// alice's rsync to 93.184.216.34:443 from 192.168.1.100:40000.
inline FlowRecord sample_flow(FlowEvent type) {
    FlowRecord r;
    r.type = type;
    r.ts = at(123456);
    r.id.iface = "eth0";
    r.id.uid = 1000;
    r.id.raw_uid = 1000;
    r.id.user = "alice";
    r.id.pid = 4242;
    r.id.comm = "rsync";
    r.id.proto = "tcp";
    r.id.family = "ipv4";
    r.id.local = "192.168.1.100";
    r.id.lport = 40000;
    r.id.remote = "93.184.216.34";
    r.id.rport = 443;
    r.id.direction = Direction::outbound;
    r.cnt = {100, 200, 3, 4};
    r.tcp_bytes_acked = 99;
    r.tcp_bytes_received = 198;
    r.duration_ms = 1500;
    return r;
}

} // namespace pdtt::test
