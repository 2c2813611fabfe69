#include "format.hpp"

#include <cstdio>
#include <cstring>
#include <ctime>

namespace pdtt {

namespace {

// Splits ts into whole seconds (floored) and the microseconds within them.
std::time_t split(Timestamp ts, long& usec) {
    auto secs = std::chrono::floor<std::chrono::seconds>(ts);
    usec = static_cast<long>((ts - secs).count());
    return static_cast<std::time_t>(secs.time_since_epoch().count());
}

std::string strftime_str(const std::tm& tm, const char* fmt) {
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
    return std::string(buf, n);
}

} // namespace

std::string_view rfc3339_utc(Timestamp ts, char (&buf)[32]) {
    long usec = 0;
    std::time_t t = split(ts, usec);
    // Records come in bursts within one second, and a burst's open records
    // carry the second their flows opened in: the last two seconds are
    // formatted once each.
    thread_local std::time_t cached_t[2] = {-1, -1};
    thread_local char cached[2][20];
    thread_local int oldest = 0;
    int slot = t == cached_t[0] ? 0 : t == cached_t[1] ? 1 : -1;
    if (slot < 0) {
        slot = oldest;
        oldest ^= 1;
        std::tm tm{};
        gmtime_r(&t, &tm);
        std::strftime(cached[slot], sizeof cached[slot], "%Y-%m-%dT%H:%M:%S", &tm);
        cached_t[slot] = t;
    }
    std::memcpy(buf, cached[slot], 19);
    buf[19] = '.';
    for (int i = 25; i > 19; i--, usec /= 10)
        buf[i] = static_cast<char>('0' + usec % 10);
    buf[26] = 'Z';
    return {buf, 27};
}

std::string rfc3339_utc(Timestamp ts) {
    char buf[32];
    return std::string(rfc3339_utc(ts, buf));
}

std::string local_datetime(Timestamp ts) {
    long usec = 0;
    std::time_t t = split(ts, usec);
    std::tm tm{};
    localtime_r(&t, &tm);
    return strftime_str(tm, "%Y-%m-%d %H:%M:%S");
}

std::string human_bytes(uint64_t bytes) {
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes) / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

std::string sanitize_username(std::string name) {
    for (char& c : name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok)
            c = '_';
    }
    if (name.find_first_not_of('.') == std::string::npos) // "", ".", "..", ...
        return std::string(name.empty() ? 1 : name.size(), '_');
    return name;
}

std::string valid_utf8(std::string_view s) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        // Continuation count and the allowed range of the first continuation
        // byte, which rules out overlongs, surrogates and > U+10FFFF.
        size_t n = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if (c == 0xE0) {
            n = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            n = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF)
            n = 2;
        else if (c == 0xF0) {
            n = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3)
            n = 3;
        else if (c == 0xF4) {
            n = 3;
            hi = 0x8F;
        }
        size_t k = 1;
        for (; n > 0 && k <= n && i + k < s.size(); ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF))
                break;
        }
        if (n > 0 && k == n + 1) {
            out.append(s.substr(i, n + 1));
        } else {
            out += kReplacement; // one U+FFFD per maximal invalid subpart
        }
        i += k;
    }
    return out;
}

} // namespace pdtt
