// cgroup ids (what the kernel programs read for the task that moves a flow's
// bytes) to cgroup paths and Slurm jobs (docs/records.md: cgroup, job, step). A cgroup's id is the
// inode number of its directory in the hierarchy's mount, and also its file
// handle, so with CAP_DAC_READ_SEARCH open_by_handle_at() resolves one in a
// few microseconds; without it a worker thread walks the mount.
#pragma once

#include "fd.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pdtt {

// Where a cgroup hierarchy is mounted.
struct CgroupMount {
    int version = 2;         // 1 or 2
    std::string mount_point; // "/sys/fs/cgroup/unified"
    std::string root;        // mountinfo's root: the mounted directory's own path in the hierarchy, "/" normally
    int hierarchy_id = 0;    // v1: the id bpf_task_get_cgroup1() takes; 0 for v2
};

// From the text of /proc/self/mountinfo: the cgroup2 mount, or the v1 mount
// that carries `controller` ("freezer", or "name=systemd" for a named one).
// A mount of the hierarchy's root beats a bind mount of a subtree.
std::optional<CgroupMount> parse_cgroup2_mount(std::string_view mountinfo);
std::optional<CgroupMount> parse_cgroup1_mount(std::string_view mountinfo, std::string_view controller);
// A v1 controller's hierarchy id from the text of /proc/cgroups; a named
// hierarchy is not listed there, so /proc/self/cgroup is asked next. 0 when
// neither knows it (not mounted, or bound to v2).
int parse_cgroup1_hierarchy_id(std::string_view proc_cgroups, std::string_view proc_self_cgroup,
                               std::string_view controller);

// The same from this process's /proc; nothing when there is no such mount.
std::optional<CgroupMount> find_cgroup2_mount();
std::optional<CgroupMount> find_cgroup1_mount(std::string_view controller);

// Whether a v1 mount's top directory holds Slurm's: "slurm", or
// "slurm_NODE" where several slurmd share a host.
bool has_slurm_dir(const CgroupMount& m);

// The hierarchy owners' cgroups are read from (--cgroup-v1 SETTING): "off"
// for v2; a v1 controller ("freezer", "memory", "name=NAME") for that
// hierarchy; "auto" for v1 freezer when Slurm has its directory there, else
// v2. Nothing when no cgroup hierarchy is mounted at all. Throws
// Error(kExitUsage) when the named controller is not mounted as v1.
std::optional<CgroupMount> choose_cgroup_mount(std::string_view setting);

// What one cgroup id resolved to. Immutable and shared: flows keep a
// shared_ptr, so eviction from the resolver's cache never pulls a path from
// under a flow, and many flows of one job share one copy of its path.
class CgroupInfo {
public:
    CgroupInfo(uint64_t id, std::string path);
    uint64_t id() const { return id_; }
    // Below the hierarchy root, "/" for the root; "" when it could not be resolved.
    const std::string& path() const { return path_; }
    bool resolved() const { return !path_.empty(); }
    // Views into path(): nothing when the path names no Slurm job (or step).
    std::optional<std::string_view> job() const;
    std::optional<std::string_view> step() const;

private:
    uint64_t id_;
    std::string path_;
    uint32_t job_off_ = 0, job_len_ = 0, step_off_ = 0, step_len_ = 0;
};
using CgroupInfoPtr = std::shared_ptr<const CgroupInfo>;

struct CgroupStats {
    uint64_t lookups = 0;    // lookup() calls
    uint64_t hits = 0;       // answered from the cache
    uint64_t resolved = 0;   // ids turned into a path
    uint64_t unresolved = 0; // ids that named no cgroup any more when asked (removed before anyone looked)
    uint64_t evicted = 0;    // cache entries dropped, oldest use first
    uint64_t dropped = 0;    // lookups not queued because too many were pending
    uint64_t walks = 0;      // directory walks done by the worker
    size_t entries = 0;      // cached now
    size_t pending = 0;      // queued or being resolved now
    bool handles = false;    // open_by_handle_at() in use
};

class CgroupResolver {
public:
    struct Options {
        size_t max_entries = 65536; // cache bound; about 250 bytes each, 16 MiB when full
        size_t max_pending = 4096;  // ids queued for the worker at once
        bool use_handles = true;    // false: always walk (tests)
        // Run on the worker thread when poll() has results, once per batch,
        // e.g. to post poll() to the event loop. May be empty: then poll().
        std::function<void()> wake;
    };
    using Result = std::function<void(const CgroupInfoPtr&)>;

    explicit CgroupResolver(CgroupMount mount);
    CgroupResolver(CgroupMount mount, Options opts);
    ~CgroupResolver();
    CgroupResolver(const CgroupResolver&) = delete;
    CgroupResolver& operator=(const CgroupResolver&) = delete;

    // Never blocks on the hierarchy. The cached answer (resolved or not), or
    // nullptr while the id is being resolved: poll() delivers it later. With
    // file handles a new id is resolved here at once (one syscall pair, no
    // walk) and never pending. Id 0 means "no cgroup" and is never resolved.
    // Owner thread only, like poll() and stats().
    CgroupInfoPtr lookup(uint64_t id);
    // Moves the worker's answers into the cache, calls on_result for each,
    // and returns how many there were.
    size_t poll(const Result& on_result = {});
    CgroupStats stats() const;
    const CgroupMount& mount() const { return mount_; }

    // The hierarchy path (below its root) of a path that open_by_handle_at()
    // or the walk found under mount_point; "" when it is not under it.
    static std::string hierarchy_path(const CgroupMount& m, std::string_view absolute);

private:
    enum class Handle { found, gone, unavailable };
    Handle by_handle(uint64_t id, std::string& path) const;
    CgroupInfoPtr remember(CgroupInfoPtr info);
    void enqueue(uint64_t id);
    void work();
    void walk(std::unordered_map<uint64_t, std::string>& wanted);

    CgroupMount mount_;
    Options opts_;
    Fd mount_fd_;
    bool handles_ = false;
    int handle_type_ = 0;

    // Owner thread: most recently used first.
    std::list<CgroupInfoPtr> lru_;
    std::unordered_map<uint64_t, std::list<CgroupInfoPtr>::iterator> cache_;
    std::unordered_set<uint64_t> pending_;
    CgroupStats stats_;

    // Shared with the worker.
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<uint64_t> requests_;
    std::vector<CgroupInfoPtr> answers_;
    uint64_t walks_ = 0;
    std::atomic<bool> stop_{false};
    std::thread worker_; // started by the first id that needs a walk
};

} // namespace pdtt
