// What the test and benchmark tools share: one-line errors, a command line
// of a mode and --option VALUE pairs, and dropping to a test user.
#pragma once

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pdtt::tool {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A bad command line: a tool may exit 2 for it instead of 1.
struct UsageError : Error {
    using Error::Error;
};

inline std::string errno_text(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

// ---- command line ----

struct Args {
    std::string mode;
    std::map<std::string, std::string> opt;

    bool has(const std::string& k) const { return opt.count(k) != 0; }
    std::string str(const std::string& k, const std::string& def = {}) const {
        auto it = opt.find(k);
        return it == opt.end() ? def : it->second;
    }
    // A non-negative integer given as option k.
    static std::uint64_t to_num(const std::string& k, const std::string& s) {
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size() || s.empty())
            throw UsageError("--" + k + ": not a non-negative integer: '" + s + "'");
        return v;
    }
    std::uint64_t num(const std::string& k, std::uint64_t def) const {
        auto it = opt.find(k);
        return it == opt.end() ? def : to_num(k, it->second);
    }
    std::string need(const std::string& k) const {
        if (!has(k))
            throw UsageError(mode + ": --" + k + " is required");
        return str(k);
    }
    std::uint64_t need_num(const std::string& k) const {
        need(k);
        return num(k, 0);
    }
};

// A mode and the options it takes, without their "--".
struct Mode {
    std::string name;
    std::vector<std::string> options;
};

// "serve or send", "serve, run or hold": the modes as errors name them.
inline std::string mode_list(const std::vector<Mode>& modes) {
    std::string s;
    for (std::size_t i = 0; i < modes.size(); i++)
        s += (i == 0 ? "" : i + 1 == modes.size() ? " or " : ", ") + modes[i].name;
    return s;
}

// MODE --option VALUE (or --option=VALUE) ...; throws UsageError.
inline Args parse_args(int argc, char** argv, const std::vector<Mode>& modes) {
    Args a;
    if (argc < 2)
        throw UsageError("missing mode (" + mode_list(modes) + ")");
    a.mode = argv[1];
    auto k = std::find_if(modes.begin(), modes.end(), [&](const Mode& m) { return m.name == a.mode; });
    if (k == modes.end())
        throw UsageError("unknown mode '" + a.mode + "' (" + mode_list(modes) + ")");
    for (int i = 2; i < argc; i++) {
        std::string s = argv[i];
        if (s.rfind("--", 0) != 0)
            throw UsageError("unexpected argument '" + s + "'");
        s = s.substr(2);
        std::string val;
        if (auto eq = s.find('='); eq != std::string::npos) {
            val = s.substr(eq + 1);
            s = s.substr(0, eq);
        } else {
            if (i + 1 >= argc)
                throw UsageError("--" + s + " needs a value");
            val = argv[++i];
        }
        if (std::find(k->options.begin(), k->options.end(), s) == k->options.end())
            throw UsageError(a.mode + ": unknown option --" + s);
        a.opt[s] = val;
    }
    return a;
}

// ---- privileges ----

// Becomes uid for good, with its passwd group (gid = uid without an entry)
// and no supplementary groups; each step is checked, a failure an Error.
inline void drop_to(uid_t uid) {
    gid_t gid = static_cast<gid_t>(uid);
    if (passwd* pw = getpwuid(uid))
        gid = pw->pw_gid;
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        throw Error(errno_text("cannot drop to uid " + std::to_string(uid)));
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
        throw Error("uid drop did not take effect");
}

// drop_to(--uid) when the command line has one.
inline void drop_to_uid_option(const Args& a) {
    if (a.has("uid"))
        drop_to(static_cast<uid_t>(a.num("uid", 0)));
}

// ---- wire ----

// The sizes the tools announce to each other, big-endian.
inline void put_be64(unsigned char* p, std::uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = static_cast<unsigned char>(v & 0xff);
}

inline std::uint64_t get_be64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

// ---- sockets ----

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
};

// Numeric IPv4 or IPv6 literal (with %scope for link-local), never DNS.
inline Addr resolve(const std::string& host, std::uint64_t port) {
    if (port > 65535)
        throw UsageError("port out of range: " + std::to_string(port));
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    std::string svc = std::to_string(port);
    if (int rc = getaddrinfo(host.c_str(), svc.c_str(), &hints, &res); rc != 0)
        throw UsageError("not an IPv4 or IPv6 address literal: '" + host + "' (" + gai_strerror(rc) + ")");
    Addr a;
    std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    freeaddrinfo(res);
    return a;
}

// ---- socket I/O (blocking; timeouts turn a stall into an Error) ----

inline constexpr std::size_t kIoBuf = std::size_t{256} * 1024;

// Receive and send timeouts of ms milliseconds; 0 leaves them unset.
inline void set_timeouts(int fd, std::uint64_t ms) {
    if (ms == 0)
        return;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

inline void write_all(int fd, const void* buf, std::size_t n, const char* what = "send") {
    auto p = static_cast<const char*>(buf);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            throw Error(std::string(what) + ": " + (errno == EAGAIN ? std::string("timed out") : std::strerror(errno)));
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// Sends n bytes of c.
inline void send_filled(int fd, std::uint64_t n, char c, const char* what = "send") {
    const std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(n, kIoBuf)), c);
    while (n > 0) {
        auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
        write_all(fd, buf.data(), chunk, what);
        n -= chunk;
    }
}

// Reads exactly n bytes (into a scratch buffer when dst is null).
inline void read_exact(int fd, void* dst, std::uint64_t n, const char* what) {
    static thread_local std::vector<char> scratch(kIoBuf);
    std::uint64_t got = 0;
    while (got < n) {
        char* into = dst ? static_cast<char*>(dst) + got : scratch.data();
        auto want = static_cast<std::size_t>(dst ? n - got : std::min<std::uint64_t>(n - got, scratch.size()));
        ssize_t r = ::recv(fd, into, want, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            throw Error(std::string(what) + ": " + (errno == EAGAIN ? std::string("timed out") : std::strerror(errno)) +
                        " after " + std::to_string(got) + " of " + std::to_string(n) + " bytes");
        }
        if (r == 0)
            throw Error(std::string(what) + ": peer closed after " + std::to_string(got) + " of " + std::to_string(n) +
                        " bytes");
        got += static_cast<std::uint64_t>(r);
    }
}

inline unsigned bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        throw Error(errno_text("getsockname"));
    return ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                   : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

} // namespace pdtt::tool
