// The only place that knows the concrete sinks.
#pragma once

#include "metrics_sink.hpp"
#include "sink.hpp"

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace pdtt {

struct SyslogOptions {
    std::string url;   // udp://, tcp:// or tls://HOST:PORT, as Config checked it
    int facility = 16; // local0
    std::string app_name = "pdtt";
    std::size_t queue_bytes = 4u << 20;        // TCP, TLS: what may wait for the receiver; the oldest goes first
    std::string ca_file = {};                  // TLS: trust anchors (PEM); empty for the system's CAs
    std::string cert_file = {}, key_file = {}; // TLS: a client certificate (PEM), none when empty
};

enum class ConsoleFormat { text, json, none };

// What make_sinks builds; the agent fills it in from its configuration.
// Left as it is, it asks for no sink at all.
struct SinkSettings {
    bool files = false; // per-user files PREFIX-USERNAME.log
    std::string log_prefix;
    ConsoleFormat console = ConsoleFormat::none;
    std::vector<SyslogOptions> syslog; // one sink each
    RecordTypes syslog_records;        // the records the syslog sinks get (--syslog-records)
    MetricsOptions metrics;            // served when listen is set
};

// The sinks settings ask for: per-user files, the console, syslog, then metrics.
// Throws Error(kExitUsage, ...) when the log directory is unusable.
// Sinks that do network I/O run it on io, the agent's loop.
SinkList make_sinks(const SinkSettings& settings, boost::asio::io_context& io);

// Per-user files PREFIX-USERNAME.log in the original report format, at most
// max_open of them open at once (the least recently written is closed).
// Throws Error(kExitUsage, ...) when the directory of prefix is missing or not writable.
std::unique_ptr<Sink> make_file_sink(const std::string& prefix, std::size_t max_open = 256);

// JSON lines / per-interval text table, written to out (not owned). With
// io, a pipe or socket is written without blocking from io's loop, through
// a bounded buffer whose overflow is counted; without, through stdio.
std::unique_ptr<Sink> make_json_sink(std::FILE* out, boost::asio::io_context* io = nullptr);
std::unique_ptr<Sink> make_text_sink(std::FILE* out, boost::asio::io_context* io = nullptr);

// Hands `inner` only the records of the types in `types` (and everything
// that is not a record: interval_end, reopen, flush, errors).
std::unique_ptr<Sink> make_filtered_sink(std::unique_ptr<Sink> inner, RecordTypes types);

// RFC 5424 records (flow_owner, flow_close, user_report, job_report, agent_stats) to a syslog
// receiver, the network I/O on io. Throws Error(kExitUsage, ...) when the
// host does not resolve (a temporary failure is only said) or a TLS file
// cannot be used; later failures are retried.
std::unique_ptr<Sink> make_syslog_sink(const SyslogOptions& opts, boost::asio::io_context& io);

} // namespace pdtt
