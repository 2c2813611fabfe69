// UserNames: NSS lookups on a worker thread, the cache, and a uid seen
// for the first time, which has no name until its lookup answers. No root.
#define BOOST_TEST_MODULE names
#include <boost/test/unit_test.hpp>

#include "names.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using pdtt::UserNames;

namespace {

std::atomic<int> calls{0};
std::atomic<int> delay_ms{0};
std::atomic<bool> known{true};
std::atomic<std::thread::id> looked_up_on{};

// A name service that takes delay_ms to answer "user<uid>".
bool slow_passwd(uint32_t uid, std::string& name) {
    looked_up_on = std::this_thread::get_id();
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    if (!known)
        return false;
    name = "user" + std::to_string(uid);
    return true;
}

struct Reset {
    Reset() {
        calls = 0;
        delay_ms = 0;
        known = true;
    }
};

template <class F> std::chrono::milliseconds timed(F&& f) {
    auto t0 = Steady::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0);
}

} // namespace

// The event loop asks and never waits: a first sight has no name yet.
BOOST_FIXTURE_TEST_CASE(a_lookup_runs_on_a_worker_and_nobody_waits_for_it_but_wait, Reset) {
    delay_ms = 200;
    UserNames names(600s, &slow_passwd);
    std::optional<std::string> k;
    std::string n;
    auto took = timed([&] {
        k = names.known(1001);
        n = names.name(1001);
    });
    BOOST_TEST(!k.has_value()); // pending: no name, and no placeholder cached
    BOOST_TEST(n == "uid-1001");
    BOOST_TEST(took < 50ms);
    bool answered = false;
    took = timed([&] { answered = names.wait(1001, Steady::now() + 2s); });
    BOOST_TEST(answered);
    BOOST_TEST(took >= 100ms); // the one lookup already running, not a second one
    BOOST_TEST((looked_up_on.load() != std::this_thread::get_id()));
    took = timed([&] { k = names.known(1001); }); // cached: at once, no second lookup
    BOOST_TEST((k && *k == "user1001"));
    BOOST_TEST(took < 50ms);
    BOOST_TEST(calls == 1);
}

BOOST_FIXTURE_TEST_CASE(a_stuck_lookup_costs_a_wait_its_bound_and_its_late_answer_is_kept, Reset) {
    delay_ms = 800;
    UserNames names(600s, &slow_passwd);
    bool answered = true;
    auto took = timed([&] { answered = names.wait(1002, Steady::now() + 200ms); });
    BOOST_TEST(!answered);
    BOOST_TEST(took >= 180ms);
    BOOST_TEST(took < 600ms);
    BOOST_TEST(names.name(1002) == "uid-1002");
    std::this_thread::sleep_for(800ms);         // the lookup answers late
    BOOST_TEST(names.name(1002) == "user1002"); // the placeholder was not cached
    BOOST_TEST(calls == 1);
}

BOOST_FIXTURE_TEST_CASE(an_expired_name_is_served_at_once_while_it_is_looked_up_again, Reset) {
    UserNames names(0s, &slow_passwd); // every entry expired at once
    BOOST_TEST(names.wait(1003, Steady::now() + 2s));
    BOOST_TEST(names.name(1003) == "user1003");
    delay_ms = 500;
    known = false; // the next answer: no such user
    std::string n;
    auto took = timed([&] { n = names.name(1003); });
    BOOST_TEST(n == "user1003"); // the old name, without waiting
    BOOST_TEST(took < 50ms);
    std::this_thread::sleep_for(700ms);
    BOOST_TEST(names.name(1003) == "uid-1003"); // then the refreshed answer
}

BOOST_FIXTURE_TEST_CASE(unattributed_and_out_of_range_uids_need_no_lookup, Reset) {
    UserNames names(600s, &slow_passwd);
    BOOST_TEST(names.known(-1).value_or("") == "unattributed"); // known at once
    BOOST_TEST(names.name(-1) == "unattributed");
    BOOST_TEST(names.name(int64_t{1} << 40) == "uid-1099511627776");
    BOOST_TEST(calls == 0);
}

// Exit is not held up by a name service that never answers.
BOOST_FIXTURE_TEST_CASE(destroying_with_a_lookup_in_flight_does_not_wait_for_it, Reset) {
    delay_ms = 1500;
    auto took = timed([] {
        UserNames names(600s, &slow_passwd);
        names.wait(1004, Steady::now() + 50ms);
    });
    BOOST_TEST(took < 500ms);
}
