// cgroup paths to Slurm jobs, cgroup mounts from /proc text, and the id
// resolver's cache and worker on a plain directory tree (no root needed:
// the walk only compares inode numbers).
#define BOOST_TEST_MODULE cgroups
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "cgroups.hpp"
#include "errors.hpp"
#include "slurm.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace pdtt;
using namespace std::chrono_literals;

namespace {

struct PathCase {
    const char* what;
    std::string path;
    std::optional<std::string> job;  // nullopt: not a Slurm path
    std::optional<std::string> step; // nullopt: no step
};

std::ostream& operator<<(std::ostream& o, const PathCase& c) { return o << c.what; }

const std::string kV2 = "/system.slice/slurmstepd.scope";

const PathCase kPaths[] = {
    // cgroup v2, as slurmstepd lays it out.
    {"v2 task of a numbered step", kV2 + "/job_4242/step_0/user/task_0", "4242", "0"},
    {"v2 batch step", kV2 + "/job_4242/step_batch/user/task_0", "4242", "batch"},
    {"v2 extern step", kV2 + "/job_4242/step_extern/user/task_special", "4242", "extern"},
    {"v2 interactive step", kV2 + "/job_4242/step_interactive", "4242", "interactive"},
    {"v2 slurmstepd's own cgroup", kV2 + "/job_4242/step_0/slurm", "4242", "0"},
    {"v2 heterogeneous job component", kV2 + "/job_4242/step_3+1/user", "4242", "3+1"},
    {"v2 job without step", kV2 + "/job_4242", "4242", std::nullopt},
    {"v2 job, child is not a step", kV2 + "/job_4242/user", "4242", std::nullopt},
    {"v2 multiple-slurmd scope", "/system.slice/node7_slurmstepd.scope/job_1/step_2", "1", "2"},
    {"v2 Slurm in a container", "/docker.slice/docker-ab12.scope/system.slice/slurmstepd.scope/job_9/step_0", "9", "0"},
    {"v2 largest job id", kV2 + "/job_4294967295/step_4294967295", "4294967295", "4294967295"},
    {"v2 trailing slash", kV2 + "/job_5/step_1/", "5", "1"},
    {"v2 doubled slashes", "//system.slice//slurmstepd.scope//job_5//step_1", "5", "1"},
    {"v2 stepd waiting area", kV2 + "/system", std::nullopt, std::nullopt},
    {"v2 scope itself", kV2, std::nullopt, std::nullopt},
    // cgroup v1, in Slurm's hierarchy.
    {"v1 step", "/slurm/uid_1000/job_77/step_0", "77", "0"},
    {"v1 task below the step", "/slurm/uid_1000/job_77/step_0/task_3", "77", "0"},
    {"v1 job without step", "/slurm/uid_1000/job_77", "77", std::nullopt},
    {"v1 batch step", "/slurm/uid_0/job_77/step_batch", "77", "batch"},
    {"v1 interactive step", "/slurm/uid_1000/job_77/step_interactive", "77", "interactive"},
    {"v1 heterogeneous job component", "/slurm/uid_1000/job_77/step_2+1/task_0", "77", "2+1"},
    {"v1 job below another controller's prefix", "/cpuset-root/slurm/uid_1000/job_77/step_4294967294", "77",
     "4294967294"},
    {"v1 uid with a leading zero", "/slurm/uid_01/job_77/step_0", std::nullopt, std::nullopt},
    {"v1 multiple-slurmd", "/slurm_node7/uid_1000/job_77/step_extern", "77", "extern"},
    {"v1 below a prefix", "/pdtt-test-1/slurm/uid_1000/job_77/step_0", "77", "0"},
    {"v1 no uid", "/slurm/job_77/step_0", std::nullopt, std::nullopt},
    {"v1 bad uid", "/slurm/uid_x/job_77/step_0", std::nullopt, std::nullopt},
    {"v1 uid only", "/slurm/uid_1000", std::nullopt, std::nullopt},
    // Not Slurm.
    {"login session", "/user.slice/user-1000.slice/session-3.scope", std::nullopt, std::nullopt},
    {"system service", "/system.slice/sshd.service", std::nullopt, std::nullopt},
    {"root", "/", std::nullopt, std::nullopt},
    {"empty", "", std::nullopt, std::nullopt},
    {"relative, non-numeric", "job_abc", std::nullopt, std::nullopt},
    {"relative", "system.slice/slurmstepd.scope/job_1", std::nullopt, std::nullopt},
    {"empty job id", "/job_/step_1", std::nullopt, std::nullopt},
    {"jobs_ is not job_", "/jobs_1", std::nullopt, std::nullopt},
    {"job outside Slurm's directory", "/job_4242/step_0", std::nullopt, std::nullopt},
    {"empty job id under scope", kV2 + "/job_/step_1", std::nullopt, std::nullopt},
    {"non-numeric job", kV2 + "/job_abc/step_0", std::nullopt, std::nullopt},
    {"job 0", kV2 + "/job_0", std::nullopt, std::nullopt},
    {"leading zero", kV2 + "/job_007", std::nullopt, std::nullopt},
    {"signed job", kV2 + "/job_+7", std::nullopt, std::nullopt},
    {"negative job", kV2 + "/job_-7", std::nullopt, std::nullopt},
    {"job id beyond 32 bits", kV2 + "/job_4294967296/step_0", std::nullopt, std::nullopt},
    {"array job notation is not a cgroup name", kV2 + "/job_12_3/step_0", std::nullopt, std::nullopt},
    {"bare _slurmstepd.scope", "/system.slice/_slurmstepd.scope/job_1", std::nullopt, std::nullopt},
    {"bare slurm_", "/slurm_/uid_1/job_1", std::nullopt, std::nullopt},
    // Steps that are not Slurm's: the job stands, the step is null.
    {"unknown step name", kV2 + "/job_1/step_foo", "1", std::nullopt},
    {"empty step", kV2 + "/job_1/step_", "1", std::nullopt},
    {"leading zero step", kV2 + "/job_1/step_01", "1", std::nullopt},
    {"half a het step", kV2 + "/job_1/step_1+", "1", std::nullopt},
    {"het step without step", kV2 + "/job_1/step_+1", "1", std::nullopt},
    {"step beyond 32 bits", kV2 + "/job_1/step_4294967296", "1", std::nullopt},
    // Hostile: a user's own subtree, nesting, dots, control bytes, UTF-8.
    {"under a systemd user manager",
     "/user.slice/user-1000.slice/user@1000.service/app.slice/slurmstepd.scope/job_1/step_0", std::nullopt,
     std::nullopt},
    {"v1 layout under a user manager", "/user.slice/user-1000.slice/user@1000.service/slurm/uid_0/job_1", std::nullopt,
     std::nullopt},
    {"outermost job wins", kV2 + "/job_5/step_0/user/task_0/slurmstepd.scope/job_6/step_1", "5", "0"},
    {"dot-dot", kV2 + "/job_1/../job_2/step_0", std::nullopt, std::nullopt},
    {"trailing dot-dot", kV2 + "/job_1/step_0/..", std::nullopt, std::nullopt},
    {"dot", "/./slurm/uid_1/job_2", std::nullopt, std::nullopt},
    {"newline in job", kV2 + "/job_1\n/step_0", std::nullopt, std::nullopt},
    {"newline in step", kV2 + "/job_1/step_0\n", "1", std::nullopt},
    {"control byte", kV2 + "/job_\x01", std::nullopt, std::nullopt},
    {"NUL byte", kV2 + std::string("/job_1\0/step_0", 14), std::nullopt, std::nullopt},
    {"NUL before the scope", std::string("/a\0b", 4) + kV2 + "/job_3/step_0", "3", "0"},
    {"fullwidth digits", kV2 + "/job_\xef\xbc\x94\xef\xbc\x92", std::nullopt, std::nullopt},
    {"fullwidth step digit", kV2 + "/job_42/step_\xef\xbc\x90", "42", std::nullopt},
    {"UTF-8 elsewhere", "/syst\xc3\xa8me.slice/slurmstepd.scope/job_42/step_0", "42", "0"},
    {"invalid UTF-8 elsewhere", "/\xff\xfe/slurm/uid_1/job_42/step_0", "42", "0"},
    {"spaces", kV2 + "/job_1 /step_0", std::nullopt, std::nullopt},
};

} // namespace

BOOST_DATA_TEST_CASE(slurm_path_gives_job_and_step, boost::unit_test::data::make(kPaths), c) {
    std::optional<SlurmJob> j = parse_slurm_path(c.path);
    BOOST_TEST_REQUIRE(j.has_value() == c.job.has_value(), c.what << ": job found is " << j.has_value());
    if (!j)
        return;
    BOOST_TEST(std::string(j->job) == *c.job, c.what);
    BOOST_TEST(std::string(j->step) == c.step.value_or(""), c.what);
    // Views into the argument, not copies.
    BOOST_TEST((j->job.data() >= c.path.data() && j->job.data() < c.path.data() + c.path.size()));
}

BOOST_AUTO_TEST_CASE(very_long_paths_parse_in_linear_time) {
    // 1 MiB of components before the job, then 100,000 Slurm-looking anchors
    // that lead nowhere: both must come back at once, not after a quadratic scan.
    std::string deep;
    while (deep.size() < (1u << 20))
        deep += "/a";
    auto t0 = std::chrono::steady_clock::now();
    const std::string path = deep + kV2 + "/job_31/step_2"; // outlives the views
    std::optional<SlurmJob> j = parse_slurm_path(path);
    BOOST_TEST_REQUIRE(j.has_value());
    BOOST_TEST(j->job == "31");
    BOOST_TEST(j->step == "2");

    std::string anchors;
    for (int i = 0; i < 100000; ++i)
        anchors += "/slurmstepd.scope/slurm/uid_1";
    BOOST_TEST(!parse_slurm_path(anchors).has_value());
    BOOST_TEST(!parse_slurm_path(std::string(1 << 20, '/')).has_value());
    BOOST_TEST(!parse_slurm_path(kV2 + "/job_" + std::string(100000, '9')).has_value());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST_MESSAGE("long paths parsed in " << ms << " ms");
}

// This machine's mountinfo: v1 controllers beside a cgroup2 at .../unified.
const char* const kHybrid =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 master:1 - cgroup2 cgroup2 rw,nsdelegate\n";

BOOST_AUTO_TEST_CASE(mountinfo_gives_the_cgroup2_mount) {
    std::optional<CgroupMount> m = parse_cgroup2_mount(kHybrid);
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->version == 2);
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/unified");
    BOOST_TEST(m->root == "/");

    m = parse_cgroup2_mount("25 22 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup");

    BOOST_TEST(!parse_cgroup2_mount("37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n"));
    BOOST_TEST(!parse_cgroup2_mount(""));
    BOOST_TEST(!parse_cgroup2_mount("garbage\n1 2 3 4 5 6 7 8\n41 31 0:38 / /x rw - cgroup2\n"));
}

BOOST_AUTO_TEST_CASE(mountinfo_escapes_and_bind_mounts) {
    // A bind mount of a subtree listed first; the hierarchy's root wins.
    const char* text = "50 31 0:38 /machine.slice /srv/cg rw - cgroup2 cgroup2 rw\n"
                       "51 31 0:38 / /sys/fs/cgroup/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
    std::optional<CgroupMount> m = parse_cgroup2_mount(text);
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/my cgroup");
    BOOST_TEST(m->root == "/");

    m = parse_cgroup2_mount("50 31 0:38 /machine.slice/a\\134b /srv/cg rw - cgroup2 cgroup2 rw\n");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->root == "/machine.slice/a\\b");
}

BOOST_AUTO_TEST_CASE(mountinfo_gives_a_v1_mount_by_controller) {
    std::optional<CgroupMount> m = parse_cgroup1_mount(kHybrid, "freezer");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->version == 1);
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/freezer");

    // Co-mounted controllers match each by its whole name.
    m = parse_cgroup1_mount(kHybrid, "cpuacct");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/cpu,cpuacct");
    BOOST_TEST(parse_cgroup1_mount(kHybrid, "cpu")->mount_point == "/sys/fs/cgroup/cpu,cpuacct");
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "cpuac"));

    m = parse_cgroup1_mount(kHybrid, "name=systemd");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/systemd");

    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "memory"));
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "rw")); // a mount option, not a controller
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "xattr"));
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "name="));
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, ""));
    BOOST_TEST(!parse_cgroup1_mount(kHybrid, "tmpfs"));
}

BOOST_AUTO_TEST_CASE(v1_hierarchy_ids) {
    const char* cgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                          "cpuset\t3\t1\t1\n"
                          "cpu\t1\t1\t1\n"
                          "freezer\t6\t1\t1\n"
                          "net_cls\t0\t1\t1\n";
    const char* self = "9:name=systemd:/\n"
                       "6:freezer:/\n"
                       "2:cpu,cpuacct:/a:b\n"
                       "0::/user.slice\n";
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "freezer") == 6);
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "cpu") == 1);
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "name=systemd") == 9); // only in /proc/self/cgroup
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "cpuacct") == 2);
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "net_cls") == 0); // not on v1
    BOOST_TEST(parse_cgroup1_hierarchy_id(cgroups, self, "") == 0);        // the v2 line names no controller
    BOOST_TEST(parse_cgroup1_hierarchy_id("", "", "freezer") == 0);
}

BOOST_AUTO_TEST_CASE(absolute_paths_become_hierarchy_paths) {
    CgroupMount m{2, "/sys/fs/cgroup/unified", "/", 0};
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/sys/fs/cgroup/unified") == "/");
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/sys/fs/cgroup/unified/a/b") == "/a/b");
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/sys/fs/cgroup/unifiedX/a") == "");
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/elsewhere") == "");
    m.mount_point = "/sys/fs/cgroup/unified/";
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/sys/fs/cgroup/unified/a") == "/a");
    // A mount of a subtree: paths stay below the hierarchy's root.
    m = {2, "/srv/cg", "/machine.slice", 0};
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/srv/cg") == "/machine.slice");
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/srv/cg/vm1") == "/machine.slice/vm1");
    m = {2, "/", "/", 0};
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/a") == "/a");
    BOOST_TEST(CgroupResolver::hierarchy_path(m, "/") == "/");
}

BOOST_AUTO_TEST_CASE(info_carries_job_and_step) {
    CgroupInfo a(7, kV2 + "/job_4242/step_batch/user/task_0");
    BOOST_TEST(a.resolved());
    BOOST_TEST(a.id() == 7u);
    BOOST_TEST(a.job().value_or("") == "4242");
    BOOST_TEST(a.step().value_or("") == "batch");
    CgroupInfo b(8, kV2 + "/job_5");
    BOOST_TEST(b.job().value_or("") == "5");
    BOOST_TEST(!b.step().has_value());
    CgroupInfo c(9, "/user.slice");
    BOOST_TEST(!c.job().has_value());
    BOOST_TEST(!c.step().has_value());
    CgroupInfo d(10, "");
    BOOST_TEST(!d.resolved());
    BOOST_TEST(!d.job().has_value());
}

namespace {

// A fake hierarchy in a temporary directory, removed whatever happens; on
// tmpfs where there is one, since removing directories from a disk is slow.
struct Tree {
    fs::path root;
    Tree() {
        std::error_code ec;
        fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
        root = base / ("pdtt-test-cgroups-" + std::to_string(::getpid()));
        fs::remove_all(root);
        fs::create_directories(root);
    }
    ~Tree() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    uint64_t make(const std::string& rel) {
        fs::create_directories(root / rel.substr(1));
        return ino(rel);
    }
    uint64_t ino(const std::string& rel) const {
        struct stat st {};
        BOOST_REQUIRE(::stat((root / rel.substr(1)).c_str(), &st) == 0);
        return st.st_ino;
    }
    CgroupMount mount(std::string hroot = "/") const { return {2, root.string(), std::move(hroot), 0}; }
};

CgroupResolver::Options walking(size_t max_entries = 65536) {
    CgroupResolver::Options o;
    o.use_handles = false;
    o.max_entries = max_entries;
    return o;
}

// Polls until `n` answers came or 5 s passed; returns what came.
std::vector<CgroupInfoPtr> answers(CgroupResolver& r, size_t n) {
    std::vector<CgroupInfoPtr> got;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (got.size() < n && std::chrono::steady_clock::now() < until) {
        if (r.poll([&](const CgroupInfoPtr& i) { got.push_back(i); }) == 0)
            std::this_thread::sleep_for(1ms);
    }
    return got;
}

} // namespace

BOOST_AUTO_TEST_CASE(walk_resolves_off_the_callers_thread_and_caches) {
    Tree t;
    const std::string task = kV2 + "/job_42/step_0/user/task_0";
    uint64_t id = t.make(task);
    t.make("/user.slice/user-1000.slice/session-3.scope");

    std::atomic<int> wakes{0};
    std::atomic<bool> woke_elsewhere{false};
    auto caller = std::this_thread::get_id();
    CgroupResolver::Options o = walking();
    o.wake = [&] {
        ++wakes;
        woke_elsewhere = std::this_thread::get_id() != caller;
    };
    CgroupResolver r(t.mount(), o);

    BOOST_TEST(!r.lookup(id)); // pending: a walk never runs here
    BOOST_TEST(!r.lookup(id)); // asked once, queued once
    BOOST_TEST(r.stats().pending == 1u);
    std::vector<CgroupInfoPtr> got = answers(r, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0]->id() == id);
    BOOST_TEST(got[0]->path() == task);
    BOOST_TEST(got[0]->job().value_or("") == "42");
    BOOST_TEST(got[0]->step().value_or("") == "0");
    BOOST_TEST(wakes.load() >= 1);
    BOOST_TEST(woke_elsewhere.load());

    CgroupInfoPtr again = r.lookup(id);
    BOOST_TEST(again.get() == got[0].get());
    CgroupStats s = r.stats();
    BOOST_TEST(s.lookups == 3u);
    BOOST_TEST(s.hits == 1u);
    BOOST_TEST(s.resolved == 1u);
    BOOST_TEST(s.unresolved == 0u);
    BOOST_TEST(s.pending == 0u);
    BOOST_TEST(s.entries == 1u);
    BOOST_TEST(s.walks >= 1u);
    BOOST_TEST(!s.handles);
}

BOOST_AUTO_TEST_CASE(walk_answers_many_ids_and_the_root) {
    Tree t;
    uint64_t a = t.make("/slurm/uid_1000/job_77/step_0");
    uint64_t b = t.make("/slurm/uid_1000/job_78");
    uint64_t c = t.make("/system.slice/sshd.service");
    uint64_t root = t.ino("/");
    CgroupResolver r(t.mount(), walking());
    for (uint64_t id : {a, b, c, root})
        BOOST_TEST(!r.lookup(id));
    std::vector<CgroupInfoPtr> got = answers(r, 4);
    BOOST_TEST_REQUIRE(got.size() == 4u);
    BOOST_TEST(r.lookup(a)->path() == "/slurm/uid_1000/job_77/step_0");
    BOOST_TEST(r.lookup(a)->job().value_or("") == "77");
    BOOST_TEST(r.lookup(b)->path() == "/slurm/uid_1000/job_78");
    BOOST_TEST(!r.lookup(b)->step().has_value());
    BOOST_TEST(r.lookup(c)->path() == "/system.slice/sshd.service");
    BOOST_TEST(!r.lookup(c)->job().has_value());
    BOOST_TEST(r.lookup(root)->path() == "/");
    BOOST_TEST(r.stats().resolved == 4u);
}

BOOST_AUTO_TEST_CASE(a_subtree_mount_keeps_hierarchy_paths) {
    Tree t;
    uint64_t id = t.make("/vm1");
    CgroupResolver r(t.mount("/machine.slice"), walking());
    r.lookup(id);
    BOOST_TEST_REQUIRE(answers(r, 1).size() == 1u);
    BOOST_TEST(r.lookup(id)->path() == "/machine.slice/vm1");
}

BOOST_AUTO_TEST_CASE(removed_cgroups_keep_their_last_path_or_count_as_unresolved) {
    Tree t;
    const std::string done = kV2 + "/job_1/step_0";
    uint64_t seen = t.make(done);
    uint64_t never = t.make(kV2 + "/job_2/step_0");
    CgroupResolver r(t.mount(), walking());
    r.lookup(seen);
    BOOST_TEST_REQUIRE(answers(r, 1).size() == 1u);

    // Both jobs end; one was asked about in time, the other not.
    fs::remove(t.root / done.substr(1));
    fs::remove_all(t.root / (kV2.substr(1) + "/job_2"));
    BOOST_TEST(r.lookup(seen)->path() == done);

    BOOST_TEST(!r.lookup(never));
    std::vector<CgroupInfoPtr> got = answers(r, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(!got[0]->resolved());
    BOOST_TEST(!got[0]->job().has_value());
    // The miss is cached: no walk again for it, and counted once.
    CgroupInfoPtr miss = r.lookup(never);
    BOOST_TEST_REQUIRE(miss);
    BOOST_TEST(!miss->resolved());
    BOOST_TEST(r.stats().unresolved == 1u);
    BOOST_TEST(r.stats().pending == 0u);
}

BOOST_AUTO_TEST_CASE(cache_is_bounded_least_recently_used_out) {
    Tree t;
    uint64_t a = t.make("/a"), b = t.make("/b"), c = t.make("/c");
    CgroupResolver r(t.mount(), walking(2));
    r.lookup(a);
    r.lookup(b);
    BOOST_TEST_REQUIRE(answers(r, 2).size() == 2u);
    CgroupInfoPtr held = r.lookup(b);
    BOOST_TEST_REQUIRE(r.lookup(a)); // a is now the most recent, b the oldest
    r.lookup(c);
    BOOST_TEST_REQUIRE(answers(r, 1).size() == 1u);
    CgroupStats s = r.stats();
    BOOST_TEST(s.entries == 2u);
    BOOST_TEST(s.evicted == 1u);
    BOOST_TEST(r.lookup(a));
    BOOST_TEST(r.lookup(c));
    BOOST_TEST(!r.lookup(b));         // evicted: asked again
    BOOST_TEST(held->path() == "/b"); // a holder keeps its copy
}

BOOST_AUTO_TEST_CASE(pending_ids_are_bounded) {
    Tree t;
    uint64_t a = t.make("/a"), b = t.make("/b");
    CgroupResolver::Options o = walking();
    o.max_pending = 1;
    CgroupResolver r(t.mount(), o);
    BOOST_TEST(!r.lookup(a));
    BOOST_TEST(!r.lookup(b));
    BOOST_TEST(r.stats().dropped == 1u);
    BOOST_TEST(r.stats().pending == 1u);
    BOOST_TEST_REQUIRE(answers(r, 1).size() == 1u);
    BOOST_TEST(!r.lookup(b)); // room again
    BOOST_TEST_REQUIRE(answers(r, 1).size() == 1u);
    BOOST_TEST(r.lookup(b)->path() == "/b");
}

BOOST_AUTO_TEST_CASE(id_zero_is_no_cgroup) {
    Tree t;
    CgroupResolver r(t.mount(), walking());
    CgroupInfoPtr none = r.lookup(0);
    BOOST_TEST_REQUIRE(none);
    BOOST_TEST(!none->resolved());
    BOOST_TEST(r.stats().pending == 0u);
    BOOST_TEST(r.stats().unresolved == 0u);
}

BOOST_AUTO_TEST_CASE(destruction_with_work_queued_does_not_hang) {
    Tree t;
    for (int i = 0; i < 200; ++i)
        t.make("/d" + std::to_string(i) + "/e/f");
    auto t0 = std::chrono::steady_clock::now();
    {
        CgroupResolver r(t.mount(), walking());
        for (uint64_t id = 1; id < 500; ++id)
            r.lookup(id * 7919);
    }
    auto took = std::chrono::steady_clock::now() - t0;
    BOOST_TEST_MESSAGE("destroyed with 499 ids queued in "
                       << std::chrono::duration_cast<std::chrono::microseconds>(took).count() << " us");
    BOOST_TEST((took < 2s));
}

BOOST_AUTO_TEST_CASE(a_missing_mount_is_a_runtime_error) {
    CgroupMount m{2, "/nonexistent/pdtt-test/cgroup", "/", 0};
    BOOST_CHECK_EXCEPTION(CgroupResolver r(m), Error, [](const Error& e) {
        return e.exit_code() == kExitRuntime &&
               std::string(e.what()).find("/nonexistent/pdtt-test/cgroup") != std::string::npos;
    });
}
