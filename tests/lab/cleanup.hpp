// Leftovers of a crashed or killed test run, removed at the next start.
//
// Naming, so that leftovers are recognisable and never someone else's:
//   namespaces  pdtt-t-<pid>-<n>            (netns.hpp)
//   veth ends   pdt<pid hex>-<n hex>a / ...b   (veth.hpp; IFNAMSIZ leaves 15 chars)
// <pid> is the test process; cleanup_stale() removes only names whose
// process is gone, so test binaries running side by side do not collide.
#pragma once

#include "shell.hpp"

#include <signal.h>

#include <cerrno>
#include <regex>
#include <sstream>
#include <string>

namespace pdtt::test {

namespace detail {

inline bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

} // namespace detail

// Removes namespaces and root-namespace veth ends left by test processes
// that no longer exist (a crashed or killed run). Call once at start-up.
inline void cleanup_stale() {
    static const std::regex ns_re(R"(^pdtt-t-(\d+)-\d+$)");
    static const std::regex link_re(R"(^pdt([0-9a-f]+)-[0-9a-f]+[ab]$)");
    std::istringstream nss(capture("ip netns list 2>/dev/null || true"));
    for (std::string line; std::getline(nss, line);) {
        std::string name = line.substr(0, line.find(' '));
        std::smatch m;
        if (std::regex_match(name, m, ns_re) && !detail::pid_alive(std::stol(m[1])))
            run("ip netns del " + name + " 2>/dev/null");
    }
    std::istringstream ls(capture("ip -o link show 2>/dev/null || true"));
    for (std::string line; std::getline(ls, line);) {
        // "7: pdt1a2b-1a@if6: <...>"
        auto c1 = line.find(": ");
        if (c1 == std::string::npos)
            continue;
        std::string name = line.substr(c1 + 2);
        name = name.substr(0, name.find_first_of("@:"));
        std::smatch m;
        if (std::regex_match(name, m, link_re) && !detail::pid_alive(std::stol(m[1], nullptr, 16)))
            run("ip link del " + name + " 2>/dev/null");
    }
}

} // namespace pdtt::test
