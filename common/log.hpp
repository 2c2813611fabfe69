// Logging: one line per message on stderr; debug only with -v.
#pragma once

#include "errors.hpp"

#include <cstdio>
#include <string>

namespace pdtt::log {

inline bool& verbose() {
    static bool v = false;
    return v;
}

inline void line(const char* level, const std::string& msg) {
    std::fprintf(stderr, "%.*s: %s%s\n", int(kProgramName.size()), kProgramName.data(), level, msg.c_str());
}
inline void debug(const std::string& msg) {
    if (verbose())
        line("debug: ", msg);
}
inline void info(const std::string& msg) { line("", msg); }
inline void warn(const std::string& msg) { line("warning: ", msg); }

} // namespace pdtt::log
