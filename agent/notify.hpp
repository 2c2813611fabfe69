// systemd's notification protocol (Type=notify): READY=1, STATUS= and the
// watchdog. Every call is a no-op when NOTIFY_SOCKET is not set.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace pdtt {

class Notifier {
public:
    explicit Notifier(boost::asio::io_context& io);
    // READY=1 with STATUS=, once the loop is about to run; then WATCHDOG=1
    // from the loop at half WATCHDOG_USEC, so a stalled loop is what
    // systemd sees.
    void start(const std::vector<std::string>& awaited);
    // STATUS= names the interfaces still awaited; nothing before start().
    void status(const std::vector<std::string>& awaited);
    void stopping();

private:
    void arm();

    boost::asio::steady_timer timer_;
    std::chrono::microseconds period_{0};
    bool started_ = false;
    std::string status_;
};

} // namespace pdtt
