// /etc/subuid parsing and the raw uid -> range owner mapping (a
// subordinate uid is reported as the user who owns its range). No root.
#define BOOST_TEST_MODULE subuid
#include <boost/test/unit_test.hpp>

#include "subuid.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <unistd.h>

using pdtt::SubuidMap;

namespace {

// Names the tests know, instead of the host's passwd.
std::optional<uint32_t> fake_users(const std::string& name) {
    static const std::map<std::string, uint32_t> users{{"alice", 1001}, {"bob", 1002}};
    auto it = users.find(name);
    return it == users.end() ? std::nullopt : std::optional<uint32_t>(it->second);
}

SubuidMap parse(const std::string& text, std::vector<std::string>* problems = nullptr) {
    return SubuidMap::parse(text, fake_users, problems);
}

} // namespace

BOOST_AUTO_TEST_CASE(names_and_numeric_owners_map_their_ranges) {
    std::vector<std::string> problems;
    SubuidMap m = parse("alice:100000:65536\n1002:165536:65536\n", &problems);
    BOOST_TEST(problems.empty());
    BOOST_TEST(m.ranges().size() == 2u);
    BOOST_TEST(m.owner(100000) == 1001u, "first uid of alice's range");
    BOOST_TEST(m.owner(100005) == 1001u);
    BOOST_TEST(m.owner(165535) == 1001u, "last uid of alice's range");
    BOOST_TEST(m.owner(165536) == 1002u, "bob's range, owner given as a number");
    BOOST_TEST(m.owner(231071) == 1002u);
    BOOST_TEST(m.owner(231072) == 231072u, "past every range: itself");
    BOOST_TEST(m.owner(99999) == 99999u, "before every range: itself");
    BOOST_TEST(m.owner(1001) == 1001u, "an ordinary uid: itself");
}

BOOST_AUTO_TEST_CASE(comments_blank_lines_and_whitespace_are_skipped) {
    std::vector<std::string> problems;
    SubuidMap m = parse("# subordinate uids\n\n   \nalice:200000:10\r\n  # indented comment\n", &problems);
    BOOST_TEST(problems.empty(), "problems: " << (problems.empty() ? "" : problems.front()));
    BOOST_TEST(m.ranges().size() == 1u);
    BOOST_TEST(m.owner(200009) == 1001u);
    BOOST_TEST(m.owner(200010) == 200010u);
}

BOOST_AUTO_TEST_CASE(bad_lines_are_left_out_and_named) {
    struct Case {
        const char* line;
        const char* why;
    };
    const Case bad[] = {
        {"alice:100000", "two fields"},
        {"alice:100000:10:5", "four fields"},
        {"alice:x:10", "FIRST not a number"},
        {"alice:100000:ten", "COUNT not a number"},
        {"alice:100000:0", "an empty range"},
        {"alice:-5:10", "a negative FIRST"},
        {"alice:4294967290:10", "a range past the last uid"},
        {"nobody-here:100000:10", "an unknown user"},
        {":100000:10", "no owner"},
    };
    for (const Case& c : bad) {
        std::vector<std::string> problems;
        SubuidMap m = parse(std::string(c.line) + "\nbob:300000:10\n", &problems);
        BOOST_TEST_CONTEXT(c.why << ": '" << c.line << "'") {
            BOOST_TEST(problems.size() == 1u);
            if (!problems.empty())
                BOOST_TEST(problems.front().rfind("line 1: ", 0) == 0u, problems.front());
            BOOST_TEST(m.ranges().size() == 1u, "the good line after it still counts");
            BOOST_TEST(m.owner(300000) == 1002u);
            BOOST_TEST(m.owner(100000) == 100000u);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_overlapping_range_is_left_out_the_first_wins) {
    std::vector<std::string> problems;
    SubuidMap m = parse("alice:100000:100\nbob:100050:100\nbob:99990:11\nbob:100100:10\n", &problems);
    BOOST_TEST(problems.size() == 2u, "lines 2 and 3 overlap alice's");
    BOOST_TEST(m.ranges().size() == 2u);
    BOOST_TEST(m.owner(100050) == 1001u, "the overlap stays alice's");
    BOOST_TEST(m.owner(100100) == 1002u, "bob's adjacent range (line 4) counts");
    BOOST_TEST(m.owner(99990) == 99990u);
    BOOST_TEST(m.owner(100109) == 1002u);
    BOOST_TEST(m.owner(100110) == 100110u);
}

BOOST_AUTO_TEST_CASE(many_ranges_out_of_order_are_searched) {
    std::string text;
    for (int i = 99; i >= 0; i--) // useradd appends; an admin may not
        text += std::to_string(5000 + i) + ":" + std::to_string(100000 + i * 65536) + ":65536\n";
    SubuidMap m = parse(text);
    BOOST_TEST_REQUIRE(m.ranges().size() == 100u);
    for (size_t i = 1; i < m.ranges().size(); i++)
        BOOST_TEST(m.ranges()[i - 1].first < m.ranges()[i].first, "sorted");
    for (uint32_t i = 0; i < 100; i++) {
        BOOST_TEST(m.owner(100000 + i * 65536) == 5000 + i);
        BOOST_TEST(m.owner(100000 + i * 65536 + 65535) == 5000 + i);
    }
}

BOOST_AUTO_TEST_CASE(the_file_is_read_again_when_it_changes) {
    namespace fs = std::filesystem;
    fs::path p = fs::temp_directory_path() / ("pdtt-subuid-" + std::to_string(::getpid()));
    fs::remove(p);
    pdtt::SubuidFile f(p.string());
    auto m = f.load(fake_users, nullptr);
    BOOST_TEST(m->empty(), "a missing file: no ranges");
    BOOST_TEST(!f.changed());
    std::ofstream(p) << "alice:100000:10\n";
    BOOST_TEST(f.changed(), "created");
    m = f.load(fake_users, nullptr);
    BOOST_TEST(m->owner(100001) == 1001u);
    BOOST_TEST(!f.changed());
    // Replaced the way useradd does (a new file renamed over the old one).
    fs::path tmp = p.string() + "+";
    std::ofstream(tmp) << "bob:100000:10\n";
    fs::rename(tmp, p);
    BOOST_TEST(f.changed(), "replaced");
    m = f.load(fake_users, nullptr);
    BOOST_TEST(m->owner(100001) == 1002u);
    fs::remove(p);
    BOOST_TEST(f.changed(), "removed");
    BOOST_TEST(f.load(fake_users, nullptr)->empty());
}

BOOST_AUTO_TEST_CASE(the_watcher_rereads_off_the_caller_and_hands_the_new_map_over) {
    namespace fs = std::filesystem;
    fs::path p = fs::temp_directory_path() / ("pdtt-subuid-w-" + std::to_string(::getpid()));
    std::ofstream(p) << "alice:100000:10\n";
    pdtt::SubuidWatcher w(p.string(), fake_users);
    auto m = w.load_now(nullptr);
    BOOST_TEST(m->owner(100000) == 1001u);
    BOOST_TEST(!w.poll(nullptr), "unchanged: nothing new");
    fs::path tmp = p.string() + "+";
    std::ofstream(tmp) << "bob:100000:10\nbad line\n";
    fs::rename(tmp, p);
    std::shared_ptr<const SubuidMap> next;
    std::vector<std::string> problems;
    for (int i = 0; i < 200 && !next; i++) {
        next = w.poll(&problems);
        if (!next)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    BOOST_TEST_REQUIRE(next != nullptr, "the re-read was handed over");
    BOOST_TEST(next->owner(100000) == 1002u);
    BOOST_TEST(problems.size() == 1u, "the bad line named");
    BOOST_TEST(!w.poll(nullptr), "handed over once");
    fs::remove(p);
}
