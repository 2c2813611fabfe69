// A slow name service (an LDAP server that takes seconds): the agent's
// loop never waits for it, and a user's report waits for the name, bounded,
// rather than going out as uid-N. The slowness is the
// test-only PDTT_TEST_NAME_DELAY_MS, which makes every passwd lookup of the
// agent that much slower.
#define BOOST_TEST_MODULE slow_names
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <cstdlib>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

// The environment of the agents started while it lives (they inherit it).
struct SlowNames {
    explicit SlowNames(const char* ms) { ::setenv("PDTT_TEST_NAME_DELAY_MS", ms, 1); }
    ~SlowNames() { ::unsetenv("PDTT_TEST_NAME_DELAY_MS"); }
};

size_t count(const std::vector<json::object>& recs, const std::string& type) {
    return std::count_if(recs.begin(), recs.end(), [&](const auto& r) { return str(r, "type") == type; });
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_report_waits_for_a_slow_name_and_the_loop_keeps_serving, Lab) {
    SlowNames slow("3000");
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    transfer(alice, link.b_ip4(), 50'000, 10'000);
    const size_t stats_after_transfer = count(parse_lines(agent->out()), "agent_stats");

    // The report arrives, named, once the lookup answers (3 s, plus an interval).
    auto alice_report = [&]() -> std::optional<json::object> {
        for (const auto& r : parse_lines(agent->out()))
            if (str(r, "type") == "user_report" && i64(r, "uid") == alice.uid())
                return r;
        return std::nullopt;
    };
    BOOST_TEST_REQUIRE(wait_until([&] { return alice_report().has_value(); }, 12s), "no user_report for alice");
    const auto recs = parse_lines(agent->out());
    BOOST_TEST(str(*alice_report(), "user") == alice.name());
    // Meanwhile the loop went on: an interval's agent_stats each second.
    BOOST_TEST(count(recs, "agent_stats") >= stats_after_transfer + 2,
               "agent_stats while the name was looked up: " << count(recs, "agent_stats") - stats_after_transfer);

    agent->signal(SIGINT);
    auto st = agent->wait(2s);
    BOOST_REQUIRE_MESSAGE(st.has_value(), "agent still running 2 s after SIGINT");
    BOOST_TEST(*st == 0, "exit status " << *st << "; stderr: " << agent->err());

    // Never as uid-N: not in any record, not as a file.
    const std::string placeholder = "uid-" + std::to_string(alice.uid());
    uint64_t tx = 0;
    for (const auto& r : parse_lines(agent->out())) {
        if (r.contains("uid") && r.at("uid").is_int64() && i64(r, "uid") == alice.uid())
            BOOST_TEST(str(r, "user") == alice.name(), json::serialize(r));
        if (str(r, "type") == "user_report" && i64(r, "uid") == alice.uid())
            tx += u64(r, "tx_bytes");
    }
    BOOST_TEST(tx >= 50'000u, "alice's reports carry her bytes: " << tx);
    BOOST_TEST(!fs::exists(dir / ("pdtt-" + placeholder + ".log")), "a file for " << placeholder);
    BOOST_TEST(read_user_file(user_file(alice)).tx >= 50'000u);
}
