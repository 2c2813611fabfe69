// Per-user log files in the original pdtt_xdp_user report format.
#include "errors.hpp"
#include "factory.hpp"
#include "format.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace pdtt {

namespace {

class FileSink : public Sink {
public:
    explicit FileSink(std::string prefix) : prefix_(std::move(prefix)) {
        auto slash = prefix_.rfind('/');
        std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : prefix_.substr(0, slash);
        struct stat st{};
        if (stat(dir.c_str(), &st) != 0)
            throw Error(kExitUsage, "log directory " + dir +
                                        " does not exist (create it or use -l PREFIX)");
        if (!S_ISDIR(st.st_mode))
            throw Error(kExitUsage, "log directory " + dir +
                                        " is not a directory (use -l PREFIX)");
        if (access(dir.c_str(), W_OK) != 0)
            throw Error(kExitUsage, "log directory " + dir +
                                        " is not writable (fix its permissions or use -l PREFIX)");
    }

    ~FileSink() override { reopen(); }

    void user_report(const UserReport& r) override {
        std::string text = "=== Network Statistics Report [" + local_datetime(r.ts) + "] ===\n";
        for (const auto& c : r.connections) {
            text += "Connection: " + c.local + " -> " + c.remote + "\n";
            text += "  TX: " + std::to_string(c.tx_bytes) + " bytes | RX: " + std::to_string(c.rx_bytes) +
                    " bytes | Total: " + std::to_string(c.tx_bytes + c.rx_bytes) + " bytes\n";
            text += "---\n";
        }
        text += "Total traffic: " + std::to_string(r.tx_bytes + r.rx_bytes) + " bytes\n";

        std::string name = sanitize_username(r.user);
        auto it = fds_.find(name);
        if (it == fds_.end()) {
            std::string path = prefix_ + "-" + name + ".log";
            // O_NOFOLLOW: a planted symlink must not redirect root's writes.
            int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
            if (fd < 0) {
                ++errors_;
                return;
            }
            it = fds_.emplace(name, fd).first;
        }
        if (!write_all(it->second, text)) {
            ++errors_;
            close(it->second);  // reopened on the next report
            fds_.erase(it);
        }
    }

    void reopen() override {
        for (auto& [name, fd] : fds_)
            close(fd);
        fds_.clear();
    }

    uint64_t errors() const override { return errors_; }

private:
    static bool write_all(int fd, const std::string& text) {
        size_t done = 0;
        while (done < text.size()) {
            ssize_t n = write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return false;
            done += static_cast<size_t>(n);
        }
        return true;
    }

    std::string prefix_;
    std::unordered_map<std::string, int> fds_;  // sanitized user name -> fd
    uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_file_sink(const std::string& prefix) {
    return std::make_unique<FileSink>(prefix);
}

} // namespace pdtt
