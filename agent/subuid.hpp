// Subordinate uids (subuid(5)): a rootless container or Apptainer
// --fakeroot runs as uids of a range /etc/subuid gives one user, and pdtt
// reports them as that user, with the raw uid beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

namespace pdtt {

struct SubuidRange {
    uint32_t first = 0; // the range is [first, first + count)
    uint32_t count = 0;
    uint32_t owner = 0; // the uid of the user it belongs to
};

class SubuidMap {
public:
    using UidOf = std::function<std::optional<uint32_t>(const std::string& name)>;

    SubuidMap() = default;
    // subuid(5) text: "OWNER:FIRST:COUNT" per line, OWNER a user name or a
    // numeric uid; '#' comments and blank lines are skipped. A malformed
    // line, an unknown name, an empty or wrapping range, or one that
    // overlaps a range of an earlier line (the first one wins) is left out
    // with a line in `problems`.
    static SubuidMap parse(std::string_view text, const UidOf& uid_of, std::vector<std::string>* problems = nullptr);

    // The user a raw uid is reported as: its range's owner, else itself.
    uint32_t owner(uint32_t uid) const;
    const std::vector<SubuidRange>& ranges() const { return ranges_; } // sorted by first, disjoint
    bool empty() const { return ranges_.empty(); }

private:
    std::vector<SubuidRange> ranges_;
};

// A subuid file kept current: changed() is a stat, cheap enough for every
// tick; load() re-reads it (name lookups: off the event loop).
class SubuidFile {
public:
    explicit SubuidFile(std::string path) : path_(std::move(path)) {}
    // Whether the file differs (inode, size, mtime, or present) from what
    // the last load() read.
    bool changed() const;
    // Reads and parses the file; a missing file is an empty map.
    std::shared_ptr<const SubuidMap> load(const SubuidMap::UidOf& uid_of, std::vector<std::string>* problems);
    const std::string& path() const { return path_; }

private:
    struct Seen {
        bool exists = false;
        ino_t ino = 0;
        off_t size = 0;
        timespec mtime{};
    };
    static Seen stat_of(const std::string& path);
    std::string path_;
    mutable std::mutex mu_; // load() runs on a worker thread
    Seen seen_;
};

// getpwnam_r: the uid of a user name, nullopt when there is none.
std::optional<uint32_t> uid_of_user(const std::string& name);

// /etc/subuid watched from the event loop: a stat per poll, and a re-read
// (whose name lookups may wait on NSS) on a worker thread that may outlive
// the watcher.
class SubuidWatcher {
public:
    explicit SubuidWatcher(std::string path = "/etc/subuid", SubuidMap::UidOf uid_of = uid_of_user);
    // The first read, at start: waits for it.
    std::shared_ptr<const SubuidMap> load_now(std::vector<std::string>* problems);
    // Null, or the map of a re-read that finished since the last call (its
    // problems appended). Starts a re-read when the file changed.
    std::shared_ptr<const SubuidMap> poll(std::vector<std::string>* problems);
    const std::string& path() const;

private:
    struct Shared;
    std::shared_ptr<Shared> s_;
};

} // namespace pdtt
