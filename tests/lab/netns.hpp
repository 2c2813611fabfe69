// Throwaway network namespaces, named pdtt-t-<pid>-<n> (see cleanup.hpp),
// and a guard that moves the calling thread into one.
#pragma once

#include "shell.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pdtt::test {

namespace detail {

inline int next_id() {
    static std::atomic<int> n{0};
    return ++n;
}

} // namespace detail

// A named network namespace (ip netns add) with lo up; deleted on destruction.
class Netns {
public:
    Netns() : name_("pdtt-t-" + std::to_string(::getpid()) + "-" + std::to_string(detail::next_id())) {
        run_ok("ip netns add " + name_);
        try {
            run_ok("ip -n " + name_ + " link set lo up");
        } catch (...) {
            run("ip netns del " + name_);
            throw;
        }
    }
    ~Netns() { run("ip netns del " + name_ + " 2>/dev/null"); }
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;

    const std::string& name() const { return name_; }
    std::string path() const { return "/run/netns/" + name_; }
    // The namespace's inode number: what the kernel calls its ns.inum.
    unsigned long inode() const {
        struct stat st {};
        if (::stat(path().c_str(), &st) != 0)
            throw std::runtime_error("stat " + path() + ": " + std::strerror(errno));
        return st.st_ino;
    }
    // Prefix that runs a shell command inside the namespace.
    std::string exec(const std::string& cmd) const { return "ip netns exec " + name_ + " " + cmd; }

private:
    std::string name_;
};

// Moves the calling thread into a namespace; moves it back on destruction.
class EnterNetns {
public:
    explicit EnterNetns(const Netns& ns) : EnterNetns(ns.path()) {}
    explicit EnterNetns(const std::string& path) {
        orig_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (orig_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
            std::string err = std::strerror(errno);
            if (fd >= 0)
                ::close(fd);
            if (orig_ >= 0)
                ::close(orig_);
            throw std::runtime_error("cannot enter netns " + path + ": " + err);
        }
        ::close(fd);
    }
    ~EnterNetns() {
        if (::setns(orig_, CLONE_NEWNET) != 0)
            std::fprintf(stderr, "lab/netns.hpp: cannot return to the original netns: %s\n", std::strerror(errno));
        ::close(orig_);
    }
    EnterNetns(const EnterNetns&) = delete;
    EnterNetns& operator=(const EnterNetns&) = delete;

private:
    int orig_ = -1;
};

} // namespace pdtt::test
