#include "notify.hpp"

#include "log.hpp"

#include <systemd/sd-daemon.h>

#include <cstring>

namespace pdtt {

namespace {

void send(const std::string& state) {
    // 0: NOTIFY_SOCKET not set. A failure is not worth more than a debug
    // line: the agent counts without systemd.
    int r = sd_notify(0, state.c_str());
    if (r < 0)
        log::debug("sd_notify: " + std::string(std::strerror(-r)));
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
