// Hostile log directories: logs go to a shared sticky
// directory where an unprivileged user has planted a FIFO, a file of his
// own, a directory, a symlink and a hard link under the names the agent
// will use. The agent writes none of them, says so naming each, keeps
// reporting everywhere else, and stops within 2 s.
#define BOOST_TEST_MODULE hostile_logs
#include <boost/test/unit_test.hpp>

#include "agent_lab.hpp"

#include <sys/stat.h>

#include <fstream>

using namespace pdtt::test;

namespace {

struct Global {
    Global() { cleanup_stale(); }
};
BOOST_TEST_GLOBAL_FIXTURE(Global);

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

BOOST_FIXTURE_TEST_CASE(planted_log_names_are_refused_and_the_agent_keeps_going, Lab) {
    TestUser carol{"pdtt-test3"}, dave{"pdtt-test4"}, erin{"pdtt-test5"};
    // The lab's log directory made shared like /tmp: everyone may create, sticky.
    fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);
    auto log_of = [&](const TestUser& u) { return user_file(u); };

    // bob plants, as bob.
    auto as_bob = [&](const std::string& cmd) {
        run_ok("setpriv --reuid " + std::to_string(bob.uid()) + " --regid " + std::to_string(bob.gid()) +
               " --clear-groups sh -c '" + cmd + "'");
    };
    const fs::path bobs = dir / "bobs-file";
    as_bob("echo bob > " + bobs.string() + " && chmod 0644 " + bobs.string());
    as_bob("mkfifo -m 0666 " + log_of(alice).string()); // would block an open() for good
    as_bob("echo mine > " + log_of(bob).string() + " && chmod 0666 " + log_of(bob).string()); // his own
    as_bob("mkdir " + log_of(carol).string());
    as_bob("ln -s " + bobs.string() + " " + log_of(dave).string());
    as_bob("ln " + bobs.string() + " " + log_of(erin).string());

    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1"});
    for (const TestUser* u : {&alice, &bob, &carol, &dave, &erin})
        transfer(*u, link.b_ip4(), 50'000, 10'000);
    // Two more intervals: refused files are retried, and the agent still reports.
    const auto stats_before = [&] {
        size_t n = 0;
        for (const auto& r : parse_lines(agent->out()))
            n += str(r, "type") == "agent_stats";
        return n;
    };
    const size_t seen = stats_before();
    BOOST_TEST(wait_until([&] { return stats_before() >= seen + 2; }, 10s), "agent_stats kept coming");

    tcp_settled(host);
    tcp_settled(peer);
    agent->signal(SIGINT);
    auto st = agent->wait(2s);
    BOOST_REQUIRE_MESSAGE(st.has_value(), "agent still running 2 s after SIGINT");
    BOOST_TEST(*st == 0, "exit status " << *st << "; stderr: " << agent->err());
    const std::string err = agent->err();
    auto recs = parse_lines(agent->out());

    // One line per planted name, naming it and what it is.
    const std::pair<const TestUser*, std::string> kinds[] = {
        {&alice, "it is a FIFO"},
        {&bob, "it is owned by uid " + std::to_string(bob.uid())},
        {&carol, "it is a directory"},
        {&dave, "it is a symbolic link"},
        {&erin, "it is owned by uid " + std::to_string(bob.uid())}};
    for (const auto& [u, why] : kinds) {
        const std::string line = "log file " + log_of(*u).string() + " refused: " + why;
        BOOST_TEST(err.find(line) != std::string::npos, "missing: " << line << "\nstderr: " << err);
        size_t n = 0;
        for (size_t at = 0; (at = err.find(log_of(*u).string() + " refused", at)) != std::string::npos; at++)
            n++;
        BOOST_TEST(n == 1u, log_of(*u) << " refused " << n << " times on stderr, want one line");
    }
    // Nothing written through any of them.
    BOOST_TEST(slurp(bobs) == "bob\n");
    BOOST_TEST(slurp(log_of(bob)) == "mine\n");
    BOOST_TEST(fs::is_empty(log_of(carol)));
    BOOST_TEST(fs::is_fifo(fs::symlink_status(log_of(alice))));

    // Every other sink kept reporting: each user's bytes in JSON, errors counted.
    std::map<int64_t, uint64_t> tx;
    uint64_t sink_errors = 0;
    for (const auto& r : recs) {
        if (str(r, "type") == "user_report")
            tx[i64(r, "uid")] += u64(r, "tx_bytes");
        if (str(r, "type") == "agent_stats")
            sink_errors = std::max(sink_errors, u64(r, "sink_errors"));
    }
    for (const TestUser* u : {&alice, &bob, &carol, &dave, &erin})
        BOOST_TEST(tx[u->uid()] >= 50'000u, u->name() << " tx " << tx[u->uid()]);
    BOOST_TEST(sink_errors >= 5u, "sink_errors " << sink_errors);
}
