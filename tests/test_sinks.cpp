#define BOOST_TEST_MODULE sinks
#include <boost/test/unit_test.hpp>

#include "errors.hpp"
#include "factory.hpp"
#include "format.hpp"
#include "sample_records.hpp"

#include <boost/json.hpp>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace pdtt;
using pdtt::test::at;
using pdtt::test::UtcZone;

namespace {

// A fresh directory under /tmp, removed at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/pdtt-sinks-XXXXXX";
        BOOST_REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The user and rows of the README's file example.
UserReport spec_report() {
    UserReport r;
    r.ts = at();
    r.user = "alice";
    r.uid = 1000;
    r.interval_s = 10;
    r.tx_bytes = 524288 + 262144;
    r.rx_bytes = 1048576 + 131072;
    r.tx_packets = 600;
    r.rx_packets = 900;
    r.flows = 2;
    r.connections = {{"192.168.1.100", "93.184.216.34", 524288, 1048576}, {"192.168.1.100", "8.8.8.8", 262144, 131072}};
    return r;
}

const char* const kSpecReport = "=== Network Statistics Report [2024-01-15 10:30:00] ===\n"
                                "Connection: 192.168.1.100 -> 93.184.216.34\n"
                                "  TX: 524288 bytes | RX: 1048576 bytes | Total: 1572864 bytes\n"
                                "---\n"
                                "Connection: 192.168.1.100 -> 8.8.8.8\n"
                                "  TX: 262144 bytes | RX: 131072 bytes | Total: 393216 bytes\n"
                                "---\n"
                                "Total traffic: 1966080 bytes\n";

// Captures what a FILE* sink writes.
struct Capture {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    ~Capture() {
        std::fclose(f);
        std::free(buf);
    }
    std::string text() {
        std::fflush(f);
        return std::string(buf, len);
    }
};

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

std::vector<std::string> keys_of(const json::object& o) {
    std::vector<std::string> k;
    for (const auto& kv : o)
        k.emplace_back(kv.key());
    return k;
}

FlowRecord flow(FlowEvent type) { return test::sample_flow(type); }

} // namespace

BOOST_AUTO_TEST_SUITE(format)

BOOST_AUTO_TEST_CASE(rfc3339_has_microseconds_and_z) {
    BOOST_TEST(rfc3339_utc(at(123456)) == "2024-01-15T10:30:00.123456Z");
    BOOST_TEST(rfc3339_utc(at(0)) == "2024-01-15T10:30:00.000000Z");
    BOOST_TEST(rfc3339_utc(at(-1)) == "2024-01-15T10:29:59.999999Z");
}

// It keeps the text of the last two seconds: records of three seconds, interleaved.
BOOST_AUTO_TEST_CASE(rfc3339_of_interleaved_seconds) {
    for (int round = 0; round < 2; ++round) {
        BOOST_TEST(rfc3339_utc(at(1)) == "2024-01-15T10:30:00.000001Z");
        BOOST_TEST(rfc3339_utc(at(-2)) == "2024-01-15T10:29:59.999998Z");
        BOOST_TEST(rfc3339_utc(at(2)) == "2024-01-15T10:30:00.000002Z");
        BOOST_TEST(rfc3339_utc(at(1'000'003)) == "2024-01-15T10:30:01.000003Z");
        BOOST_TEST(rfc3339_utc(at(4)) == "2024-01-15T10:30:00.000004Z");
        BOOST_TEST(rfc3339_utc(at(-5)) == "2024-01-15T10:29:59.999995Z");
        BOOST_TEST(rfc3339_utc(at(1'000'006)) == "2024-01-15T10:30:01.000006Z");
    }
}

BOOST_AUTO_TEST_CASE(local_datetime_follows_tz) {
    UtcZone utc;
    BOOST_TEST(local_datetime(at(999999)) == "2024-01-15 10:30:00");
    // Perth (UTC+8, no DST) as a POSIX TZ string: no tzdata needed, so it always runs.
    setenv("TZ", "AWST-8", 1);
    tzset();
    std::string perth = local_datetime(at());
    UtcZone back;
    BOOST_TEST(perth == "2024-01-15 18:30:00");
}

BOOST_AUTO_TEST_CASE(human_units) {
    BOOST_TEST(human_bytes(0) == "0 B");
    BOOST_TEST(human_bytes(1023) == "1023 B");
    BOOST_TEST(human_bytes(1024) == "1.0 KiB");
    BOOST_TEST(human_bytes(1536 * 1024) == "1.5 MiB");
    BOOST_TEST(human_bytes(uint64_t{5} << 30) == "5.0 GiB");
    BOOST_TEST(human_bytes(UINT64_MAX) == "16.0 EiB");
}

BOOST_AUTO_TEST_CASE(username_reduced_to_safe_characters) {
    BOOST_TEST(sanitize_username("alice") == "alice");
    BOOST_TEST(sanitize_username("a.b_c-D9") == "a.b_c-D9");
    BOOST_TEST(sanitize_username("../../etc/passwd") == ".._.._etc_passwd");
    BOOST_TEST(sanitize_username("b\xc3\xa9"
                                 "a t") == "b__a_t");
    BOOST_TEST(sanitize_username("") == "_");
    BOOST_TEST(sanitize_username(".") == "_");
    BOOST_TEST(sanitize_username("..") == "__");
    BOOST_TEST(sanitize_username("/") == "_");
}

BOOST_AUTO_TEST_CASE(utf8_repair) {
    BOOST_TEST(valid_utf8("plain") == "plain");
    BOOST_TEST(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    BOOST_TEST(valid_utf8("a\xff\xfe"
                          "b") == "a\xef\xbf\xbd\xef\xbf\xbd"
                                  "b");
    BOOST_TEST(valid_utf8("\x80") == "\xef\xbf\xbd");                                 // lone continuation
    BOOST_TEST(valid_utf8("x\xe2\x82") == "x\xef\xbf\xbd");                           // truncated sequence
    BOOST_TEST(valid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");                 // overlong '/'
    BOOST_TEST(valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); // surrogate
    BOOST_TEST(valid_utf8("\xf4\x90\x80\x80").find("\xf4") == std::string::npos);     // > U+10FFFF
    BOOST_TEST(valid_utf8(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(file_sink)

BOOST_AUTO_TEST_CASE(spec_example_byte_for_byte) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "traffic").string());
    sink->user_report(spec_report());
    BOOST_TEST(slurp(dir.path / "traffic-alice.log") == kSpecReport);
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(file_mode_is_0640) {
    TempDir dir;
    auto sink = make_file_sink((dir.path / "t").string());
    mode_t old = umask(0);
    sink->user_report(spec_report());
    umask(old);
    auto perms = fs::status(dir.path / "t-alice.log").permissions();
    BOOST_TEST(static_cast<int>(perms) == 0640);
}

BOOST_AUTO_TEST_CASE(reports_append_and_users_get_own_files) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "pdtt").string());
    sink->user_report(spec_report());
    UserReport bob;
    bob.ts = at(5'000'000);
    bob.user = "bob";
    bob.tx_bytes = 10;
    bob.rx_bytes = 5;
    bob.connections = {{"10.0.0.1", "10.0.0.2", 10, 5}};
    sink->user_report(bob);
    sink->user_report(spec_report());
    BOOST_TEST(slurp(dir.path / "pdtt-alice.log") == std::string(kSpecReport) + kSpecReport);
    BOOST_TEST(slurp(dir.path / "pdtt-bob.log") == "=== Network Statistics Report [2024-01-15 10:30:05] ===\n"
                                                   "Connection: 10.0.0.1 -> 10.0.0.2\n"
                                                   "  TX: 10 bytes | RX: 5 bytes | Total: 15 bytes\n"
                                                   "---\n"
                                                   "Total traffic: 15 bytes\n");
}

BOOST_AUTO_TEST_CASE(report_without_rows_has_only_header_and_total) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "pdtt").string());
    UserReport r;
    r.ts = at();
    r.user = kUnattributedUser;
    r.uid = kUnattributedUid;
    r.rx_bytes = 7;
    sink->user_report(r);
    BOOST_TEST(slurp(dir.path / "pdtt-unattributed.log") ==
               "=== Network Statistics Report [2024-01-15 10:30:00] ===\nTotal traffic: 7 bytes\n");
}

BOOST_AUTO_TEST_CASE(hostile_usernames_stay_in_directory) {
    TempDir dir;
    fs::create_directory(dir.path / "logs");
    auto sink = make_file_sink((dir.path / "logs" / "p").string());
    for (const char* name : {"../../x", "..", ".", "a/b", ""}) {
        UserReport r = spec_report();
        r.user = name;
        sink->user_report(r);
    }
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(dir.path / "logs"))
        files.insert(e.path().filename().string());
    BOOST_TEST((files == std::set<std::string>{"p-.._.._x.log", "p-__.log", "p-_.log", "p-a_b.log"}));
    std::set<std::string> top;
    for (const auto& e : fs::directory_iterator(dir.path))
        top.insert(e.path().filename().string());
    BOOST_TEST((top == std::set<std::string>{"logs"}));
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(symlinked_log_is_refused_and_counted) {
    TempDir dir;
    fs::path target = dir.path / "target";
    std::ofstream(target) << "keep";
    fs::create_symlink(target, dir.path / "p-alice.log");
    auto sink = make_file_sink((dir.path / "p").string());
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 1u);
    BOOST_TEST(slurp(target) == "keep");
}

BOOST_AUTO_TEST_CASE(reopen_after_rotation_creates_new_file) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "p").string());
    sink->user_report(spec_report());
    fs::rename(dir.path / "p-alice.log", dir.path / "p-alice.log.1");
    sink->user_report(spec_report()); // still the old fd: goes to the rotated file
    sink->reopen();
    sink->user_report(spec_report());
    BOOST_TEST(slurp(dir.path / "p-alice.log.1") == std::string(kSpecReport) + kSpecReport);
    BOOST_TEST(slurp(dir.path / "p-alice.log") == kSpecReport);
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(open_error_is_counted_and_retried) {
    UtcZone utc;
    TempDir dir;
    fs::path logs = dir.path / "logs";
    fs::create_directory(logs);
    auto sink = make_file_sink((logs / "p").string());
    fs::remove(logs);
    sink->user_report(spec_report());
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 2u);
    fs::create_directory(logs);
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 2u);
    BOOST_TEST(slurp(logs / "p-alice.log") == kSpecReport);
}

BOOST_AUTO_TEST_CASE(write_error_is_counted_and_fd_reopened) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "p").string());
    sink->user_report(spec_report());
    // RLIMIT_FSIZE makes write() fail with EFBIG, even for root.
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = 16;
    setrlimit(RLIMIT_FSIZE, &small);
    sink->user_report(spec_report());
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    BOOST_TEST(sink->errors() == 1u);
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 1u);
    BOOST_TEST(slurp(dir.path / "p-alice.log") == std::string(kSpecReport) + kSpecReport);
}

// Each kind of name a user could plant where logs go: refused (counted),
// nothing written through it, and the other users' files still written.
BOOST_AUTO_TEST_CASE(planted_names_are_refused_and_others_still_written) {
    UtcZone utc;
    TempDir dir;
    fs::path target = dir.path / "target";
    std::ofstream(target) << "keep";
    BOOST_REQUIRE(mkfifo((dir.path / "p-fifo.log").c_str(), 0666) == 0); // no reader: must not block
    fs::create_directory(dir.path / "p-dir.log");
    fs::create_symlink(target, dir.path / "p-link.log");
    fs::create_hard_link(target, dir.path / "p-hard.log");
    auto sink = make_file_sink((dir.path / "p").string());
    for (const char* user : {"fifo", "dir", "link", "hard"}) {
        UserReport r = spec_report();
        r.user = user;
        sink->user_report(r);
        sink->user_report(r); // retried, and counted again
    }
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 8u);
    BOOST_TEST(slurp(target) == "keep");
    BOOST_TEST(fs::is_empty(dir.path / "p-dir.log"));
    BOOST_TEST(slurp(dir.path / "p-alice.log") == kSpecReport);
}

BOOST_AUTO_TEST_CASE(refused_file_is_written_once_fixed) {
    UtcZone utc;
    TempDir dir;
    BOOST_REQUIRE(mkfifo((dir.path / "p-alice.log").c_str(), 0666) == 0);
    auto sink = make_file_sink((dir.path / "p").string());
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 1u);
    fs::remove(dir.path / "p-alice.log");
    sink->user_report(spec_report());
    BOOST_TEST(sink->errors() == 1u);
    BOOST_TEST(slurp(dir.path / "p-alice.log") == kSpecReport);
}

// The path given is resolved once: a directory swapped in later under the
// same name is not where the logs go.
BOOST_AUTO_TEST_CASE(directory_is_held_by_descriptor) {
    UtcZone utc;
    TempDir dir;
    fs::create_directory(dir.path / "logs");
    auto sink = make_file_sink((dir.path / "logs" / "p").string());
    fs::rename(dir.path / "logs", dir.path / "moved");
    fs::create_directory(dir.path / "logs");
    sink->user_report(spec_report());
    BOOST_TEST(slurp(dir.path / "moved" / "p-alice.log") == kSpecReport);
    BOOST_TEST(!fs::exists(dir.path / "logs" / "p-alice.log"));
}

BOOST_AUTO_TEST_CASE(open_files_are_bounded) {
    UtcZone utc;
    TempDir dir;
    auto open_fds = [] { return std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{}); };
    auto sink = make_file_sink((dir.path / "p").string(), 2);
    auto before = open_fds();
    for (int round = 0; round < 2; ++round)
        for (const char* user : {"a", "b", "c", "d"}) {
            UserReport r = spec_report();
            r.user = user;
            sink->user_report(r);
        }
    BOOST_TEST(open_fds() - before <= 2);
    for (const char* user : {"a", "b", "c", "d"})
        BOOST_TEST(slurp(dir.path / ("p-" + std::string(user) + ".log")) == std::string(kSpecReport) + kSpecReport);
    BOOST_TEST(sink->errors() == 0u);
}

BOOST_AUTO_TEST_CASE(short_write_is_rolled_back) {
    UtcZone utc;
    TempDir dir;
    auto sink = make_file_sink((dir.path / "p").string());
    sink->user_report(spec_report());
    // Room for part of the next report only: write() stops short, then fails.
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = std::strlen(kSpecReport) + 20;
    setrlimit(RLIMIT_FSIZE, &small);
    sink->user_report(spec_report());
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    BOOST_TEST(sink->errors() == 1u);
    BOOST_TEST(slurp(dir.path / "p-alice.log") == kSpecReport);
}

BOOST_AUTO_TEST_CASE(constructor_rejects_missing_directory) {
    TempDir dir;
    std::string missing = (dir.path / "nope").string();
    try {
        make_file_sink(missing + "/pdtt");
        BOOST_FAIL("no error for a missing directory");
    } catch (const Error& e) {
        BOOST_TEST(e.exit_code() == kExitUsage);
        BOOST_TEST(error_line(e.what()) ==
                   "pdtt-agent: log directory " + missing + " does not exist (create it or use -l PREFIX)");
    }
}

BOOST_AUTO_TEST_CASE(constructor_rejects_file_as_directory) {
    TempDir dir;
    std::ofstream(dir.path / "file") << "x";
    try {
        make_file_sink((dir.path / "file" / "pdtt").string());
        BOOST_FAIL("no error for a file as directory");
    } catch (const Error& e) {
        BOOST_TEST(e.exit_code() == kExitUsage);
        BOOST_TEST(std::string(e.what()).find("is not a directory") != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(json_sink)

BOOST_AUTO_TEST_CASE(every_record_type_has_its_keys_in_order) {
    Capture cap;
    auto sink = make_json_sink(cap.f);
    sink->flow_open(flow(FlowEvent::open));
    sink->flow_delta(flow(FlowEvent::delta));
    sink->flow_close(flow(FlowEvent::close));
    sink->user_report(spec_report());
    AgentStats st;
    st.ts = at(1);
    st.interval_s = 10;
    st.events = 1, st.ring_drops = 2, st.flow_table_full = 3, st.aux_table_full = 4;
    st.flows_active = 5, st.flow_table_size = 65536, st.sink_errors = 6;
    sink->agent_stats(st);
    sink->interval_end();
    auto lines = lines_of(cap.text());
    BOOST_REQUIRE(lines.size() == 5u);

    using K = std::vector<std::string>;
    K id = {"ts",  "flow_id", "iface", "user",   "uid",   "raw_uid", "pid",    "comm",  "cgroup",
            "job", "step",    "proto", "family", "local", "lport",   "remote", "rport", "direction"};
    K cnt = {"tx_bytes", "rx_bytes", "tx_packets", "rx_packets"};
    auto cat = [](K a, const K& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };
    std::vector<K> expected = {
        cat({"v", "type"}, id),
        cat(cat({"v", "type"}, id), cnt),
        cat(cat(cat({"v", "type"}, id), cnt),
            {"tcp_bytes_acked", "tcp_bytes_received", "tcp_bytes_retrans", "duration_ms"}),
        cat(cat({"v", "type", "ts", "user", "uid", "interval_s"}, cnt), {"flows", "connections"}),
        {"v", "type", "ts", "interval_s", "events", "ring_drops", "flow_table_full", "aux_table_full",
         "flow_share_full", "owner_deferred", "deltas_incomplete", "flows_active", "flow_table_size", "sink_errors",
         "interfaces_missing", "cgroups_unresolved"},
    };
    const char* types[] = {"flow_open", "flow_delta", "flow_close", "user_report", "agent_stats"};
    for (size_t i = 0; i < lines.size(); ++i) {
        json::object o = json::parse(lines[i]).as_object();
        BOOST_TEST(keys_of(o) == expected[i], "keys of " << types[i]);
        BOOST_TEST(o.at("v").as_int64() == 1);
        BOOST_TEST(o.at("type").as_string() == types[i]);
    }
    BOOST_TEST(lines[0] ==
               "{\"v\":1,\"type\":\"flow_open\",\"ts\":\"2024-01-15T10:30:00.123456Z\","
               "\"flow_id\":0,\"iface\":\"eth0\",\"user\":\"alice\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,"
               "\"comm\":\"rsync\",\"cgroup\":null,\"job\":null,\"step\":null,"
               "\"proto\":\"tcp\",\"family\":\"ipv4\",\"local\":\"192.168.1.100\",\"lport\":40000,"
               "\"remote\":\"93.184.216.34\",\"rport\":443,\"direction\":\"outbound\"}");

    json::object close = json::parse(lines[2]).as_object();
    BOOST_TEST(close.at("tx_bytes").to_number<uint64_t>() == 100u);
    BOOST_TEST(close.at("rx_packets").to_number<uint64_t>() == 4u);
    BOOST_TEST(close.at("tcp_bytes_received").to_number<uint64_t>() == 198u);
    BOOST_TEST(close.at("duration_ms").to_number<uint64_t>() == 1500u);

    json::object rep = json::parse(lines[3]).as_object();
    BOOST_TEST(rep.at("interval_s").to_number<double>() == 10.0);
    BOOST_TEST(lines[3].find("\"interval_s\":10,") != std::string::npos);
    BOOST_TEST(rep.at("tx_bytes").to_number<uint64_t>() == 786432u);
    BOOST_TEST(rep.at("flows").to_number<uint64_t>() == 2u);
    const json::array& conns = rep.at("connections").as_array();
    BOOST_REQUIRE(conns.size() == 2u);
    BOOST_TEST(keys_of(conns[0].as_object()) == (K{"local", "remote", "tx_bytes", "rx_bytes"}));
    BOOST_TEST(conns[1].at("remote").as_string() == "8.8.8.8");
    BOOST_TEST(conns[1].at("rx_bytes").to_number<uint64_t>() == 131072u);

    json::object stats = json::parse(lines[4]).as_object();
    BOOST_TEST(stats.at("flow_table_size").to_number<uint64_t>() == 65536u);
    BOOST_TEST(stats.at("sink_errors").to_number<uint64_t>() == 6u);
}

BOOST_AUTO_TEST_CASE(unknown_owner_is_null_and_direction_named) {
    Capture cap;
    auto sink = make_json_sink(cap.f);
    FlowRecord r = flow(FlowEvent::open);
    r.id.pid.reset();
    r.id.comm.reset();
    r.id.uid = kUnattributedUid;
    r.id.user = kUnattributedUser;
    r.id.direction = Direction::unknown;
    sink->flow_open(r);
    r.id.direction = Direction::inbound;
    sink->flow_open(r);
    sink->flush();
    auto lines = lines_of(cap.text());
    BOOST_REQUIRE(lines.size() == 2u);
    json::object o = json::parse(lines[0]).as_object();
    BOOST_TEST(o.at("pid").is_null());
    BOOST_TEST(o.at("comm").is_null());
    BOOST_TEST(o.at("uid").as_int64() == -1);
    BOOST_TEST(o.at("user").as_string() == "unattributed");
    BOOST_TEST(o.at("direction").as_string() == "unknown");
    BOOST_TEST(json::parse(lines[1]).at("direction").as_string() == "inbound");
}

BOOST_AUTO_TEST_CASE(hostile_strings_stay_valid_json) {
    Capture cap;
    auto sink = make_json_sink(cap.f);
    FlowRecord r = flow(FlowEvent::close);
    r.id.comm = "a\"b\\c\x01\n\xff\xfe";
    r.id.user = "\x80u]";
    sink->flow_close(r);
    UserReport u = spec_report();
    u.user = "x\"\\\x1b[31m\xc3";
    u.interval_s = 2.5;
    sink->user_report(u);
    sink->flush();
    auto lines = lines_of(cap.text());
    BOOST_REQUIRE(lines.size() == 2u); // no raw newline inside a line
    json::object o = json::parse(lines[0]).as_object();
    BOOST_TEST(o.at("comm").as_string() == "a\"b\\c\x01\n\xef\xbf\xbd\xef\xbf\xbd");
    BOOST_TEST(o.at("user").as_string() == "\xef\xbf\xbdu]");
    BOOST_TEST(keys_of(o)[0] == "v");
    BOOST_TEST(keys_of(o)[1] == "type");
    json::object rep = json::parse(lines[1]).as_object();
    BOOST_TEST(rep.at("user").as_string() == "x\"\\\x1b[31m\xef\xbf\xbd");
    BOOST_TEST(rep.at("interval_s").to_number<double>() == 2.5);
}

BOOST_AUTO_TEST_CASE(write_error_is_counted) {
    std::FILE* full = std::fopen("/dev/full", "w");
    BOOST_REQUIRE(full);
    auto sink = make_json_sink(full);
    sink->flow_open(flow(FlowEvent::open));
    sink->flush();
    BOOST_TEST(sink->errors() >= 1u);
    uint64_t after_first = sink->errors();
    sink->flow_open(flow(FlowEvent::open));
    sink->flush();
    BOOST_TEST(sink->errors() > after_first); // retried, failed again
    std::fclose(full);
}

BOOST_AUTO_TEST_CASE(pipe_gets_each_line_at_once) {
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    std::FILE* w = fdopen(fds[1], "w");
    auto sink = make_json_sink(w);
    sink->flow_open(flow(FlowEvent::open));
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf); // blocks forever if not flushed
    BOOST_REQUIRE(n > 0);
    BOOST_TEST(buf[n - 1] == '\n');
    BOOST_TEST(json::parse(std::string(buf, n - 1)).at("type").as_string() == "flow_open");
    std::fclose(w);
    close(fds[0]);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(text_sink)

BOOST_AUTO_TEST_CASE(one_row_per_user_and_a_health_line) {
    UtcZone utc;
    Capture cap;
    auto sink = make_text_sink(cap.f);
    sink->flow_open(flow(FlowEvent::open));
    sink->flow_close(flow(FlowEvent::close));
    BOOST_TEST(cap.text().empty()); // no per-flow lines

    UserReport alice = spec_report(); // 768 KiB tx, 1.1 MiB rx
    UserReport bob;
    bob.ts = at();
    bob.user = "bob";
    bob.tx_bytes = 1536 * 1024;
    bob.rx_bytes = 512;
    bob.flows = 7;
    sink->user_report(alice);
    sink->user_report(bob);
    AgentStats st;
    st.ts = at();
    st.interval_s = 10;
    st.events = 1234;
    st.ring_drops = 5;
    st.flow_table_full = 6;
    st.sink_errors = 7;
    sink->agent_stats(st);
    BOOST_TEST(cap.text().empty()); // printed only at interval_end
    sink->interval_end();

    auto lines = lines_of(cap.text());
    BOOST_REQUIRE(lines.size() == 5u);
    BOOST_TEST(lines[0] == "=== 2024-01-15 10:30:00 (10.0 s) ===");
    BOOST_TEST(lines[1].find("USER") == 0u);
    BOOST_TEST(lines[1].find("FLOWS") != std::string::npos);
    // alice moved more in total, so she comes first.
    BOOST_TEST(lines[2] == "alice              768.0 KiB     1.1 MiB     1.9 MiB       2");
    BOOST_TEST(lines[3] == "bob                  1.5 MiB       512 B     1.5 MiB       7");
    BOOST_TEST(lines[4] == "health: events 1234, ring drops 5, flow table full 6, sink errors 7");

    sink->interval_end(); // nothing new: prints nothing
    BOOST_TEST(lines_of(cap.text()).size() == 5u);
}

BOOST_AUTO_TEST_CASE(quiet_interval_says_no_traffic) {
    UtcZone utc;
    Capture cap;
    auto sink = make_text_sink(cap.f);
    AgentStats st;
    st.ts = at();
    st.interval_s = 10;
    sink->agent_stats(st);
    sink->interval_end();
    auto lines = lines_of(cap.text());
    BOOST_REQUIRE(lines.size() == 4u);
    BOOST_TEST(lines[2] == "(no traffic)");
}

BOOST_AUTO_TEST_CASE(control_characters_in_names_are_masked) {
    Capture cap;
    auto sink = make_text_sink(cap.f);
    UserReport u;
    u.ts = at();
    u.user = "ev\x1b[2Jil";
    sink->user_report(u);
    sink->interval_end();
    std::string out = cap.text();
    BOOST_TEST(out.find('\x1b') == std::string::npos);
    BOOST_TEST(out.find("ev?[2Jil") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(factory)

BOOST_AUTO_TEST_CASE(sinks_follow_config) {
    boost::asio::io_context io;
    TempDir dir;
    SinkSettings cfg;
    cfg.files = true;
    cfg.log_prefix = (dir.path / "pdtt").string();
    cfg.console = ConsoleFormat::json;
    BOOST_TEST(make_sinks(cfg, io).size() == 2u);
    cfg.console = ConsoleFormat::none;
    BOOST_TEST(make_sinks(cfg, io).size() == 1u);
    cfg.files = false;
    BOOST_TEST(make_sinks(cfg, io).empty());
    cfg.console = ConsoleFormat::text;
    BOOST_TEST(make_sinks(cfg, io).size() == 1u);
}

BOOST_AUTO_TEST_CASE(no_files_skips_directory_check) {
    boost::asio::io_context io;
    SinkSettings cfg;
    cfg.files = true;
    cfg.log_prefix = "/nonexistent-pdtt-dir/pdtt";
    cfg.console = ConsoleFormat::none;
    BOOST_CHECK_THROW(make_sinks(cfg, io), Error);
    cfg.files = false;
    BOOST_CHECK_NO_THROW(make_sinks(cfg, io));
}

BOOST_AUTO_TEST_SUITE_END()
