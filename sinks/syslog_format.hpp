// RFC 5424 messages of pdtt's records and RFC 6587 framing: pure functions,
// so the syslog sink's bytes can be checked without a network.
#pragma once

#include "records.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pdtt::rfc5424 {

inline constexpr int kSeverityInfo = 6;
// 32473 is the private enterprise number RFC 5612 reserves for examples.
inline constexpr std::string_view kSdId = "pdtt@32473";

// UDP: RFC 5426 obliges IPv6 receivers to take 1180 octets, and 1180 plus
// the IPv6 and UDP headers fits the 1280-octet IPv6 minimum MTU (and any
// IPv4 path of MTU 1500), so no datagram is ever fragmented.
inline constexpr std::size_t kUdpMaxMessage = 1180;
// TCP: the size RFC 5425 says every receiver must accept.
inline constexpr std::size_t kTcpMaxMessage = 2048;

// What every message of one sender carries in its header.
struct Header {
    int facility = 16; // local0
    std::string hostname;
    std::string app_name;
    std::string procid;
};

// This host and process: gethostname(), getpid().
Header local_header(int facility, const std::string& app_name);

// PARAM-NAME and its unescaped value.
using Param = std::pair<std::string, std::string>;

// TIMESTAMP in local time with microseconds and a numeric offset:
// "2024-01-15T18:30:00.123456+08:00".
std::string timestamp(Timestamp ts);

// C0 controls and DEL as '#' and three octal digits, as rsyslog writes
// them itself ("\n" is "#012", tab "#011"): RFC 5424 allows them in a
// PARAM-VALUE, but a receiver's line-per-message file would break on them.
std::string escape_control(std::string_view s);

// PARAM-VALUE: invalid UTF-8 repaired (U+FFFD), control characters as
// escape_control, then '"', '\' and ']' escaped.
std::string escape_param_value(std::string_view v);

// "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [pdtt@32473 k="v" ...] MSG".
// Header fields are reduced to printable ASCII ("-" when empty); MSG to
// valid UTF-8, its control characters as escape_control.
std::string format_message(const Header& h, Timestamp ts, std::string_view msgid, const std::vector<Param>& params,
                           std::string_view msg);

// RFC 6587 octet counting: "LENGTH SP MSG", LENGTH in octets.
std::string octet_frame(std::string_view msg);

// The records, their STRUCTURED-DATA keyed like the JSON records' fields
// ("type" is the MSGID; a null pid or comm is left out).
std::string format_flow_close(const Header& h, const FlowRecord& r);
std::string format_flow_owner(const Header& h, const FlowRecord& r);
// Per-class totals (user_report too) are class_I, class_tx_bytes_I, class_rx_bytes_I.
std::string format_job_report(const Header& h, const JobReport& r);
std::string format_agent_stats(const Header& h, const AgentStats& s);

// One or more messages, each at most max_size octets. Connection i is
// local_i, remote_i, tx_bytes_i, rx_bytes_i (i counts from 0 over the whole
// report). When split, every message has part and parts, and only part 1
// the user's totals, so that summing tx_bytes over messages stays right.
std::vector<std::string> format_user_report(const Header& h, const UserReport& r, std::size_t max_size);

} // namespace pdtt::rfc5424
