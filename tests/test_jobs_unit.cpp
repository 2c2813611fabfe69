// Per-job and per-class accounting in the aggregator, and the records that
// carry them: cgroup ids resolved on a directory tree standing in for the
// cgroup2 mount (a cgroup's id is its directory's inode). No root needed.
#define BOOST_TEST_MODULE jobs_unit
#include <boost/test/unit_test.hpp>

#include <boost/json.hpp>

#include "aggregator.hpp"
#include "cgroups.hpp"
#include "classes.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "factory.hpp"
#include "metrics_sink.hpp"
#include "record_json.hpp"
#include "syslog_format.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

using namespace pdtt;
namespace fs = std::filesystem;

namespace {

struct Capture : Sink {
    std::vector<FlowRecord> opens, closes, owners;
    std::vector<UserReport> users;
    std::vector<JobReport> jobs;
    void flow_open(const FlowRecord& r) override { opens.push_back(r); }
    void flow_owner(const FlowRecord& r) override { owners.push_back(r); }
    void flow_close(const FlowRecord& r) override { closes.push_back(r); }
    void user_report(const UserReport& r) override { users.push_back(r); }
    void job_report(const JobReport& r) override { jobs.push_back(r); }
};

bool fake_passwd(uint32_t uid, std::string& name) {
    name = uid == 1001 ? "alice" : uid == 1002 ? "bob" : "root";
    return true;
}

std::string str(const std::optional<std::string_view>& v) { return v ? std::string(*v) : std::string("null"); }

CgroupResolver::Options walk_only() {
    CgroupResolver::Options o;
    o.use_handles = false; // a temporary directory is no cgroup2 file system
    return o;
}

// A fake cgroup2 hierarchy in a temporary directory.
struct Tree {
    fs::path root = fs::temp_directory_path() / ("pdtt-jobs-unit-" + std::to_string(::getpid()));
    Tree() { fs::create_directories(root); }
    ~Tree() { fs::remove_all(root); }
    uint64_t make(const std::string& rel) {
        fs::create_directories(root / rel.substr(1));
        struct stat st {};
        BOOST_REQUIRE(::stat((root / rel.substr(1)).c_str(), &st) == 0);
        return st.st_ino;
    }
};

struct Fixture {
    Tree tree;
    SinkList sinks;
    Capture* cap;
    UserNames names{std::chrono::seconds(600), &fake_passwd, UserNames::Threads::none};
    WallClock clock;
    CgroupResolver cgroups{CgroupMount{2, tree.root.string(), "/", 0}, walk_only()};
    TrafficClasses classes;
    Aggregator agg{sinks, names, [](uint32_t) { return std::string("veth0"); }, clock};
    uint64_t task0 = tree.make("/slurmstepd.scope/job_4242/step_0/user/task_0");
    uint64_t task1 = tree.make("/slurmstepd.scope/job_4242/step_0/user/task_1");
    uint64_t batch = tree.make("/slurmstepd.scope/job_4242/step_batch");
    uint64_t other_job = tree.make("/slurmstepd.scope/job_77/step_0");
    uint64_t session = tree.make("/user.slice/user-1002.slice/session-3.scope");
    Fixture() {
        auto c = std::make_unique<Capture>();
        cap = c.get();
        sinks.push_back(std::move(c));
        classes.add("site=10.0.0.0/8,fd00::/8");
        classes.add("storage=10.10.0.0/16");
        agg.set_cgroups(&cgroups);
        agg.set_classes(&classes);
        // Resolve every id before the first event, as open_by_handle_at() would.
        for (uint64_t id : {task0, task1, batch, other_job, session})
            cgroups.lookup(id);
        for (int i = 0; i < 500 && cgroups.stats().pending; ++i) {
            cgroups.poll();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        BOOST_TEST_REQUIRE(cgroups.stats().pending == 0u);
    }
};

pdtt_event ev(uint8_t type, uint64_t flow_id, const char* remote, uint32_t uid, uint64_t cgroup, uint64_t tx,
              uint64_t rx) {
    pdtt_event e{};
    e.type = type;
    e.flow_id = flow_id;
    auto put = [](uint8_t* dst, const char* s) {
        in_addr a4;
        if (inet_pton(AF_INET, s, &a4) == 1) {
            dst[10] = dst[11] = 0xff;
            std::memcpy(dst + 12, &a4, 4);
        } else {
            BOOST_REQUIRE(inet_pton(AF_INET6, s, dst) == 1);
        }
    };
    uint8_t laddr[16] = {}, raddr[16] = {};
    put(laddr, std::strchr(remote, ':') ? "fd00::1" : "10.0.0.1");
    put(raddr, remote);
    e.key = make_flow_key(laddr, static_cast<uint16_t>(40000 + flow_id), raddr, 22, IPPROTO_TCP, 4026531840u);
    e.uid = uid;
    e.cgroup = cgroup;
    e.ifindex = 3;
    e.cnt = {tx, rx, tx / 1000 + 1, rx / 1000 + 1};
    e.open_ns = 1'000'000'000;
    e.ts_ns = 2'000'000'000;
    e.pid = 42;
    std::strcpy(e.comm, "rsync");
    return e;
}

const JobReport* find_job(const Capture& c, std::string_view job, std::optional<std::string_view> step, int64_t uid) {
    for (const auto& j : c.jobs)
        if (j.job == job && j.step == step && j.uid == uid)
            return &j;
    return nullptr;
}

uint64_t class_tx(const std::vector<ClassTotals>& v, std::string_view name) {
    for (const auto& c : v)
        if (c.name == name)
            return c.tx_bytes;
    return UINT64_MAX;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(flows_carry_their_cgroup_job_and_step, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, "10.0.0.2", 1001, task0, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, "10.0.0.3", 1002, session, 0, 0));
    BOOST_TEST_REQUIRE(cap->opens.size() == 2u);
    BOOST_TEST(cap->opens[0].id.cgroup == "/slurmstepd.scope/job_4242/step_0/user/task_0");
    BOOST_TEST(str(cap->opens[0].id.job) == "4242");
    BOOST_TEST(str(cap->opens[0].id.step) == "0");
    BOOST_TEST(cap->opens[1].id.cgroup == "/user.slice/user-1002.slice/session-3.scope");
    BOOST_TEST(!cap->opens[1].id.job);
    BOOST_TEST(!cap->opens[1].id.step);

    auto o = to_json(cap->opens[0]);
    BOOST_TEST(o.at("cgroup").as_string() == "/slurmstepd.scope/job_4242/step_0/user/task_0");
    BOOST_TEST(o.at("job").as_string() == "4242");
    BOOST_TEST(o.at("step").as_string() == "0");
    auto n = to_json(cap->opens[1]);
    BOOST_TEST(n.at("job").is_null());
    BOOST_TEST(n.at("step").is_null());
}

BOOST_FIXTURE_TEST_CASE(job_report_per_job_step_and_user_sums_the_jobs_flows, Fixture) {
    // Two tasks of one step (one row), its batch step, root's slurmstepd in
    // the step (a row of its own), a flow outside any job (no row).
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, "10.0.0.2", 1001, task0, 1000, 100));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 2, "10.10.0.5", 1001, task1, 2000, 200));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 3, "192.0.2.1", 1001, batch, 4000, 400));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 4, "10.0.0.2", 0, task0, 8000, 800));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 5, "10.0.0.3", 1002, session, 16000, 1600));
    agg.report(Timestamp{}, 10.0);

    BOOST_TEST_REQUIRE(cap->jobs.size() == 3u);
    const JobReport* step0 = find_job(*cap, "4242", "0", 1001);
    BOOST_TEST_REQUIRE(step0);
    BOOST_TEST(step0->tx_bytes == 3000u);
    BOOST_TEST(step0->rx_bytes == 300u);
    BOOST_TEST(step0->cgroup == "/slurmstepd.scope/job_4242/step_0");
    BOOST_TEST(step0->user == "alice");
    const JobReport* b = find_job(*cap, "4242", "batch", 1001);
    BOOST_TEST_REQUIRE(b);
    BOOST_TEST(b->tx_bytes == 4000u);
    const JobReport* root = find_job(*cap, "4242", "0", 0);
    BOOST_TEST_REQUIRE(root);
    BOOST_TEST(root->tx_bytes == 8000u);

    // Classes: longest prefix wins, "other" for the rest, on users and jobs.
    BOOST_TEST(class_tx(step0->classes, "site") == 1000u);
    BOOST_TEST(class_tx(step0->classes, "storage") == 2000u);
    BOOST_TEST(class_tx(step0->classes, "other") == 0u);
    BOOST_TEST(class_tx(b->classes, "other") == 4000u);
    const UserReport* alice = nullptr;
    for (const auto& u : cap->users)
        if (u.uid == 1001)
            alice = &u;
    BOOST_TEST_REQUIRE(alice);
    BOOST_TEST(alice->classes.size() == 3u);
    BOOST_TEST(class_tx(alice->classes, "site") == 1000u);
    BOOST_TEST(class_tx(alice->classes, "storage") == 2000u);
    BOOST_TEST(class_tx(alice->classes, "other") == 4000u);

    auto j = to_json(*step0);
    BOOST_TEST(j.at("type").as_string() == "job_report");
    BOOST_TEST(j.at("job").as_string() == "4242");
    BOOST_TEST(j.at("step").as_string() == "0");
    BOOST_TEST(j.at("tx_bytes").as_uint64() == 3000u);
    BOOST_TEST(j.at("classes").at("storage").at("tx_bytes").as_uint64() == 2000u);
    auto u = to_json(*alice);
    BOOST_TEST(u.at("classes").at("other").at("rx_bytes").as_uint64() == 400u);

    std::string m = rfc5424::format_job_report(rfc5424::Header{16, "h", "pdtt", "1"}, *step0);
    BOOST_TEST(m.find(" job_report [pdtt@32473 ") != std::string::npos);
    BOOST_TEST(m.find(R"(job="4242" step="0" cgroup="/slurmstepd.scope/job_4242/step_0" user="alice")") !=
               std::string::npos);
    BOOST_TEST(m.find(R"(class_1="site" class_tx_bytes_1="1000")") != std::string::npos);

    // The next interval starts empty.
    cap->jobs.clear();
    agg.report(Timestamp{}, 10.0);
    BOOST_TEST(cap->jobs.empty());
}

BOOST_FIXTURE_TEST_CASE(a_new_job_changes_the_owner_a_new_cgroup_of_the_job_is_only_noted, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, "10.0.0.2", 1001, task0, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, task1, 100, 10)); // same job: noted
    BOOST_TEST(cap->owners.empty());
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, other_job, 300, 30)); // job 77 now
    BOOST_TEST_REQUIRE(cap->owners.size() == 1u);
    const FlowRecord& r = cap->owners[0];
    BOOST_TEST(r.from_uid == 1001);
    BOOST_TEST(str(r.from_job) == "4242");
    BOOST_TEST(str(r.id.job) == "77");
    BOOST_TEST(r.cnt.tx_bytes == 300u);
    auto o = to_json(r);
    BOOST_TEST(o.at("from_job").as_string() == "4242");
    BOOST_TEST(o.at("job").as_string() == "77");
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, session, 500, 50)); // out of any job
    BOOST_TEST_REQUIRE(cap->owners.size() == 2u);
    BOOST_TEST(str(cap->owners[1].from_job) == "77");
    BOOST_TEST(to_json(cap->owners[1]).at("job").is_null());
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, "10.0.0.2", 1001, session, 600, 60));
    agg.report(Timestamp{}, 10.0);
    // Bytes before each change stay with the job that moved them.
    const JobReport* a = find_job(*cap, "4242", "0", 1001);
    const JobReport* b = find_job(*cap, "77", "0", 1001);
    BOOST_TEST_REQUIRE(a);
    BOOST_TEST_REQUIRE(b);
    BOOST_TEST(a->tx_bytes == 300u);
    BOOST_TEST(b->tx_bytes == 200u);
    BOOST_TEST(cap->jobs.size() == 2u);
}

namespace {
std::atomic<bool> carol_answers{false};
bool slow_for_carol(uint32_t uid, std::string& name) { // 1003's lookup is stuck until the test lets it answer
    while (uid == 1003 && !carol_answers)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    name = uid == 1003 ? "carol" : "alice";
    return true;
}
} // namespace

// A flow's record held behind a user whose name is pending points into the
// cgroup the flow was in when the record was made. If the flow moved to
// another cgroup of its job meanwhile and the cache let the old one go, the
// held record must still keep it (it kept the flow's new one, and the JSON
// sink read freed memory: AddressSanitizer, helper review).
BOOST_AUTO_TEST_CASE(a_held_record_keeps_the_cgroup_its_text_points_into) {
    Tree tree;
    const uint64_t task0 = tree.make("/slurmstepd.scope/job_4242/step_0/user/task_0");
    const uint64_t task1 = tree.make("/slurmstepd.scope/job_4242/step_0/user/task_1");
    carol_answers = false;
    struct Answer { // the worker must finish its lookup whatever happens here
        ~Answer() { carol_answers = true; }
    } answer;
    UserNames names{std::chrono::seconds(600), &slow_for_carol};
    BOOST_TEST_REQUIRE(names.wait(1001, std::chrono::steady_clock::now() + std::chrono::seconds(2)));
    CgroupResolver::Options one = walk_only();
    one.max_entries = 1; // the next cgroup looked up lets the last one go
    CgroupResolver cgroups{CgroupMount{2, tree.root.string(), "/", 0}, one};
    auto resolve = [&](uint64_t id) {
        cgroups.lookup(id);
        for (int i = 0; i < 500 && cgroups.stats().pending; ++i) {
            cgroups.poll();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        BOOST_TEST_REQUIRE(cgroups.lookup(id) != nullptr);
    };
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* mem = open_memstream(&buf, &len);
    BOOST_TEST_REQUIRE(mem);
    {
        SinkList sinks;
        sinks.push_back(make_json_sink(mem));
        WallClock clock;
        Aggregator agg{sinks, names, [](uint32_t) { return std::string("veth0"); }, clock};
        agg.set_cgroups(&cgroups);
        resolve(task0);
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, "10.0.0.2", 1001, task0, 0, 0));
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, "10.0.0.3", 1001, 0, 0, 0));
        agg.on_event(ev(PDTT_EV_FLOW_OWNER, 2, "10.0.0.3", 1003, 0, 100, 0)); // carol: held, alice's records too
        BOOST_TEST_REQUIRE(agg.held() == 1u);
        resolve(task1); // task0 leaves the cache: flow 1 alone keeps it
        agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, task1, 500, 0)); // same job: a delta, held
        BOOST_TEST_REQUIRE(agg.held() == 2u);
        std::vector<std::string> churn; // reuse what was freed, if it was
        for (int i = 0; i < 64; ++i)
            churn.emplace_back(std::string(64, char('a' + i % 26)));
        carol_answers = true;
        BOOST_TEST_REQUIRE(names.wait(1003, std::chrono::steady_clock::now() + std::chrono::seconds(2)));
        agg.release_held(std::chrono::steady_clock::now());
        BOOST_TEST(agg.held() == 0u);
        for (auto& s : sinks)
            s->flush();
    }
    std::fclose(mem);
    std::string text(buf, len);
    std::free(buf);
    std::istringstream lines(text);
    int deltas = 0;
    for (std::string line; std::getline(lines, line);) {
        auto o = boost::json::parse(line).as_object();
        if (o.at("type").as_string() != "flow_delta" || o.at("flow_id").as_int64() != 1)
            continue;
        ++deltas;
        BOOST_TEST(o.at("cgroup").as_string() == "/slurmstepd.scope/job_4242/step_0/user/task_0");
        BOOST_TEST(o.at("job").as_string() == "4242");
        BOOST_TEST(o.at("tx_bytes").as_int64() == 500);
    }
    BOOST_TEST(deltas == 1);
}

BOOST_AUTO_TEST_CASE(without_classes_reports_have_no_classes) {
    SinkList sinks;
    auto c = std::make_unique<Capture>();
    Capture* cap = c.get();
    sinks.push_back(std::move(c));
    UserNames names{std::chrono::seconds(600), &fake_passwd, UserNames::Threads::none};
    WallClock clock;
    TrafficClasses none;
    Aggregator agg{sinks, names, [](uint32_t) { return std::string("veth0"); }, clock};
    agg.set_classes(&none);
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, "10.0.0.2", 1001, 0, 1000, 100));
    agg.report(Timestamp{}, 10.0);
    BOOST_TEST_REQUIRE(cap->users.size() == 1u);
    BOOST_TEST(cap->users[0].classes.empty());
    BOOST_TEST(!to_json(cap->users[0]).contains("classes"));
    BOOST_TEST(cap->jobs.empty());
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(to_json(cap->closes[0]).at("cgroup").is_null());
}

// --syslog-records: only the chosen types reach the inner sink.
BOOST_AUTO_TEST_CASE(filtered_sink_passes_only_the_chosen_record_types) {
    auto c = std::make_unique<Capture>();
    Capture* cap = c.get();
    RecordTypes only{0};
    only.add(RecordType::job_report);
    auto f = make_filtered_sink(std::move(c), only);
    FlowRecord r;
    f->flow_close(r);
    f->flow_owner(r);
    f->user_report(UserReport{});
    f->job_report(JobReport{});
    BOOST_TEST(cap->closes.empty());
    BOOST_TEST(cap->owners.empty());
    BOOST_TEST(cap->users.empty());
    BOOST_TEST(cap->jobs.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_cgroup_learnt_after_open_is_no_owner_change, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, "10.0.0.2", 1001, 0, 0, 0)); // opened in softirq: no cgroup
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, task0, 0, 0));
    BOOST_TEST(cap->owners.empty());
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, "10.0.0.2", 1001, task0, 900, 90));
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(str(cap->closes[0].id.job) == "4242");
    agg.report(Timestamp{}, 10.0);
    const JobReport* j = find_job(*cap, "4242", "0", 1001);
    BOOST_TEST_REQUIRE(j);
    BOOST_TEST(j->tx_bytes == 900u);
}

// A delta recorded in an owner event names the job its bytes were
// accounted to: the metrics' job series equal the job reports also when
// the cgroup is learnt after bytes moved.
BOOST_FIXTURE_TEST_CASE(metrics_job_series_equal_the_job_reports, Fixture) {
    boost::asio::io_context io;
    auto m = make_metrics_sink({"", "", "0.1"}, io);
    MetricsSink* metrics = m.get();
    sinks.push_back(std::move(m));
    struct Remove { // the sink goes before io, whose services its timer uses
        SinkList& sinks;
        ~Remove() { sinks.pop_back(); }
    } remove{sinks};
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, "10.0.0.2", 1001, 0, 100, 10)); // opened in softirq: no cgroup
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1001, task0, 500, 50));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, "10.0.0.2", 1001, task0, 800, 80));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, "10.10.0.5", 1001, batch, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 2, "10.10.0.5", 1001, batch, 3000, 300));
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, "10.0.0.2", 1002, other_job, 1000, 100)); // alice's until here
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, "10.0.0.2", 1002, other_job, 1500, 150));
    agg.report(Timestamp{}, 10.0);
    std::map<std::pair<std::string, std::string>, std::pair<uint64_t, uint64_t>> want;
    for (const auto& j : cap->jobs) {
        auto& w = want[{j.job, j.uid == 1001 ? "alice" : "bob"}];
        w.first += j.tx_bytes;
        w.second += j.rx_bytes;
    }
    BOOST_TEST_REQUIRE(want.size() == 2u);
    BOOST_TEST((want[{"4242", "alice"}] == std::pair<uint64_t, uint64_t>{3500, 350}));
    std::string text = metrics->exposition();
    BOOST_TEST_INFO(text);
    for (const auto& [k, v] : want) {
        std::string labels = "{job=\"" + k.first + "\",user=\"" + k.second + "\",iface=\"veth0\"} ";
        BOOST_TEST(text.find("pdtt_job_transmit_bytes_total" + labels + std::to_string(v.first) + "\n") !=
                   std::string::npos);
        BOOST_TEST(text.find("pdtt_job_receive_bytes_total" + labels + std::to_string(v.second) + "\n") !=
                   std::string::npos);
    }
    // Classes on the per-user series: flow 2's remote is in storage.
    BOOST_TEST(text.find("pdtt_transmit_bytes_total{user=\"alice\",uid=\"1001\",iface=\"veth0\",class=\"storage\"} "
                         "3000\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(auto_finds_slurms_v1_directory_and_an_unknown_controller_is_an_error) {
    fs::path root = fs::temp_directory_path() / ("pdtt-v1-unit-" + std::to_string(::getpid()));
    fs::create_directories(root / "system.slice");
    CgroupMount m{1, root.string(), "/", 6};
    BOOST_TEST(!has_slurm_dir(m));
    fs::create_directories(root / "slurm_");
    BOOST_TEST(!has_slurm_dir(m), "slurm_ names no node");
    fs::create_directories(root / "slurm_node7");
    BOOST_TEST(has_slurm_dir(m));
    fs::remove(root / "slurm_node7");
    fs::create_directories(root / "slurm" / "uid_0");
    BOOST_TEST(has_slurm_dir(m));
    fs::remove_all(root);

    BOOST_CHECK_EXCEPTION(choose_cgroup_mount("nosuchcontroller"), Error,
                          [](const Error& e) { return e.exit_code() == kExitUsage; });
    std::optional<CgroupMount> off = choose_cgroup_mount("off");
    BOOST_TEST((!off || off->version == 2));
}
