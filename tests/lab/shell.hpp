// Shell commands and polling for the root integration tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace pdtt::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Exit status of a shell command (-1 when it could not run or was killed).
inline int run(const std::string& cmd) {
    int st = std::system(cmd.c_str());
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

inline void run_ok(const std::string& cmd) {
    if (int rc = run(cmd); rc != 0)
        throw std::runtime_error("command failed (exit " + std::to_string(rc) + "): " + cmd);
}

// stdout of a shell command; throws when it exits non-zero.
inline std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p)
        throw std::runtime_error("popen failed: " + cmd);
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        out.append(buf.data(), n);
    int st = ::pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        throw std::runtime_error("command failed: " + cmd);
    return out;
}

// Polls pred until it holds or timeout passes; true when it held.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds step = 5ms) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (Clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(step);
    }
}

} // namespace pdtt::test
