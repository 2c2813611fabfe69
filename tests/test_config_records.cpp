// --class and --syslog-records (issue #12): parsing, defaults, and errors
// that name the option or FILE:LINE and the key.
#define BOOST_TEST_MODULE config_records
#include <boost/test/unit_test.hpp>

#include "config.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pdtt;
using Args = std::vector<std::string>;
namespace fs = std::filesystem;

namespace {

const std::string kNoDefault = "/nonexistent/pdtt-test/pdtt.conf";

std::optional<Config> run(const Args& args) {
    std::vector<const char*> argv{"pdtt-agent"};
    for (const std::string& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::ostringstream out;
    return parse_config(static_cast<int>(argv.size() - 1), argv.data(), out, kNoDefault);
}

std::string usage_error(const Args& args) {
    try {
        run(args);
    } catch (const Error& e) {
        BOOST_TEST(e.exit_code() == kExitUsage);
        return e.what();
    }
    BOOST_ERROR("no usage error");
    return {};
}

#define CHECK_HAS(msg, part) BOOST_TEST((msg).find(part) != std::string::npos, "'" << (part) << "' in: " << (msg))

struct ConfFile {
    fs::path path = fs::temp_directory_path() / ("pdtt-config-records-" + std::to_string(::getpid()) + ".conf");
    explicit ConfFile(const std::string& text) { std::ofstream(path) << text; }
    ~ConfFile() { fs::remove(path); }
};

bool has(const RecordTypes& t, RecordType r) { return t.has(r); }

} // namespace

BOOST_AUTO_TEST_CASE(syslog_records_default_is_every_record_syslog_sends) {
    auto cfg = run({"-i", "eth0"});
    BOOST_TEST_REQUIRE(cfg.has_value());
    for (auto t : {RecordType::flow_owner, RecordType::flow_close, RecordType::user_report, RecordType::job_report,
                   RecordType::agent_stats})
        BOOST_TEST(has(cfg->syslog_records, t));
    BOOST_TEST(cfg->classes.empty());
}

BOOST_AUTO_TEST_CASE(syslog_records_picks_types) {
    auto cfg = run({"-i", "eth0", "--syslog-records", "user_report, job_report"});
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST(has(cfg->syslog_records, RecordType::user_report));
    BOOST_TEST(has(cfg->syslog_records, RecordType::job_report));
    BOOST_TEST(!has(cfg->syslog_records, RecordType::flow_close));
    BOOST_TEST(!has(cfg->syslog_records, RecordType::flow_owner));
    BOOST_TEST(!has(cfg->syslog_records, RecordType::agent_stats));
}

BOOST_AUTO_TEST_CASE(syslog_records_unknown_or_repeated_names_are_config_errors) {
    std::string m = usage_error({"-i", "eth0", "--syslog-records", "user_report,flow_delta"});
    CHECK_HAS(m, "--syslog-records");
    CHECK_HAS(m, "'flow_delta' is not a record type");
    CHECK_HAS(m, "job_report"); // the names that exist are listed
    CHECK_HAS(usage_error({"-i", "eth0", "--syslog-records", ""}), "'' is not a record type");
    CHECK_HAS(usage_error({"-i", "eth0", "--syslog-records", "user_report,,agent_stats"}), "'' is not");
    CHECK_HAS(usage_error({"-i", "eth0", "--syslog-records", "flow_close,flow_close"}), "given twice");

    ConfFile f("interface = eth0\nsyslog-records = user_report,bogus\n");
    m = usage_error({"-c", f.path.string()});
    CHECK_HAS(m, f.path.string() + ":2: syslog-records");
    CHECK_HAS(m, "'bogus'");
}

BOOST_AUTO_TEST_CASE(class_is_repeatable_and_classifies) {
    auto cfg = run({"-i", "eth0", "--class", "wan=0.0.0.0/0,::/0", "--class", "storage=10.10.0.0/16"});
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST_REQUIRE(cfg->classes.names().size() == 3u);
    uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 10, 1, 2};
    BOOST_TEST(cfg->classes.name(cfg->classes.classify(a)) == "storage");
    a[13] = 11;
    BOOST_TEST(cfg->classes.name(cfg->classes.classify(a)) == "wan");

    ConfFile f("interface = eth0\nclass = site=10.0.0.0/8\nclass = storage=10.10.0.0/16\n");
    auto from_file = run({"-c", f.path.string()});
    BOOST_TEST_REQUIRE(from_file.has_value());
    BOOST_TEST(from_file->classes.names().size() == 3u);
    // The command line's list replaces the file's.
    auto both = run({"-c", f.path.string(), "--class", "wan=0.0.0.0/0"});
    BOOST_TEST_REQUIRE(both.has_value());
    BOOST_TEST(both->classes.names().size() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_classes_are_config_errors_with_file_and_line) {
    CHECK_HAS(usage_error({"-i", "eth0", "--class", "wan=10.0.0.1/8"}), "--class");
    CHECK_HAS(usage_error({"-i", "eth0", "--class", "a=10.0.0.0/8", "--class", "a=10.1.0.0/16"}), "--class");
    ConfFile f("interface = eth0\nclass = wan=0.0.0.0/0\nclass = site=not-a-cidr\n");
    std::string m = usage_error({"-c", f.path.string()});
    CHECK_HAS(m, f.path.string() + ":3: class");
    CHECK_HAS(m, "not-a-cidr");
}
