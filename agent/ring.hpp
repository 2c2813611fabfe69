// Consumes the BPF ring buffer from the Asio loop.
// The kernel side wakes us only when the ring fills up (BPF_RB_NO_WAKEUP
// otherwise), so we also drain on a short timer.
#pragma once

#include "abi.hpp"
#include "skeleton.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>

namespace pdtt {

class RingReader {
public:
    using Handler = std::function<void(const pdtt_event&)>;

    RingReader(boost::asio::io_context& io, int ring_map_fd, Handler handler,
               std::chrono::milliseconds drain_period = std::chrono::milliseconds(50));
    ~RingReader();
    RingReader(const RingReader&) = delete;
    RingReader& operator=(const RingReader&) = delete;

    void start();
    void stop();
    // Consumes everything in the ring now; returns the number of records.
    size_t drain();
    uint64_t consumed() const { return consumed_; }

private:
    static int on_sample(void* ctx, void* data, size_t size);
    void arm_wait();
    void arm_timer();

    RingBuffer rb_;
    boost::asio::posix::stream_descriptor epoll_;
    boost::asio::steady_timer timer_;
    std::chrono::milliseconds period_;
    Handler handler_;
    uint64_t consumed_ = 0;
    bool warned_short_ = false;
    bool running_ = false;
};

} // namespace pdtt
