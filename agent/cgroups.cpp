#include "cgroups.hpp"

#include "errors.hpp"
#include "slurm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pdtt {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (size_t pos = 0;;) {
        size_t end = s.find(sep, pos);
        out.push_back(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
        if (end == std::string_view::npos)
            return out;
        pos = end + 1;
    }
}

std::vector<std::string_view> lines(std::string_view s) {
    std::vector<std::string_view> out = split(s, '\n');
    if (!out.empty() && out.back().empty())
        out.pop_back();
    return out;
}

// mountinfo writes space, tab, newline and backslash in paths as \ooo.
std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

struct MountLine {
    std::string root, mount_point;
    std::string_view fstype, superopts;
};

// "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
std::optional<MountLine> parse_mount_line(std::string_view line) {
    std::vector<std::string_view> f = split(line, ' ');
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-")
        ++dash;
    if (f.size() < 6 || dash + 3 >= f.size())
        return std::nullopt;
    return MountLine{unescape(f[3]), unescape(f[4]), f[dash + 1], f[dash + 3]};
}

template <typename Match> std::optional<CgroupMount> pick_mount(std::string_view mountinfo, int version, Match match) {
    std::optional<CgroupMount> best;
    for (std::string_view l : lines(mountinfo)) {
        std::optional<MountLine> m = parse_mount_line(l);
        if (!m || !match(*m))
            continue;
        // The hierarchy's own root beats a bind mount of a subtree of it.
        if (!best || (best->root != "/" && m->root == "/"))
            best = CgroupMount{version, m->mount_point, m->root, 0};
    }
    return best;
}

std::string read_text(const char* path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool all_digits(std::string_view s) {
    if (s.empty() || s.size() > 9)
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return true;
}

std::string join_root(std::string_view root, std::string_view rel) {
    if (root.empty() || root == "/")
        return std::string(rel);
    std::string out(root);
    if (rel != "/")
        out += rel;
    return out;
}

constexpr std::string_view kDeleted = " (deleted)";

} // namespace

std::optional<CgroupMount> parse_cgroup2_mount(std::string_view mountinfo) {
    return pick_mount(mountinfo, 2, [](const MountLine& m) { return m.fstype == "cgroup2"; });
}

std::optional<CgroupMount> parse_cgroup1_mount(std::string_view mountinfo, std::string_view controller) {
    // Mount options share the list with the controllers.
    static constexpr std::string_view kNotControllers[] = {
        "rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "none", "all"};
    if (controller.empty() || (controller.find('=') != std::string_view::npos && controller.substr(0, 5) != "name=") ||
        controller == "name=")
        return std::nullopt;
    for (std::string_view o : kNotControllers)
        if (controller == o)
            return std::nullopt;
    return pick_mount(mountinfo, 1, [controller](const MountLine& m) {
        if (m.fstype != "cgroup")
            return false;
        for (std::string_view o : split(m.superopts, ','))
            if (o == controller)
                return true;
        return false;
    });
}

int parse_cgroup1_hierarchy_id(std::string_view proc_cgroups, std::string_view proc_self_cgroup,
                               std::string_view controller) {
    // "#subsys_name hierarchy num_cgroups enabled", tab-separated.
    for (std::string_view l : lines(proc_cgroups)) {
        std::vector<std::string_view> f;
        for (std::string_view w : split(l, '\t'))
            for (std::string_view x : split(w, ' '))
                if (!x.empty())
                    f.push_back(x);
        if (f.size() >= 2 && f[0] == controller && all_digits(f[1]) && std::stoi(std::string(f[1])) > 0)
            return std::stoi(std::string(f[1]));
    }
    // "ID:CONTROLLER[,CONTROLLER...]:PATH"; the path may hold ':' itself.
    for (std::string_view l : lines(proc_self_cgroup)) {
        size_t a = l.find(':');
        size_t b = a == std::string_view::npos ? a : l.find(':', a + 1);
        if (b == std::string_view::npos || !all_digits(l.substr(0, a)))
            continue;
        for (std::string_view c : split(l.substr(a + 1, b - a - 1), ','))
            if (c == controller && std::stoi(std::string(l.substr(0, a))) > 0)
                return std::stoi(std::string(l.substr(0, a)));
    }
    return 0;
}

std::optional<CgroupMount> find_cgroup2_mount() { return parse_cgroup2_mount(read_text("/proc/self/mountinfo")); }

std::optional<CgroupMount> find_cgroup1_mount(std::string_view controller) {
    std::optional<CgroupMount> m = parse_cgroup1_mount(read_text("/proc/self/mountinfo"), controller);
    if (m)
        m->hierarchy_id =
            parse_cgroup1_hierarchy_id(read_text("/proc/cgroups"), read_text("/proc/self/cgroup"), controller);
    return m;
}

bool has_slurm_dir(const CgroupMount& m) {
    DIR* d = ::opendir(m.mount_point.c_str());
    if (!d)
        return false;
    bool found = false;
    while (const dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (e->d_type == DT_DIR && (n == "slurm" || (n.substr(0, 6) == "slurm_" && n.size() > 6))) {
            found = true;
            break;
        }
    }
    ::closedir(d);
    return found;
}

std::optional<CgroupMount> choose_cgroup_mount(std::string_view setting) {
    if (setting == "off")
        return find_cgroup2_mount();
    if (setting == "auto") {
        std::optional<CgroupMount> v1 = find_cgroup1_mount("freezer");
        if (v1 && v1->hierarchy_id > 0 && has_slurm_dir(*v1))
            return v1;
        return find_cgroup2_mount();
    }
    std::optional<CgroupMount> v1 = find_cgroup1_mount(setting);
    if (!v1 || v1->hierarchy_id <= 0)
        throw Error(kExitUsage, "--cgroup-v1 " + std::string(setting) +
                                    ": no cgroup v1 hierarchy with that controller is mounted (see /proc/cgroups; "
                                    "'auto' or 'off' use cgroup v2)");
    return v1;
}

CgroupInfo::CgroupInfo(uint64_t id, std::string path) : id_(id), path_(std::move(path)) {
    if (std::optional<SlurmJob> j = parse_slurm_path(path_)) {
        job_off_ = uint32_t(j->job.data() - path_.data());
        job_len_ = uint32_t(j->job.size());
        if (!j->step.empty()) {
            step_off_ = uint32_t(j->step.data() - path_.data());
            step_len_ = uint32_t(j->step.size());
        }
    }
}

std::optional<std::string_view> CgroupInfo::job() const {
    if (job_len_ == 0)
        return std::nullopt;
    return std::string_view(path_).substr(job_off_, job_len_);
}

std::optional<std::string_view> CgroupInfo::step() const {
    if (step_len_ == 0)
        return std::nullopt;
    return std::string_view(path_).substr(step_off_, step_len_);
}

std::string CgroupResolver::hierarchy_path(const CgroupMount& m, std::string_view absolute) {
    std::string_view mp = m.mount_point;
    while (mp.size() > 1 && mp.back() == '/')
        mp.remove_suffix(1);
    std::string_view rel;
    if (absolute == mp)
        rel = "/";
    else if (mp == "/" && !absolute.empty() && absolute[0] == '/')
        rel = absolute;
    else if (absolute.size() > mp.size() && absolute.substr(0, mp.size()) == mp && absolute[mp.size()] == '/')
        rel = absolute.substr(mp.size());
    else
        return {};
    return join_root(m.root, rel);
}

CgroupResolver::CgroupResolver(CgroupMount mount) : CgroupResolver(std::move(mount), Options{}) {}

CgroupResolver::CgroupResolver(CgroupMount mount, Options opts) : mount_(std::move(mount)), opts_(std::move(opts)) {
    if (opts_.max_entries == 0)
        opts_.max_entries = 1;
    mount_fd_ = Fd(::open(mount_.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!mount_fd_)
        throw Error(kExitRuntime, "cannot open the cgroup mount " + mount_.mount_point + ": " + std::strerror(errno));
    if (!opts_.use_handles)
        return;
    // Handles work here when the mount's own root handle is its inode number
    // (kernfs: 8 bytes, the node id) and the kernel lets us open it.
    alignas(file_handle) unsigned char buf[sizeof(file_handle) + 128];
    auto* fh = reinterpret_cast<file_handle*>(buf);
    fh->handle_bytes = 128;
    int mount_id = 0;
    struct stat st {};
    if (::name_to_handle_at(mount_fd_.get(), "", fh, &mount_id, AT_EMPTY_PATH) != 0 ||
        ::fstat(mount_fd_.get(), &st) != 0 || fh->handle_bytes != sizeof(uint64_t))
        return;
    uint64_t root_id = 0;
    std::memcpy(&root_id, fh->f_handle, sizeof(root_id));
    if (root_id != uint64_t(st.st_ino))
        return;
    handle_type_ = fh->handle_type;
    handles_ = true;
    std::string root_path;
    if (by_handle(root_id, root_path) != Handle::found)
        handles_ = false;
}

CgroupResolver::~CgroupResolver() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable())
        worker_.join();
}

CgroupResolver::Handle CgroupResolver::by_handle(uint64_t id, std::string& path) const {
    alignas(file_handle) unsigned char buf[sizeof(file_handle) + sizeof(uint64_t)];
    auto* fh = reinterpret_cast<file_handle*>(buf);
    fh->handle_bytes = sizeof(uint64_t);
    fh->handle_type = handle_type_;
    std::memcpy(fh->f_handle, &id, sizeof(id));
    Fd fd(::open_by_handle_at(mount_fd_.get(), fh, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        // ESTALE: no such node any more; EACCES: outside this mount's subtree.
        if (errno == ESTALE || errno == ENOENT || errno == EACCES || errno == ENOTDIR)
            return Handle::gone;
        return Handle::unavailable;
    }
    char link[32];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd.get());
    std::string target(256, '\0');
    for (;;) {
        ssize_t n = ::readlink(link, target.data(), target.size());
        if (n < 0)
            return Handle::unavailable;
        if (size_t(n) < target.size()) {
            target.resize(size_t(n));
            break;
        }
        if (target.size() >= (1u << 20))
            return Handle::unavailable;
        target.resize(target.size() * 2);
    }
    // Removed between open and readlink: the path it had is the one we want,
    // unless " (deleted)" is really the end of its name.
    if (target.size() > kDeleted.size() &&
        std::string_view(target).substr(target.size() - kDeleted.size()) == kDeleted) {
        struct stat st {};
        if (::lstat(target.c_str(), &st) != 0 || uint64_t(st.st_ino) != id)
            target.resize(target.size() - kDeleted.size());
    }
    path = hierarchy_path(mount_, target);
    return path.empty() ? Handle::gone : Handle::found;
}

CgroupInfoPtr CgroupResolver::lookup(uint64_t id) {
    ++stats_.lookups;
    if (id == 0) {
        static const CgroupInfoPtr none = std::make_shared<const CgroupInfo>(0, std::string());
        return none;
    }
    if (auto it = cache_.find(id); it != cache_.end()) {
        ++stats_.hits;
        lru_.splice(lru_.begin(), lru_, it->second);
        return *it->second;
    }
    if (pending_.count(id))
        return nullptr;
    if (handles_) {
        std::string path;
        switch (by_handle(id, path)) {
        case Handle::found:
            ++stats_.resolved;
            return remember(std::make_shared<const CgroupInfo>(id, std::move(path)));
        case Handle::gone:
            ++stats_.unresolved;
            return remember(std::make_shared<const CgroupInfo>(id, std::string()));
        case Handle::unavailable:
            // Typically EPERM once CAP_DAC_READ_SEARCH is dropped: walk from now on.
            handles_ = false;
            break;
        }
    }
    if (pending_.size() >= opts_.max_pending) {
        ++stats_.dropped;
        return nullptr;
    }
    enqueue(id);
    return nullptr;
}

void CgroupResolver::enqueue(uint64_t id) {
    pending_.insert(id);
    {
        std::lock_guard<std::mutex> lk(mu_);
        requests_.push_back(id);
    }
    if (!worker_.joinable())
        worker_ = std::thread([this] { work(); });
    cv_.notify_one();
}

CgroupInfoPtr CgroupResolver::remember(CgroupInfoPtr info) {
    if (auto it = cache_.find(info->id()); it != cache_.end()) {
        lru_.erase(it->second);
        cache_.erase(it);
    }
    lru_.push_front(info);
    cache_[info->id()] = lru_.begin();
    while (cache_.size() > opts_.max_entries) {
        cache_.erase(lru_.back()->id());
        lru_.pop_back();
        ++stats_.evicted;
    }
    return info;
}

size_t CgroupResolver::poll(const Result& on_result) {
    std::vector<CgroupInfoPtr> got;
    {
        std::lock_guard<std::mutex> lk(mu_);
        got.swap(answers_);
        stats_.walks += walks_;
        walks_ = 0;
    }
    for (CgroupInfoPtr& info : got) {
        pending_.erase(info->id());
        ++(info->resolved() ? stats_.resolved : stats_.unresolved);
        remember(info);
        if (on_result)
            on_result(info);
    }
    return got.size();
}

CgroupStats CgroupResolver::stats() const {
    CgroupStats s = stats_;
    s.entries = cache_.size();
    s.pending = pending_.size();
    s.handles = handles_;
    return s;
}

void CgroupResolver::work() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return stop_ || !requests_.empty(); });
        if (stop_)
            return;
        // One walk answers every id asked for so far.
        std::unordered_map<uint64_t, std::string> wanted;
        for (uint64_t id : requests_)
            wanted.emplace(id, std::string());
        requests_.clear();
        lk.unlock();
        walk(wanted);
        std::vector<CgroupInfoPtr> out;
        out.reserve(wanted.size());
        for (auto& [id, rel] : wanted)
            out.push_back(
                std::make_shared<const CgroupInfo>(id, rel.empty() ? std::string() : join_root(mount_.root, rel)));
        lk.lock();
        if (stop_)
            return;
        bool was_empty = answers_.empty();
        answers_.insert(answers_.end(), out.begin(), out.end());
        ++walks_;
        if (was_empty && opts_.wake) {
            lk.unlock();
            opts_.wake();
            lk.lock();
        }
    }
}

void CgroupResolver::walk(std::unordered_map<uint64_t, std::string>& wanted) {
    size_t left = wanted.size();
    auto found = [&](uint64_t ino, const std::string& rel) {
        auto it = wanted.find(ino);
        if (it != wanted.end() && it->second.empty()) {
            it->second = rel;
            --left;
        }
    };
    struct stat st {};
    if (::fstat(mount_fd_.get(), &st) == 0)
        found(uint64_t(st.st_ino), "/");
    // Paths below the mount, "" for the mount itself; depth first.
    std::vector<std::string> todo{std::string()};
    while (!todo.empty() && left > 0 && !stop_) {
        std::string rel = std::move(todo.back());
        todo.pop_back();
        // Opened anew, never dup()ed: a dup shares the mount fd's directory offset.
        int fd = ::openat(mount_fd_.get(), rel.empty() ? "." : rel.c_str() + 1,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; // removed while we walked
        DIR* d = ::fdopendir(fd);
        if (!d) {
            ::close(fd);
            continue;
        }
        while (dirent* e = ::readdir(d)) {
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0)
                continue;
            bool dir = e->d_type == DT_DIR;
            if (e->d_type == DT_UNKNOWN) {
                struct stat cst {};
                dir = ::fstatat(::dirfd(d), e->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(cst.st_mode);
            }
            if (!dir)
                continue;
            std::string child = rel + "/" + e->d_name;
            found(uint64_t(e->d_ino), child);
            todo.push_back(std::move(child));
        }
        ::closedir(d);
    }
}

} // namespace pdtt
