// The cgroup id resolver on the real hierarchies: cgroup2 and Slurm's v1
// freezer layout, by file handle and by walk, checked against the path the
// kernel itself reports for a process placed in the cgroup. Needs root.
#define BOOST_TEST_MODULE cgroups_root
#include <boost/test/unit_test.hpp>

#include "cgroups.hpp"

#include <linux/capability.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace pdtt;
using namespace std::chrono_literals;

namespace {

// Directories made below a mount, removed deepest first however the test
// ends: the list is a member, so a failed mkdir in the constructor still
// removes the ones made before it.
class CgroupDirs {
public:
    CgroupDirs(const std::string& mount, const std::string& rel) {
        for (size_t pos = 1; pos <= rel.size(); ++pos) {
            if (pos != rel.size() && rel[pos] != '/')
                continue;
            std::string p = mount + rel.substr(0, pos);
            if (::mkdir(p.c_str(), 0755) != 0)
                BOOST_FAIL("mkdir " << p << ": " << std::strerror(errno));
            made_.dirs.push_back(p);
        }
    }
    const std::string& deepest() const { return made_.dirs.back(); }
    uint64_t id() const {
        struct stat st {};
        BOOST_REQUIRE(::stat(deepest().c_str(), &st) == 0);
        return st.st_ino;
    }

private:
    struct Made {
        std::vector<std::string> dirs;
        Made() = default;
        Made(const Made&) = delete;
        Made& operator=(const Made&) = delete;
        ~Made() {
            // rmdir of a cgroup is EBUSY until its last task is gone.
            for (; !dirs.empty(); dirs.pop_back())
                for (int i = 0; i < 200 && ::rmdir(dirs.back().c_str()) != 0 && errno == EBUSY; ++i)
                    std::this_thread::sleep_for(5ms);
        }
    } made_;
};

// A child that waits to be killed, reaped whatever happens.
class Child {
public:
    Child() : pid_(::fork()) {
        if (pid_ == 0) {
            for (;;)
                ::pause();
        }
        BOOST_REQUIRE(pid_ > 0);
    }
    ~Child() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.close();
    BOOST_REQUIRE_MESSAGE(out.good(), "write " << path);
}

// The path /proc/PID/cgroup gives for the hierarchy whose line starts with `prefix`.
std::string proc_cgroup(pid_t pid, const std::string& prefix) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/cgroup"));
    for (std::string l; std::getline(in, l);)
        if (l.rfind(prefix, 0) == 0)
            return l.substr(prefix.size());
    return {};
}

bool fs_magic(const std::string& path, long magic) {
    struct statfs s {};
    return ::statfs(path.c_str(), &s) == 0 && long(s.f_type) == magic;
}

CgroupResolver::Options walking() {
    CgroupResolver::Options o;
    o.use_handles = false;
    return o;
}

CgroupInfoPtr wait_for(CgroupResolver& r, uint64_t id) {
    for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;) {
        r.poll();
        if (CgroupInfoPtr i = r.lookup(id))
            return i;
        std::this_thread::sleep_for(1ms);
    }
    return nullptr;
}

const std::string kTest = "/pdtt-test-" + std::to_string(::getpid());

} // namespace

BOOST_AUTO_TEST_CASE(cgroup2_ids_resolve_by_handle_to_the_kernels_path) {
    std::optional<CgroupMount> m = find_cgroup2_mount();
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(fs_magic(m->mount_point, CGROUP2_SUPER_MAGIC));
    BOOST_TEST_MESSAGE("cgroup2 at " << m->mount_point);

    const std::string rel = kTest + "/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0";
    CgroupDirs dirs(m->mount_point, rel);
    Child child;
    write_file(dirs.deepest() + "/cgroup.procs", std::to_string(child.pid()));
    BOOST_TEST(proc_cgroup(child.pid(), "0::") == rel);

    CgroupResolver r(*m);
    BOOST_TEST_REQUIRE(r.stats().handles);
    CgroupInfoPtr i = r.lookup(dirs.id()); // at once: no pending state with handles
    BOOST_TEST_REQUIRE(i);
    BOOST_TEST(i->path() == rel);
    BOOST_TEST(i->job().value_or("") == "4242");
    BOOST_TEST(i->step().value_or("") == "0");
    BOOST_TEST(r.lookup(1)->path() == "/"); // the root cgroup's id
    BOOST_TEST(r.stats().walks == 0u);
}

BOOST_AUTO_TEST_CASE(cgroup2_ids_resolve_by_walk_too) {
    std::optional<CgroupMount> m = find_cgroup2_mount();
    BOOST_TEST_REQUIRE(m.has_value());
    const std::string rel = kTest + "/system.slice/slurmstepd.scope/job_4243/step_batch";
    CgroupDirs dirs(m->mount_point, rel);
    CgroupResolver r(*m, walking());
    BOOST_TEST(!r.stats().handles);
    BOOST_TEST(!r.lookup(dirs.id()));
    CgroupInfoPtr i = wait_for(r, dirs.id());
    BOOST_TEST_REQUIRE(i);
    BOOST_TEST(i->path() == rel);
    BOOST_TEST(i->step().value_or("") == "batch");
}

BOOST_AUTO_TEST_CASE(slurm_v1_freezer_ids_resolve_both_ways) {
    std::optional<CgroupMount> m = find_cgroup1_mount("freezer");
    if (!m) {
        BOOST_TEST_MESSAGE("no v1 freezer hierarchy here: skipped");
        return;
    }
    BOOST_TEST(fs_magic(m->mount_point, CGROUP_SUPER_MAGIC));
    BOOST_TEST_REQUIRE(m->hierarchy_id > 0);
    const std::string prefix = std::to_string(m->hierarchy_id) + ":freezer:";

    const std::string rel = kTest + "/slurm/uid_1000/job_77/step_0";
    CgroupDirs dirs(m->mount_point, rel);
    Child child;
    write_file(dirs.deepest() + "/tasks", std::to_string(child.pid()));
    BOOST_TEST(proc_cgroup(child.pid(), prefix) == rel);

    CgroupResolver byh(*m);
    BOOST_TEST(byh.stats().handles);
    CgroupInfoPtr i = byh.lookup(dirs.id());
    BOOST_TEST_REQUIRE(i);
    BOOST_TEST(i->path() == rel);
    BOOST_TEST(i->job().value_or("") == "77");
    BOOST_TEST(i->step().value_or("") == "0");

    CgroupResolver byw(*m, walking());
    byw.lookup(dirs.id());
    i = wait_for(byw, dirs.id());
    BOOST_TEST_REQUIRE(i);
    BOOST_TEST(i->path() == rel);
}

namespace {

// What the agent does when it sheds capabilities after attaching.
bool drop_dac_read_search() {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2]{};
    if (::syscall(SYS_capget, &h, d) != 0)
        return false;
    d[CAP_DAC_READ_SEARCH / 32].effective &= ~(1u << (CAP_DAC_READ_SEARCH % 32));
    d[CAP_DAC_READ_SEARCH / 32].permitted &= ~(1u << (CAP_DAC_READ_SEARCH % 32));
    return ::syscall(SYS_capset, &h, d) == 0;
}

} // namespace

BOOST_AUTO_TEST_CASE(without_cap_dac_read_search_the_walk_takes_over) {
    std::optional<CgroupMount> m = find_cgroup2_mount();
    BOOST_TEST_REQUIRE(m.has_value());
    const std::string rel = kTest + "/system.slice/slurmstepd.scope/job_8/step_extern";
    CgroupDirs dirs(m->mount_point, rel);
    uint64_t id = dirs.id();
    // In a child, so the test process keeps its capabilities.
    pid_t pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        {
            CgroupResolver r(*m);
            bad |= r.stats().handles ? 0 : 1;
            bad |= drop_dac_read_search() ? 0 : 2;
            bad |= r.lookup(id) ? 4 : 0; // EPERM now: pending for the walk, not an answer
            CgroupInfoPtr i = wait_for(r, id);
            bad |= i && i->path() == rel && i->step().value_or("") == "extern" ? 0 : 8;
            bad |= r.stats().handles ? 16 : 0;
            CgroupResolver later(*m);
            bad |= later.stats().handles ? 32 : 0;
        }
        ::_exit(bad);
    }
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0, "failed checks, as bits: " << WEXITSTATUS(status));
}

BOOST_AUTO_TEST_CASE(a_job_that_ended_keeps_its_path_and_one_never_seen_is_counted) {
    std::optional<CgroupMount> m = find_cgroup2_mount();
    BOOST_TEST_REQUIRE(m.has_value());
    CgroupResolver r(*m);
    const std::string seen_rel = kTest + "/system.slice/slurmstepd.scope/job_5/step_0";
    uint64_t seen, never;
    {
        CgroupDirs seen_dirs(m->mount_point, seen_rel);
        seen = seen_dirs.id();
        BOOST_TEST_REQUIRE(r.lookup(seen));
        CgroupDirs never_dirs(m->mount_point, kTest + "-b/job_6");
        never = never_dirs.id();
    }
    BOOST_TEST(r.lookup(seen)->path() == seen_rel);
    CgroupInfoPtr gone = r.lookup(never);
    BOOST_TEST_REQUIRE(gone);
    BOOST_TEST(!gone->resolved());
    BOOST_TEST(r.stats().unresolved == 1u);

    // The walk finds nothing either, and says so through poll().
    CgroupResolver w(*m, walking());
    BOOST_TEST(!w.lookup(never));
    CgroupInfoPtr gone2 = wait_for(w, never);
    BOOST_TEST_REQUIRE(gone2);
    BOOST_TEST(!gone2->resolved());
    BOOST_TEST(w.stats().unresolved == 1u);
}

BOOST_AUTO_TEST_CASE(handle_and_walk_cost_for_information) {
    std::optional<CgroupMount> m = find_cgroup2_mount();
    BOOST_TEST_REQUIRE(m.has_value());
    std::vector<std::unique_ptr<CgroupDirs>> dirs;
    std::vector<uint64_t> ids;
    for (int j = 0; j < 50; ++j) {
        std::string rel =
            kTest + "-" + std::to_string(j) + "/slurmstepd.scope/job_" + std::to_string(j + 1) + "/step_0";
        dirs.push_back(std::make_unique<CgroupDirs>(m->mount_point, rel));
        ids.push_back(dirs.back()->id());
    }
    auto t0 = std::chrono::steady_clock::now();
    {
        CgroupResolver r(*m);
        for (uint64_t id : ids)
            BOOST_TEST_REQUIRE(r.lookup(id)->resolved());
    }
    auto t1 = std::chrono::steady_clock::now();
    size_t walks = 0;
    {
        CgroupResolver r(*m, walking());
        // One id at a time, as new jobs appear: one walk each.
        for (uint64_t id : ids) {
            r.lookup(id);
            BOOST_TEST_REQUIRE(wait_for(r, id)->resolved());
        }
        walks = r.stats().walks;
    }
    auto t2 = std::chrono::steady_clock::now();
    auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
    BOOST_TEST_MESSAGE("50 new cgroups: by handle " << us(t1 - t0) / 50 << " us each, by walk " << us(t2 - t1) / 50
                                                    << " us each (" << walks << " walks)");
    // Removed in reverse, deepest first within each.
    while (!dirs.empty())
        dirs.pop_back();
}
