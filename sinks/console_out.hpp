// The console sinks' output. Into a pipe or socket (| jq, | less, a
// supervisor's log pipe) it is written without blocking from the agent's
// loop: a reader that stalls fills a bounded buffer, and a record that does
// not fit is dropped whole and counted, so the ring buffer consumer never
// waits for it. A file or terminal is written as before, through stdio.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace pdtt {

class ConsoleOut {
public:
    static constexpr std::size_t kDefaultLimit = 4u << 20;

    // out is not owned; with io null, every write goes through stdio.
    ConsoleOut(std::FILE* out, boost::asio::io_context* io, std::size_t limit = kDefaultLimit) :
        out_(out), limit_(limit) {
        struct stat st {};
        if (::fstat(::fileno(out), &st) != 0)
            return;
        stream_ = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
        if (!io)
            return; // stdio, flushed per record into a pipe
        if (S_ISFIFO(st.st_mode)) {
            // A description of our own: O_NONBLOCK on the inherited one
            // would change it for everyone sharing the pipe.
            std::string self = "/proc/self/fd/" + std::to_string(::fileno(out));
            fd_ = ::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        } else if (S_ISSOCK(st.st_mode)) {
            fd_ = ::fcntl(::fileno(out), F_DUPFD_CLOEXEC, 3); // written with MSG_DONTWAIT
            socket_ = true;
        }
        if (fd_ >= 0)
            desc_.emplace(*io, fd_); // else stdio, as without io
    }
    ~ConsoleOut() {
        if (desc_) {
            boost::system::error_code ignored;
            desc_->close(ignored); // closes fd_
        }
    }
    ConsoleOut(const ConsoleOut&) = delete;
    ConsoleOut& operator=(const ConsoleOut&) = delete;

    // Hands in one whole record or table; false when it was dropped or the
    // write failed (each is one error).
    bool write(std::string_view text) {
        if (!desc_) {
            if (std::fwrite(text.data(), 1, text.size(), out_) != text.size()) {
                std::clearerr(out_); // retry on the next record
                return false;
            }
            return !stream_ || flush();
        }
        if (buf_.size() - sent_ + text.size() > limit_)
            return false;         // the newest goes: what is queued keeps its order
        if (sent_ > limit_ / 2) { // a slow reader: keep the buffer within twice the limit
            buf_.erase(0, sent_);
            sent_ = 0;
        }
        buf_.append(text);
        return push();
    }

    // stdio only: the buffered text now.
    bool flush() {
        if (desc_)
            return true;
        if (std::fflush(out_) != 0) {
            std::clearerr(out_);
            return false;
        }
        return true;
    }

    bool drained() const { return !desc_ || sent_ == buf_.size(); }

    // Writes that failed on the loop, after write() had returned true.
    uint64_t lost() const { return lost_; }

private:
    // Writes what the reader takes now; waits on the loop for the rest.
    bool push() {
        while (sent_ < buf_.size()) {
            const char* p = buf_.data() + sent_;
            std::size_t n = buf_.size() - sent_;
            ssize_t w = socket_ ? ::send(fd_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : ::write(fd_, p, n);
            if (w > 0) {
                sent_ += static_cast<std::size_t>(w);
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                wait();
                return true;
            }
            // The reader went (EPIPE) or worse: what was queued is lost.
            buf_.clear();
            sent_ = 0;
            return false;
        }
        buf_.clear();
        sent_ = 0;
        return true;
    }

    void wait() {
        if (waiting_)
            return;
        waiting_ = true;
        desc_->async_wait(boost::asio::posix::stream_descriptor::wait_write,
                          [this](const boost::system::error_code& ec) {
                              if (ec == boost::asio::error::operation_aborted)
                                  return; // closed: this may be gone
                              waiting_ = false;
                              if (!push())
                                  ++lost_;
                          });
    }

    std::FILE* out_;
    std::size_t limit_;
    int fd_ = -1;
    bool stream_ = false; // a pipe or socket: its reader wants every record at once
    bool socket_ = false;
    bool waiting_ = false;
    std::optional<boost::asio::posix::stream_descriptor> desc_;
    std::string buf_;
    std::size_t sent_ = 0; // octets of buf_ already written
    uint64_t lost_ = 0;
};

} // namespace pdtt
