#include "ring.hpp"

#include "errors.hpp"
#include "log.hpp"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pdtt {

RingReader::RingReader(boost::asio::io_context& io, int ring_map_fd, Handler handler,
                       std::chrono::milliseconds drain_period) :
    epoll_(io),
    timer_(io), period_(drain_period), handler_(std::move(handler)) {
    rb_.reset(ring_buffer__new(ring_map_fd, &RingReader::on_sample, this, nullptr));
    if (!rb_)
        throw Error(kExitRuntime, std::string("cannot map the ring buffer: ") + std::strerror(errno));
    // Both libbpf and Asio close what they own: give Asio its own copy.
    int fd = ::dup(ring_buffer__epoll_fd(rb_.get()));
    if (fd < 0)
        throw Error(kExitRuntime, std::string("dup: ") + std::strerror(errno));
    epoll_.assign(fd);
}

RingReader::~RingReader() {
    try {
        stop();
    } catch (...) { // a destructor must not throw; timer cancel() throws only on misuse
    }
}

void RingReader::start() {
    running_ = true;
    arm_wait();
    arm_timer();
}

void RingReader::stop() {
    running_ = false;
    boost::system::error_code ec;
    epoll_.cancel(ec);
    timer_.cancel();
}

int RingReader::on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingReader*>(ctx);
    if (size < sizeof(pdtt_event)) {
        // Only a kernel object built from another pdtt.h can send this.
        if (!self->warned_short_)
            log::warn("ring record of " + std::to_string(size) + " bytes, expected " +
                      std::to_string(sizeof(pdtt_event)) + ": agent and BPF object disagree; skipped");
        self->warned_short_ = true;
        return 0;
    }
    pdtt_event e;
    std::memcpy(&e, data, sizeof(e)); // ring records are only 8-byte aligned
    self->consumed_++;
    self->handler_(e);
    return 0;
}

size_t RingReader::drain() {
    int n = ring_buffer__consume(rb_.get());
    if (n < 0) {
        log::warn(std::string("ring buffer: ") + std::strerror(-n));
        return 0;
    }
    return static_cast<size_t>(n);
}

void RingReader::arm_wait() {
    epoll_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec || !running_)
            return;
        drain();
        arm_wait();
    });
}

void RingReader::arm_timer() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || !running_)
            return;
        drain();
        arm_timer();
    });
}

} // namespace pdtt
