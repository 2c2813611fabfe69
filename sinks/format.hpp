// Formatting helpers shared by the sinks.
#pragma once

#include "records.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace pdtt {

// "2024-01-15T10:30:00.123456Z"
std::string rfc3339_utc(Timestamp ts);
// The same into buf, without allocating: the JSON sink's hot path.
std::string_view rfc3339_utc(Timestamp ts, char (&buf)[32]);

// "2024-01-15 10:30:00" in the local time zone (header of the per-user files).
std::string local_datetime(Timestamp ts);

// "512 B", "1.5 MiB"
std::string human_bytes(uint64_t bytes);

// Reduces a username to [A-Za-z0-9._-] so it is safe inside a file name;
// never returns "", "." or "..".
std::string sanitize_username(std::string name);

// Replaces every invalid UTF-8 sequence with U+FFFD (JSON must be valid UTF-8).
std::string valid_utf8(std::string_view s);

} // namespace pdtt
