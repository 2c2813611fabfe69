// Child processes of a test, their output captured, never outliving it.
#pragma once

#include "shell.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pdtt::test {

// A child process (fork + exec of argv, optionally inside a namespace via
// `ip netns exec`), in its own process group, with stdout and stderr
// captured by a reader thread. It gets SIGKILL when the test process dies
// (PR_SET_PDEATHSIG), and the destructor kills and reaps it if still running.
class Process {
public:
    explicit Process(std::vector<std::string> argv, const std::string& netns = {}) {
        if (!netns.empty())
            argv.insert(argv.begin(), {"ip", "netns", "exec", netns});
        if (argv.empty())
            throw std::invalid_argument("Process: empty argv");
        cmdline_ = argv[0];
        for (std::size_t i = 1; i < argv.size(); i++)
            cmdline_ += " " + argv[i];
        std::vector<char*> cargv;
        for (auto& a : argv)
            cargv.push_back(a.data());
        cargv.push_back(nullptr);

        int out[2] = {-1, -1}, err[2] = {-1, -1};
        auto close_all = [&] {
            for (int fd : {out[0], out[1], err[0], err[1], stop_[0], stop_[1]})
                if (fd >= 0)
                    ::close(fd);
        };
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0) {
            std::string e = std::strerror(errno);
            close_all();
            throw std::runtime_error("pipe: " + e);
        }
        pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) {
            std::string e = std::strerror(errno);
            close_all();
            throw std::runtime_error("fork: " + e);
        }
        if (pid_ == 0) {
            // Only async-signal-safe calls until exec.
            ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(127);
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            ::execvp(cargv[0], cargv.data());
            const char msg[] = "lab/process.hpp: exec failed\n";
            (void)!::write(2, msg, sizeof(msg) - 1);
            ::_exit(127);
        }
        ::setpgid(pid_, pid_); // also here: no race with kill(-pid)
        ::close(out[1]);
        ::close(err[1]);
        reader_ = std::thread([this, o = out[0], e = err[0]] { read_loop(o, e); });
    }
    ~Process() {
        if (!status_) {
            ::kill(-pid_, SIGKILL);
            ::kill(pid_, SIGKILL);
            int st;
            while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
            }
        }
        (void)!::write(stop_[1], "x", 1);
        reader_.join();
        ::close(stop_[0]);
        ::close(stop_[1]);
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& cmdline() const { return cmdline_; }

    // Sends sig to the child's process group.
    void signal(int sig) const {
        if (!status_)
            ::kill(-pid_, sig);
    }

    // Exit status (128 + signal when killed), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        wait_until([this] { return poll_exit(); }, timeout, 2ms);
        return status_;
    }
    bool running() { return !poll_exit(); }

    // The first stdout line containing needle, waiting up to timeout.
    std::optional<std::string> wait_for_line(std::string_view needle, std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu_);
        std::optional<std::string> found;
        cv_.wait_for(lk, timeout, [&] {
            std::size_t start = 0;
            for (std::size_t nl; (nl = out_.find('\n', start)) != std::string::npos; start = nl + 1) {
                std::string_view line(out_.data() + start, nl - start);
                if (line.find(needle) != std::string_view::npos) {
                    found = std::string(line);
                    return true;
                }
            }
            return out_eof_;
        });
        return found;
    }

    std::string out() const {
        std::lock_guard lk(mu_);
        return out_;
    }
    std::string err() const {
        std::lock_guard lk(mu_);
        return err_;
    }

private:
    bool poll_exit() {
        if (status_)
            return true;
        int st;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_)
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_.has_value();
    }

    // Reads both pipes until EOF or stop (a grandchild may hold them open).
    void read_loop(int o, int e) {
        pollfd fds[3] = {{o, POLLIN, 0}, {e, POLLIN, 0}, {stop_[0], POLLIN, 0}};
        int open = 2;
        char buf[4096];
        while (open > 0 && ::poll(fds, 3, -1) >= 0 && !(fds[2].revents & POLLIN)) {
            for (int i = 0; i < 2; i++) {
                if (!fds[i].revents)
                    continue;
                ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
                std::lock_guard lk(mu_);
                if (n > 0) {
                    (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
                } else {
                    fds[i].fd = -1;
                    open--;
                    if (i == 0)
                        out_eof_ = true;
                }
                cv_.notify_all();
            }
        }
        {
            std::lock_guard lk(mu_);
            out_eof_ = true;
        }
        cv_.notify_all();
        ::close(o);
        ::close(e);
    }

    pid_t pid_ = -1;
    std::string cmdline_;
    std::optional<int> status_;
    int stop_[2] = {-1, -1};
    std::thread reader_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::string out_, err_;
    bool out_eof_ = false;
};

} // namespace pdtt::test
