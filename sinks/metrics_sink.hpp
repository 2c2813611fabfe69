// Prometheus metrics: counters cumulative since start, served over HTTP at
// GET /metrics (text format 0.0.4) on the agent's own loop.
#pragma once

#include "sink.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace pdtt {

struct MetricsOptions {
    std::string listen;     // ADDR:PORT, an IPv6 ADDR in brackets; "" for no endpoint
    std::string token_file; // bearer token, read once at start; "" for none
    std::string version;    // pdtt_build_info{version}
};

// What one connection may cost the agent.
inline constexpr std::size_t kMetricsMaxRequest = std::size_t{8} * 1024; // request line and headers
inline constexpr int kMetricsTimeoutSeconds = 5;                         // to read the request and write the reply
inline constexpr std::size_t kMetricsMaxConnections = 16;                // more are closed as they come

class MetricsSink : public Sink {
public:
    // The exposition GET /metrics serves now.
    virtual std::string exposition() const = 0;
    // Where it listens (the port the kernel chose for port 0).
    virtual boost::asio::ip::tcp::endpoint endpoint() const = 0;
};

// Throws Error(kExitUsage, ...) for an address that does not parse or cannot
// be bound, and for a token file that is missing, empty, or readable or
// writable by group or others.
std::unique_ptr<MetricsSink> make_metrics_sink(const MetricsOptions& opts, boost::asio::io_context& io);

// "a\"b" for a\"b: backslash, double quote and newline escaped.
std::string metrics_label_value(std::string_view v);

} // namespace pdtt
