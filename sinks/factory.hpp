// The only place that knows the concrete sinks.
#pragma once

#include "config.hpp"
#include "sink.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace pdtt {

// The sinks cfg asks for: per-user files unless --no-files, then the console.
// Throws Error(kExitUsage, ...) when the log directory is unusable.
// Sinks that do network I/O run it on io, the agent's loop.
SinkList make_sinks(const Config& cfg, boost::asio::io_context& io);

// Per-user files PREFIX-USERNAME.log in the original report format.
// Throws Error(kExitUsage, ...) when the directory of prefix is missing or not writable.
std::unique_ptr<Sink> make_file_sink(const std::string& prefix);

// JSON lines / per-interval text table, written to out (not owned).
std::unique_ptr<Sink> make_json_sink(std::FILE* out);
std::unique_ptr<Sink> make_text_sink(std::FILE* out);

} // namespace pdtt
