// A report whose user's name is still being looked up waits for it,
// bounded, and the aggregator never waits. The name
// service here is a lookup that answers only when the test lets it. No root.
#define BOOST_TEST_MODULE held_reports
#include <boost/test/unit_test.hpp>

#include "aggregator.hpp"
#include "factory.hpp"
#include "metrics_sink.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

using namespace pdtt;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

std::atomic<bool> answer{false}; // the name service is stuck until this is set

bool stuck_passwd(uint32_t uid, std::string& name) {
    while (!answer)
        std::this_thread::sleep_for(1ms);
    name = "user" + std::to_string(uid);
    return true;
}

struct Capture : Sink {
    std::vector<FlowRecord> flows;
    std::vector<UserReport> users;
    void flow_open(const FlowRecord& r) override { flows.push_back(r); }
    void flow_owner(const FlowRecord& r) override { flows.push_back(r); }
    void flow_delta(const FlowRecord& r) override { flows.push_back(r); }
    void flow_close(const FlowRecord& r) override { flows.push_back(r); }
    void user_report(const UserReport& r) override { users.push_back(r); }
};

struct Fixture {
    SinkList sinks;
    Capture* cap;
    UserNames names{600s, &stuck_passwd};
    WallClock clock;
    Aggregator agg{sinks, names, [](uint32_t) { return std::string("veth0"); }, clock};
    Fixture() {
        answer = false;
        auto c = std::make_unique<Capture>();
        cap = c.get();
        sinks.push_back(std::move(c));
    }
    ~Fixture() { answer = true; } // the worker finishes its lookup and stops
    void let_names_answer(int64_t uid) {
        answer = true;
        BOOST_TEST_REQUIRE(names.wait(uid, Steady::now() + 2s));
    }
};

pdtt_event ev(uint8_t type, uint64_t flow_id, uint32_t uid, uint64_t tx) {
    pdtt_event e{};
    e.type = type;
    e.flow_id = flow_id;
    uint8_t l[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    uint8_t r[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
    e.key = make_flow_key(l, uint16_t(40000 + flow_id), r, 22, IPPROTO_TCP, 1);
    e.uid = uid;
    e.cnt.tx_bytes = tx;
    e.cnt.tx_packets = 1;
    e.open_ns = 1'000'000'000;
    e.ts_ns = 2'000'000'000;
    return e;
}

Timestamp at(int64_t s) { return Timestamp(std::chrono::seconds(s)); }

template <class F> std::chrono::milliseconds timed(F&& f) {
    auto t0 = Steady::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0);
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_report_waits_for_its_name_and_keeps_its_own_interval, Fixture) {
    auto took = timed([&] {
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1001, 100));
        agg.report(at(10), 10.0);
        agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 350));
        agg.report(at(20), 9.5);
    });
    BOOST_TEST(took < 100ms); // the name service is stuck; nothing here waited for it
    BOOST_TEST(cap->users.empty());
    BOOST_TEST(agg.held() == 4u); // its flow records and its two reports
    agg.release_held(Steady::now());
    BOOST_TEST(cap->users.empty()); // still pending, and within the bound

    let_names_answer(1001);
    agg.release_held(Steady::now());
    BOOST_TEST(agg.held() == 0u);
    BOOST_TEST_REQUIRE(cap->users.size() == 2u);
    BOOST_TEST(cap->users[0].user == "user1001");
    BOOST_TEST((cap->users[0].ts == at(10)));
    BOOST_TEST(cap->users[0].interval_s == 10.0);
    BOOST_TEST(cap->users[0].tx_bytes == 100u);
    BOOST_TEST(cap->users[1].user == "user1001");
    BOOST_TEST((cap->users[1].ts == at(20)));
    BOOST_TEST(cap->users[1].interval_s == 9.5);
    BOOST_TEST(cap->users[1].tx_bytes == 250u);
}

BOOST_FIXTURE_TEST_CASE(a_report_waits_at_most_the_bound_then_says_uid_n, Fixture) {
    agg.set_name_wait(200ms);
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1002, 100));
    agg.report(at(10), 10.0);
    agg.release_held(Steady::now() + 100ms);
    BOOST_TEST(cap->users.empty());
    agg.release_held(Steady::now() + 250ms);
    BOOST_TEST_REQUIRE(cap->users.size() == 1u);
    BOOST_TEST(cap->users[0].user == "uid-1002");
    BOOST_TEST(cap->users[0].tx_bytes == 100u);
}

BOOST_FIXTURE_TEST_CASE(users_with_names_are_not_held_behind_one_without, Fixture) {
    let_names_answer(1003);
    answer = false; // the next lookup is stuck again
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1004, 100));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, 1003, 200));
    agg.report(at(10), 10.0);
    BOOST_TEST_REQUIRE(cap->users.size() == 1u);
    BOOST_TEST(cap->users[0].user == "user1003");
    BOOST_TEST(agg.held() == 2u); // 1004's flow_open and report
}

// Flow records too (summing flow_close by user gives a user's share), in
// order; once the name is known they go with the next record, not at the
// next tick (a new user's burst of connections must not pile up in memory).
BOOST_FIXTURE_TEST_CASE(flow_records_wait_for_the_name_in_order, Fixture) {
    auto took = timed([&] {
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1005, 100));
        agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1005, 300));
    });
    BOOST_TEST(took < 100ms);
    BOOST_TEST(cap->flows.empty());
    BOOST_TEST(agg.held() == 2u);
    let_names_answer(1005);
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1005, 400)); // behind the held ones, and out with them
    BOOST_TEST(agg.held() == 0u);
    BOOST_TEST_REQUIRE(cap->flows.size() == 3u);
    const FlowEvent order[] = {FlowEvent::open, FlowEvent::delta, FlowEvent::close};
    for (size_t i = 0; i < 3; ++i) {
        BOOST_TEST((cap->flows[i].type == order[i]));
        BOOST_TEST(cap->flows[i].id.user == "user1005");
    }
    BOOST_TEST(cap->flows[2].cnt.tx_bytes == 400u);
}

// A held flow record goes out after its flow is gone: the JSON sink must not
// reach for the flow's kept identity then (it did, through a dangling
// pointer, once flows kept their JSON text).
BOOST_FIXTURE_TEST_CASE(held_flow_records_go_out_as_json_after_their_flow_is_gone, Fixture) {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* mem = open_memstream(&buf, &len);
    sinks.push_back(make_json_sink(mem));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1005, 100));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1005, 300));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1005, 400)); // the flow is forgotten
    BOOST_TEST(agg.held() == 3u);
    let_names_answer(1005);
    agg.release_held(Steady::now());
    sinks.back()->flush();
    std::fflush(mem);
    std::string text(buf, len);
    sinks.pop_back();
    std::fclose(mem);
    std::free(buf);
    std::istringstream lines(text);
    int n = 0;
    for (std::string line; std::getline(lines, line); ++n) {
        BOOST_TEST_INFO(line);
        auto o = boost::json::parse(line).as_object();
        BOOST_TEST(o.at("user").as_string() == "user1005");
        BOOST_TEST(o.at("flow_id").as_int64() == 1);
    }
    BOOST_TEST(n == 3);
}

// A held record owns what it names: its flow closed, then the flow table
// grew and moved every flow while it waited.
BOOST_FIXTURE_TEST_CASE(held_records_name_their_flow_after_the_table_moved, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1005, 100));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1005, 300));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1005, 400));
    constexpr uint64_t kFlows = 2000;
    for (uint64_t id = 2; id <= kFlows; ++id)
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, id, 1005, 100));
    BOOST_TEST(agg.held() == kFlows + 2);
    let_names_answer(1005);
    agg.release_held(Steady::now());
    BOOST_TEST_REQUIRE(cap->flows.size() == kFlows + 2);
    for (size_t i = 0; i < cap->flows.size(); ++i) {
        const FlowRecord& r = cap->flows[i];
        BOOST_TEST(r.id.flow_id == (i < 3 ? 1u : i - 1));
        BOOST_TEST(r.id.lport == 40000 + r.id.flow_id);
        BOOST_TEST(r.id.user == "user1005");
        BOOST_TEST(r.id.local == "10.0.0.1");
    }
    BOOST_TEST(cap->flows[2].cnt.tx_bytes == 400u);
}

// Shutdown: everything held goes out, with the names that arrive in time.
BOOST_FIXTURE_TEST_CASE(flush_sends_everything_held_waiting_for_names_until_its_deadline, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1006, 100));
    agg.report(at(10), 10.0);
    std::thread late([] {
        std::this_thread::sleep_for(100ms);
        answer = true;
    });
    agg.flush_held(Steady::now() + 1s);
    late.join();
    BOOST_TEST(agg.held() == 0u);
    BOOST_TEST_REQUIRE(cap->users.size() == 1u);
    BOOST_TEST(cap->users[0].user == "user1006");

    answer = false;
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, 1007, 100));
    agg.report(at(20), 10.0);
    auto took = timed([&] { agg.flush_held(Steady::now() + 150ms); });
    BOOST_TEST(took < 600ms);
    BOOST_TEST_REQUIRE(cap->users.size() == 2u);
    BOOST_TEST(cap->users[1].user == "uid-1007"); // the deadline passed first
}

// A report held past its interval's end: the metrics still count each byte
// once, however its flows' records were named.
BOOST_FIXTURE_TEST_CASE(metrics_count_a_held_reports_bytes_once, Fixture) {
    boost::asio::io_context io;
    auto m = make_metrics_sink({"", "", "1.2.3"}, io);
    MetricsSink* metrics = m.get();
    sinks.push_back(std::move(m));
    auto interval_end = [&] {
        for (auto& s : sinks)
            s->interval_end();
    };
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1008, 1000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1008, 5000));
    agg.report(at(10), 1.0); // held
    interval_end();
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1008, 7000));
    let_names_answer(1008);
    agg.release_held(Steady::now()); // the first interval's report, in the second interval
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1008, 8000));
    agg.report(at(20), 1.0);
    interval_end();

    BOOST_TEST_REQUIRE(cap->users.size() == 2u);
    uint64_t reported = cap->users[0].tx_bytes + cap->users[1].tx_bytes;
    BOOST_TEST(reported == 8000u);
    // Over every series of the uid: "uid-1008" (its first records) and "user1008".
    std::istringstream in(metrics->exposition());
    uint64_t sum = 0;
    for (std::string line; std::getline(in, line);)
        if (line.rfind("pdtt_transmit_bytes_total{", 0) == 0 && line.find("uid=\"1008\"") != std::string::npos)
            sum += std::stoull(line.substr(line.rfind(' ') + 1));
    BOOST_TEST(sum == reported);
    sinks.pop_back(); // before io, which its timers live in
}
