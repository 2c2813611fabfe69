#include "notify.hpp"

#include "log.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

namespace pdtt {

namespace {

// 0: NOTIFY_SOCKET is not set. A failure is said once: systemd then
// times the start out or kills the agent for a silent watchdog.
void send(const std::string& state) {
    static bool warned = false;
    int r = sd_notify(0, state.c_str());
    if (r < 0 && !warned) {
        warned = true;
        const char* sock = std::getenv("NOTIFY_SOCKET");
        log::warn("cannot notify systemd at " + std::string(sock ? sock : "?") + ": " + std::strerror(-r));
    }
}

std::string status_text(const std::vector<std::string>& awaited) {
    std::string s;
    for (const auto& name : awaited)
        s += (s.empty() ? "counting; waiting for interface " : ", ") + name;
    return s.empty() ? "counting" : s;
}

} // namespace

Notifier::Notifier(boost::asio::io_context& io) : timer_(io) {}

void Notifier::start(const std::vector<std::string>& awaited) {
    started_ = true;
    status_ = status_text(awaited);
    send("READY=1\nSTATUS=" + status_);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    period_ = std::chrono::microseconds(usec / 2);
    log::debug("systemd watchdog: a ping every " + std::to_string(period_.count() / 1000) + " ms");
    arm();
}

void Notifier::status(const std::vector<std::string>& awaited) {
    std::string s = status_text(awaited);
    if (!started_ || s == status_)
        return;
    status_ = s;
    send("STATUS=" + status_);
}

void Notifier::stopping() {
    timer_.cancel();
    send("STOPPING=1");
}

void Notifier::arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec)
            return;
        send("WATCHDOG=1");
        arm();
    });
}

} // namespace pdtt
