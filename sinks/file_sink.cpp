// Per-user log files in the original pdtt_xdp_user report format.
//
// The log directory may be shared with the users being accounted (the README's
// own -l /tmp/traffic), so every name in it is hostile until checked: files
// are opened relative to a directory fd, never follow a link, never block
// (a FIFO), and are written only when they are regular files of our own
// with one link. Anything else is refused, said once, counted, and tried
// again at the next report.
#include "errors.hpp"
#include "factory.hpp"
#include "fd.hpp"
#include "format.hpp"
#include "log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <list>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace pdtt {

namespace {

constexpr int kOpenFlags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

// Group adm, where it exists: log readers are in it.
std::optional<gid_t> adm_gid() {
    struct group gr {};
    struct group* found = nullptr;
    std::string buf(16384, '\0');
    if (getgrnam_r("adm", &gr, buf.data(), buf.size(), &found) != 0 || !found)
        return std::nullopt;
    return found->gr_gid;
}

// Why st is not a file we may write into, or "" when it is one.
std::string refusal(const struct stat& st) {
    if (S_ISLNK(st.st_mode))
        return "it is a symbolic link";
    if (S_ISFIFO(st.st_mode))
        return "it is a FIFO";
    if (S_ISDIR(st.st_mode))
        return "it is a directory";
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        return "it is a device";
    if (S_ISSOCK(st.st_mode))
        return "it is a socket";
    if (!S_ISREG(st.st_mode))
        return "it is not a regular file";
    if (st.st_uid != geteuid())
        return "it is owned by uid " + std::to_string(st.st_uid) + ", not by the agent's uid " +
               std::to_string(geteuid());
    if (st.st_nlink != 1)
        return "it has " + std::to_string(st.st_nlink) + " hard links";
    return {};
}

class FileSink : public Sink {
public:
    FileSink(const std::string& prefix, std::size_t max_open) : max_open_(max_open ? max_open : 1), adm_(adm_gid()) {
        auto slash = prefix.rfind('/');
        dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : prefix.substr(0, slash);
        base_ = slash == std::string::npos ? prefix : prefix.substr(slash + 1);
        struct stat st {};
        if (stat(dir_.c_str(), &st) != 0)
            throw Error(kExitUsage, "log directory " + dir_ + " does not exist (create it or use -l PREFIX)");
        if (!S_ISDIR(st.st_mode))
            throw Error(kExitUsage, "log directory " + dir_ + " is not a directory (use -l PREFIX)");
        if (access(dir_.c_str(), W_OK) != 0)
            throw Error(kExitUsage,
                        "log directory " + dir_ + " is not writable (fix its permissions or use -l PREFIX)");
        open_dir();
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

        std::string file = base_ + "-" + sanitize_username(r.user) + ".log";
        int fd = file_for(file);
        if (fd < 0) {
            ++errors_;
            return;
        }
        if (!append(fd, text)) {
            ++errors_;
            close_file(file); // reopened, and checked again, on the next report
        }
    }

    void reopen() override {
        lru_.clear();
        index_.clear();
    }

    uint64_t errors() const override { return errors_; }

private:
    using Lru = std::list<std::pair<std::string, Fd>>; // most recently used first

    void open_dir() {
        Fd d(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (d)
            dir_fd_ = std::move(d);
    }

    // An open fd for file, or -1 after refusing it.
    int file_for(const std::string& file) {
        if (auto it = index_.find(file); it != index_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second);
            return it->second->second.get();
        }
        std::string why;
        Fd fd = open_checked(file, why);
        if (!fd) {
            // One line per file while it stays refused, not one per report.
            if (refused_.insert(file).second)
                log::warn("log file " + path_of(file) + " refused: " + why +
                          " (reports for it are counted as sink errors until it is fixed)");
            return -1;
        }
        if (refused_.erase(file))
            log::info("log file " + path_of(file) + " is writable again");
        // A busy host has thousands of users: keep only the recent ones open.
        while (lru_.size() >= max_open_) {
            index_.erase(lru_.back().first);
            lru_.pop_back();
        }
        lru_.emplace_front(file, std::move(fd));
        index_[file] = lru_.begin();
        return lru_.front().second.get();
    }

    void close_file(const std::string& file) {
        if (auto it = index_.find(file); it != index_.end()) {
            lru_.erase(it->second);
            index_.erase(it);
        }
    }

    std::string path_of(const std::string& file) const { return (dir_ == "/" ? "" : dir_) + "/" + file; }

    // Opens an existing log of ours, or creates it; sets why otherwise.
    Fd open_checked(const std::string& file, std::string& why) {
        for (int attempt = 0; attempt < 3; ++attempt) {
            if (!dir_fd_) {
                open_dir();
                if (!dir_fd_) {
                    why = "its directory cannot be opened: " + std::string(std::strerror(errno));
                    return {};
                }
            }
            struct stat st {};
            // Looked at first, so a device or FIFO is never even opened.
            if (fstatat(dir_fd_.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (why = refusal(st); !why.empty())
                    return {};
                Fd fd(openat(dir_fd_.get(), file.c_str(), kOpenFlags));
                if (!fd && errno == ENOENT)
                    continue; // removed in between: look again
                if (!fd) {
                    why = open_error(errno);
                    return {};
                }
                // What was opened, which may have been swapped in since.
                if (fstat(fd.get(), &st) != 0 || !(why = refusal(st)).empty()) {
                    if (why.empty())
                        why = std::strerror(errno);
                    return {};
                }
                return fd;
            }
            if (errno != ENOENT) {
                why = std::strerror(errno);
                return {};
            }
            Fd fd(openat(dir_fd_.get(), file.c_str(), kOpenFlags | O_CREAT | O_EXCL, 0640));
            if (!fd && errno == EEXIST)
                continue; // made in between: check what it is
            if (!fd && errno == ENOENT && dir_removed()) {
                dir_fd_.reset(); // the directory was removed: its path may be made again
                continue;
            }
            if (!fd) {
                why = std::strerror(errno);
                return {};
            }
            // Exactly 0640 whatever the umask; readable by group adm.
            bool ok = fchmod(fd.get(), 0640) == 0 && (!adm_ || fchown(fd.get(), static_cast<uid_t>(-1), *adm_) == 0);
            if (!ok && !adm_warned_) {
                adm_warned_ = true;
                log::warn("log file " + path_of(file) +
                          ": cannot give it mode 0640, group adm: " + std::strerror(errno));
            }
            return fd;
        }
        why = "it keeps changing while being opened";
        return {};
    }

    bool dir_removed() const {
        struct stat st {};
        return fstat(dir_fd_.get(), &st) == 0 && st.st_nlink == 0;
    }

    static std::string open_error(int err) {
        if (err == ELOOP)
            return "it is a symbolic link";
        if (err == ENXIO)
            return "it is a FIFO";
        return std::strerror(err);
    }

    // One write() for the whole report, so a reader never sees half of one;
    // a short write is completed, or the file is cut back to where it was.
    static bool append(int fd, const std::string& text) {
        struct stat st {};
        if (fstat(fd, &st) != 0)
            return false;
        size_t done = 0;
        while (done < text.size()) {
            ssize_t n = write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += static_cast<size_t>(n);
        }
        if (done == text.size())
            return true;
        int err = errno;
        if (done > 0 && ftruncate(fd, st.st_size) != 0)
            log::warn("cannot cut back a half-written report: " + std::string(std::strerror(errno)));
        errno = err;
        return false;
    }

    std::string dir_;
    std::string base_;
    Fd dir_fd_;
    std::size_t max_open_;
    std::optional<gid_t> adm_;
    bool adm_warned_ = false;
    Lru lru_;
    std::unordered_map<std::string, Lru::iterator> index_; // file name -> its place in lru_
    std::unordered_set<std::string> refused_;              // said once, until it is fixed
    uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_file_sink(const std::string& prefix, std::size_t max_open) {
    return std::make_unique<FileSink>(prefix, max_open);
}

} // namespace pdtt
