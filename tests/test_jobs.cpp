// Per-job accounting and traffic classes on the real kernel: transfers run
// inside a cgroup made in Slurm's v2 layout and outside any job, through the
// real agent, checked in its JSON lines (flow records, job_report,
// user_report classes). Needs root, a cgroup2 mount and the lab.
#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"
#include "cgroups.hpp"

#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

constexpr const char* kJobCgroup = "slurmstepd.scope/job_4242/step_0/user/task_0";

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
        for (int i = 0; i < 200; ++i) {
            bool left = false;
            for (fs::path p = task; p != top.parent_path(); p = p.parent_path())
                if (::rmdir(p.c_str()) != 0 && errno != ENOENT)
                    left = true;
            if (!left)
                return;
            std::this_thread::sleep_for(10ms);
        }
        BOOST_ERROR("cgroups left behind under " << top);
    }
};

struct Jobs : Lab {
    std::unique_ptr<Process> srv4 = serve(link.b_ip4()), srv6 = serve(link.b_ip6());
    SlurmCgroup cg;

    std::string enter_host() const { return "--net=/run/netns/" + host.name(); }

    // The agent sees the cgroup mounts only when entered with nsenter
    // (ip netns exec mounts a sysfs of its own over /sys).
    void start_agent_nsenter(std::vector<std::string> extra) {
        std::vector<std::string> argv{
            "nsenter", enter_host(), PDTT_AGENT_BIN,          "-c", no_config.string(), "--stdout",
            "json",    "-l",         (dir / "pdtt").string(), "-i", link.a_name()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        agent = std::make_unique<Process>(argv);
        BOOST_REQUIRE_MESSAGE(agent_ready(*agent), "agent did not start: " << agent->err());
    }

    // pdtt-traffic as user u, moved into `cgroup_dir` (if any) before it moves a byte.
    void transfer_in(const fs::path& cgroup_dir, const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx) {
        std::string cmd = std::string("exec ") + PDTT_TRAFFIC_BIN + " send --to " + to + " --port " + kPort + " --tx " +
                          std::to_string(tx) + " --rx " + std::to_string(rx) + " --uid " + std::to_string(u.uid());
        if (!cgroup_dir.empty())
            cmd = "echo $$ > " + (cgroup_dir / "cgroup.procs").string() + " && " + cmd;
        Process p({"nsenter", enter_host(), "sh", "-c", cmd});
        auto st = p.wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << p.err());
    }
};

std::string nullable(const json::object& o, const char* k) {
    return o.at(k).is_null() ? "null" : json::value_to<std::string>(o.at(k));
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_jobs_flows_carry_job_and_step_and_job_report_sums_them, Jobs) {
    start_agent_nsenter({"-t", "1", "--class", "v4=" + link.b_ip4(), "--class", "v6=" + link.b_ip6()});
    transfer_in(cg.task, alice, link.b_ip4(), 2'000'000, 500'000);
    transfer_in(cg.task, alice, link.b_ip6(), 700'000, 100'000);
    transfer_in({}, bob, link.b_ip4(), 300'000, 900'000);
    auto recs = stop_agent();

    uint64_t flow_tx = 0, flow_rx = 0, job_tx = 0, job_rx = 0;
    int alice_closes = 0, bob_closes = 0;
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> by_remote; // (uid, remote)
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> by_class;  // (uid, class)
    for (const auto& r : recs) {
        std::string type = str(r, "type");
        if (type == "flow_close") {
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            int64_t uid = i64(r, "uid");
            if (uid == alice.uid()) {
                alice_closes++;
                BOOST_TEST(nullable(r, "cgroup") == cg.rel);
                BOOST_TEST(nullable(r, "job") == "4242");
                BOOST_TEST(nullable(r, "step") == "0");
                flow_tx += u64(r, "tx_bytes");
                flow_rx += u64(r, "rx_bytes");
            } else if (uid == bob.uid()) {
                bob_closes++;
                BOOST_TEST(nullable(r, "job") == "null");
                BOOST_TEST(nullable(r, "step") == "null");
            }
        } else if (type == "flow_owner") {
            // One cgroup, one job: no flow of these changes its owner.
            BOOST_ERROR("unexpected flow_owner " << json::serialize(r));
        } else if (type == "job_report") {
            BOOST_TEST_INFO("job_report " << json::serialize(r));
            BOOST_TEST(str(r, "job") == "4242");
            BOOST_TEST(nullable(r, "step") == "0");
            BOOST_TEST(str(r, "cgroup") == cg.rel.substr(0, cg.rel.find("/user/task_0")));
            BOOST_TEST(i64(r, "uid") == alice.uid());
            BOOST_TEST(str(r, "user") == alice.name());
            job_tx += u64(r, "tx_bytes");
            job_rx += u64(r, "rx_bytes");
        } else if (type == "user_report") {
            int64_t uid = i64(r, "uid");
            if (uid != alice.uid() && uid != bob.uid())
                continue;
            for (const auto& c : r.at("connections").as_array()) {
                auto& row = by_remote[{uid, str(c.as_object(), "remote")}];
                row.first += u64(c.as_object(), "tx_bytes");
                row.second += u64(c.as_object(), "rx_bytes");
            }
            BOOST_TEST_REQUIRE(r.contains("classes"));
            for (const auto& [name, t] : r.at("classes").as_object()) {
                auto& row = by_class[{uid, std::string(name)}];
                row.first += u64(t.as_object(), "tx_bytes");
                row.second += u64(t.as_object(), "rx_bytes");
            }
        }
    }
    BOOST_TEST(alice_closes == 2);
    BOOST_TEST(bob_closes == 1);
    BOOST_TEST(flow_tx > 2'700'000u);
    BOOST_TEST(job_tx == flow_tx);
    BOOST_TEST(job_rx == flow_rx);

    // Classes: each class's totals are its address's rows.
    for (const TestUser* u : {&alice, &bob}) {
        BOOST_TEST_CONTEXT("user " << u->name()) {
            auto v4 = by_remote[{u->uid(), link.b_ip4()}];
            auto v6 = by_remote[{u->uid(), link.b_ip6()}];
            BOOST_TEST(v4.first > 0u);
            BOOST_TEST((by_class[{u->uid(), "v4"}] == v4));
            BOOST_TEST((by_class[{u->uid(), "v6"}] == v6));
            BOOST_TEST((by_class[{u->uid(), "other"}].first == 0u));
        }
    }
    BOOST_TEST((by_class[{alice.uid(), "v6"}].first > 0u));
}
