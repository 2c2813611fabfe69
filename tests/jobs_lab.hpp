// What the job tests share: cgroups made in Slurm's layouts (v2 and v1),
// removed also when a test fails, and the agent and transfers entered with
// nsenter, since `ip netns exec` mounts a sysfs of its own over /sys and
// hides the cgroup mounts.
#pragma once

#include "agent_lab.hpp"
#include "cgroups.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace pdtt::test {

inline constexpr const char* kJobCgroup = "slurmstepd.scope/job_4242/step_0/user/task_0";

// The cgroups a test makes below the cgroup2 mount, removed deepest first,
// also when the test fails (rmdir waits for the tasks to be gone).
struct SlurmCgroup {
    fs::path top;    // pdtt-test-PID
    fs::path task;   // the task_0 directory
    std::string rel; // task's path below the hierarchy root
    SlurmCgroup() {
        auto m = pdtt::find_cgroup2_mount();
        BOOST_TEST_REQUIRE(m.has_value(), "no cgroup2 mount");
        std::string name = "pdtt-test-" + std::to_string(::getpid());
        top = fs::path(m->mount_point) / name;
        task = top / kJobCgroup;
        rel = "/" + name + "/" + kJobCgroup;
        fs::create_directories(task);
    }
    ~SlurmCgroup() {
        std::vector<fs::path> dirs;
        for (fs::path p = task; p != top.parent_path(); p = p.parent_path())
            dirs.push_back(p);
        remove_dirs(dirs);
    }
};

// Slurm's v1 layout made by the test in the v1 freezer hierarchy:
// slurm/uid_U/job_77/step_0. Only the directories it made are removed,
// deepest first, also when the test fails.
struct SlurmV1Cgroup {
    fs::path step;              // the step_0 directory
    std::string rel;            // its path below the hierarchy root
    std::vector<fs::path> made; // outermost first
    explicit SlurmV1Cgroup(int64_t uid) {
        auto m = pdtt::find_cgroup1_mount("freezer");
        BOOST_TEST_REQUIRE(m.has_value(), "no cgroup v1 freezer hierarchy mounted");
        rel = "/slurm/uid_" + std::to_string(uid) + "/job_77/step_0";
        fs::path p = m->mount_point;
        for (const char* c : {"slurm", "", "job_77", "step_0"}) {
            p /= *c ? std::string(c) : "uid_" + std::to_string(uid);
            if (::mkdir(p.c_str(), 0755) == 0)
                made.push_back(p);
            else
                BOOST_TEST_REQUIRE(errno == EEXIST, "mkdir " << p << ": " << std::strerror(errno));
        }
        step = p;
    }
    ~SlurmV1Cgroup() { remove_dirs({made.rbegin(), made.rend()}); }
};

// The agent in the lab's host namespace, cgroup mounts visible.
inline void start_agent_nsenter(Lab& lab, std::vector<std::string> extra) {
    std::vector<std::string> argv{"nsenter",
                                  "--net=/run/netns/" + lab.host.name(),
                                  PDTT_AGENT_BIN,
                                  "-c",
                                  lab.no_config.string(),
                                  "--stdout",
                                  "json",
                                  "-l",
                                  (lab.dir / "pdtt").string(),
                                  "-i",
                                  lab.link.a_name()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    lab.agent = std::make_unique<Process>(argv);
    BOOST_REQUIRE_MESSAGE(agent_ready(*lab.agent), "agent did not start: " << lab.agent->err());
}

// pdtt-traffic as user u, moved into `cgroup_dir` (if any) before it moves a byte.
inline void transfer_in(const Lab& lab, const fs::path& cgroup_dir, const TestUser& u, const std::string& to,
                        uint64_t tx, uint64_t rx) {
    std::string cmd = std::string("exec ") + PDTT_TRAFFIC_BIN + " send --to " + to + " --port " + kPort + " --tx " +
                      std::to_string(tx) + " --rx " + std::to_string(rx) + " --uid " + std::to_string(u.uid());
    if (!cgroup_dir.empty())
        cmd = "echo $$ > " + (cgroup_dir / "cgroup.procs").string() + " && " + cmd;
    Process p({"nsenter", "--net=/run/netns/" + lab.host.name(), "sh", "-c", cmd});
    auto st = p.wait(60s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << p.err());
}

} // namespace pdtt::test
