// Per-job accounting and traffic classes on the real kernel: transfers run
// inside a cgroup made in Slurm's v2 layout and outside any job, through the
// real agent, checked in its JSON lines (flow records, job_report,
// user_report classes). Needs root, a cgroup2 mount and the lab.
#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

#include "jobs_lab.hpp"

#include <map>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

struct Jobs : Lab {
    std::unique_ptr<Process> srv4 = serve(link.b_ip4()), srv6 = serve(link.b_ip6());
    SlurmCgroup cg;

    void start_agent_nsenter(std::vector<std::string> extra) {
        pdtt::test::start_agent_nsenter(*this, std::move(extra));
    }
    void transfer_in(const fs::path& cgroup_dir, const TestUser& u, const std::string& to, uint64_t tx, uint64_t rx) {
        pdtt::test::transfer_in(*this, cgroup_dir, u, to, tx, rx);
    }
};

std::string nullable(const json::object& o, const char* k) {
    return o.at(k).is_null() ? "null" : json::value_to<std::string>(o.at(k));
}

// What both cgroup layouts must show: alice's flows carry the job from
// their flow_open on, bob's none, no flow changes owner, and job_report
// sums alice's flows.
struct JobCheck {
    const TestUser& alice;
    const TestUser& bob;
    std::string cgroup, job, step, report_cgroup;
    uint64_t flow_tx = 0, flow_rx = 0, job_tx = 0, job_rx = 0;
    int alice_opens = 0, alice_closes = 0, bob_closes = 0;

    // False for a record of another type, which the caller may look at.
    bool take(const json::object& r) {
        std::string type = str(r, "type");
        if (type == "flow_close") {
            BOOST_TEST_INFO("flow_close " << json::serialize(r));
            int64_t uid = i64(r, "uid");
            if (uid == alice.uid()) {
                alice_closes++;
                BOOST_TEST(nullable(r, "cgroup") == cgroup);
                BOOST_TEST(nullable(r, "job") == job);
                BOOST_TEST(nullable(r, "step") == step);
                flow_tx += u64(r, "tx_bytes");
                flow_rx += u64(r, "rx_bytes");
            } else if (uid == bob.uid()) {
                bob_closes++;
                BOOST_TEST(nullable(r, "job") == "null");
                BOOST_TEST(nullable(r, "step") == "null");
            }
        } else if (type == "flow_open" && i64(r, "uid") == alice.uid()) {
            // connect() ran in the job: the flow opens with it, before its first write.
            BOOST_TEST_INFO("flow_open " << json::serialize(r));
            alice_opens++;
            BOOST_TEST(nullable(r, "job") == job);
            BOOST_TEST(nullable(r, "cgroup") == cgroup);
        } else if (type == "flow_owner") {
            // One cgroup, one job: no flow of these changes its owner.
            BOOST_ERROR("unexpected flow_owner " << json::serialize(r));
        } else if (type == "job_report") {
            BOOST_TEST_INFO("job_report " << json::serialize(r));
            BOOST_TEST(str(r, "job") == job);
            BOOST_TEST(nullable(r, "step") == step);
            BOOST_TEST(str(r, "cgroup") == report_cgroup);
            BOOST_TEST(i64(r, "uid") == alice.uid());
            BOOST_TEST(str(r, "user") == alice.name());
            job_tx += u64(r, "tx_bytes");
            job_rx += u64(r, "rx_bytes");
        } else {
            return false;
        }
        return true;
    }

    void verify(uint64_t min_flow_tx) const {
        BOOST_TEST(alice_opens == 2);
        BOOST_TEST(alice_closes == 2);
        BOOST_TEST(bob_closes == 1);
        BOOST_TEST(flow_tx > min_flow_tx);
        BOOST_TEST(job_tx == flow_tx);
        BOOST_TEST(job_rx == flow_rx);
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(a_jobs_flows_carry_job_and_step_and_job_report_sums_them, Jobs) {
    start_agent_nsenter(
        {"-t", "1", "--cgroup-v1", "off", "--class", "v4=" + link.b_ip4(), "--class", "v6=" + link.b_ip6()});
    BOOST_TEST(agent->err().find("jobs from cgroup v2 at") != std::string::npos);
    transfer_in(cg.task, alice, link.b_ip4(), 2'000'000, 500'000);
    transfer_in(cg.task, alice, link.b_ip6(), 700'000, 100'000);
    transfer_in({}, bob, link.b_ip4(), 300'000, 900'000);
    auto recs = stop_agent();

    JobCheck jobs{alice, bob, cg.rel, "4242", "0", cg.rel.substr(0, cg.rel.find("/user/task_0"))};
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> by_remote; // (uid, remote)
    std::map<std::pair<int64_t, std::string>, std::pair<uint64_t, uint64_t>> by_class;  // (uid, class)
    for (const auto& r : recs) {
        if (jobs.take(r))
            continue;
        if (str(r, "type") == "user_report") {
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
    jobs.verify(2'700'000);

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

// Slurm on cgroup v1: the job is the task's cgroup in the v1 hierarchy (the
// kfunc bpf_task_get_cgroup1), not its v2 one. --cgroup-v1 auto finds it
// because freezer holds a slurm directory.
BOOST_FIXTURE_TEST_CASE(on_cgroup_v1_a_jobs_flows_carry_its_v1_job, Jobs) {
    SlurmV1Cgroup v1(alice.uid());
    start_agent_nsenter({"-t", "1"});
    BOOST_TEST_INFO("agent stderr: " << agent->err());
    BOOST_TEST(agent->err().find("jobs from cgroup v1 at") != std::string::npos);
    transfer_in(v1.step, alice, link.b_ip4(), 1'500'000, 400'000);
    transfer_in(v1.step, alice, link.b_ip6(), 600'000, 200'000);
    transfer_in({}, bob, link.b_ip4(), 300'000, 800'000);
    auto recs = stop_agent();

    JobCheck jobs{alice, bob, v1.rel, "77", "0", v1.rel};
    uint64_t unresolved = UINT64_MAX;
    for (const auto& r : recs) {
        if (jobs.take(r))
            continue;
        if (str(r, "type") == "agent_stats") {
            BOOST_TEST_REQUIRE(r.contains("cgroups_unresolved"));
            unresolved = u64(r, "cgroups_unresolved");
        }
    }
    jobs.verify(2'000'000);
    BOOST_TEST(unresolved == 0u, "every cgroup id of these flows resolved");
}

BOOST_AUTO_TEST_CASE(a_v1_controller_that_is_not_mounted_is_a_usage_error) {
    fs::path empty = fs::temp_directory_path() / ("pdtt-jobs-empty-" + std::to_string(::getpid()) + ".conf");
    std::ofstream{empty};
    Process p(
        {PDTT_AGENT_BIN, "-c", empty.string(), "-i", "lo", "--stdout", "none", "--no-files", "--cgroup-v1", "net_cls"});
    auto st = p.wait(30s);
    fs::remove(empty);
    BOOST_TEST_INFO("stderr: " << p.err());
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 2);
    BOOST_TEST(p.err().find("--cgroup-v1 net_cls") != std::string::npos);
}
