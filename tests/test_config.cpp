// Command line and config file parsing.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include "config.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#ifndef PDTT_VERSION
#define PDTT_VERSION "0.0.0"
#endif
#ifndef PDTT_SOURCE_DIR
#error "PDTT_SOURCE_DIR must name the source tree"
#endif

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Args = std::vector<std::string>;

namespace {

// No test reads /etc/pdtt.conf.
const std::string kNoDefault = "/nonexistent/pdtt-test/pdtt.conf";

struct Result {
    std::optional<pdtt::Config> cfg;
    std::string out;
};

Result run(const Args& args, const std::string& default_config = kNoDefault) {
    std::vector<const char*> argv{"pdtt-agent"};
    for (const std::string& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::ostringstream out;
    auto cfg = pdtt::parse_config(static_cast<int>(argv.size() - 1), argv.data(), out, default_config);
    return {std::move(cfg), out.str()};
}

pdtt::Config parse(const Args& args, const std::string& default_config = kNoDefault) {
    Result r = run(args, default_config);
    BOOST_TEST_REQUIRE(r.cfg.has_value());
    return *r.cfg;
}

std::string joined(const Args& args) {
    std::string s;
    for (const std::string& a : args)
        s += "[" + a + "] ";
    return s;
}

// The message of the usage error parse_config must throw, checked for shape.
std::string usage_error(const Args& args, const std::string& default_config = kNoDefault) {
    try {
        run(args, default_config);
    } catch (const pdtt::Error& e) {
        const std::string msg = pdtt::error_line(e.what());
        BOOST_TEST(e.exit_code() == pdtt::kExitUsage, "exit code for " << joined(args));
        BOOST_TEST(msg.starts_with("pdtt-agent: "), "prefix of: " << msg);
        BOOST_TEST(msg.find('\n') == std::string::npos, "one line: " << msg);
        return msg;
    }
    BOOST_ERROR("no usage error for " << joined(args));
    return {};
}

#define CHECK_HAS(msg, part) BOOST_TEST((msg).find(part) != std::string::npos, "'" << (part) << "' in: " << (msg))

// A mkdtemp directory, removed with everything in it.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "pdtt-config-XXXXXX").string();
        BOOST_TEST_REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

BOOST_AUTO_TEST_SUITE(command_line)

// Boost's messages substitute placeholders until none is left: an option
// that holds its own ("%original_token%") made parse_config loop for ever,
// growing the message (fuzz_config found it).
BOOST_AUTO_TEST_CASE(an_option_holding_a_message_placeholder_is_an_error_as_typed) {
    for (const std::string bad :
         {"--zz%original_token%", "--c%option%", "--%canonical_option%", "--x%value%%prefix%"}) {
        const std::string msg = usage_error({"-i", "lo", bad});
        CHECK_HAS(msg, bad.substr(2));
    }
    const std::string msg = usage_error({"-i", "lo", "--interval", "%value%"});
    CHECK_HAS(msg, "%value%");
}

BOOST_AUTO_TEST_CASE(defaults_with_only_an_interface) {
    const pdtt::Config c = parse({"-i", "eth0"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth0"});
    BOOST_TEST(c.log_prefix == "/var/log/pdtt");
    BOOST_TEST(c.interval.count() == 10'000);
    BOOST_TEST((c.stdout_mode == pdtt::StdoutMode::text));
    BOOST_TEST(c.syslog.empty());
    BOOST_TEST(c.files);
    BOOST_TEST((c.xdp_mode == pdtt::XdpMode::automatic));
    BOOST_TEST(!c.verbose);
    BOOST_TEST(c.config_file == "");
    BOOST_TEST(!c.wait_for_interfaces); // a mistyped name fails at once
}

BOOST_AUTO_TEST_CASE(wait_for_interfaces_switch) {
    BOOST_TEST(parse({"-i", "ib0", "--wait-for-interfaces"}).wait_for_interfaces);
    TempDir dir;
    const std::string path = dir.write("pdtt.conf", "interface = ib0\nwait-for-interfaces = true\n");
    BOOST_TEST(parse({"-c", path}).wait_for_interfaces);
}

BOOST_AUTO_TEST_CASE(original_tool_invocation) {
    // pdtt_xdp_user -i eth0 -l /tmp/traffic -t 5 keeps working.
    const pdtt::Config c = parse({"-i", "eth0", "-l", "/tmp/traffic", "-t", "5"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth0"});
    BOOST_TEST(c.log_prefix == "/tmp/traffic");
    BOOST_TEST(c.interval.count() == 5'000);
}

BOOST_AUTO_TEST_CASE(every_option_long_form) {
    const pdtt::Config c = parse({"--interface", "ib0", "--log-prefix=/srv/log/net", "--interval", "2.5", "--stdout",
                                  "json", "--syslog", "udp://loghost:514", "--syslog=tcp://[::1]:6514", "--no-files",
                                  "--ingress", "xdp", "--xdp-mode", "native", "--verbose"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"ib0"});
    BOOST_TEST(c.log_prefix == "/srv/log/net");
    BOOST_TEST(c.interval.count() == 2'500);
    BOOST_TEST((c.stdout_mode == pdtt::StdoutMode::json));
    BOOST_TEST(c.syslog == (std::vector<std::string>{"udp://loghost:514", "tcp://[::1]:6514"}));
    BOOST_TEST(!c.files);
    BOOST_TEST((c.ingress == pdtt::IngressHook::xdp));
    BOOST_TEST((c.xdp_mode == pdtt::XdpMode::native));
    BOOST_TEST(c.verbose);
}

BOOST_AUTO_TEST_CASE(every_option_short_form) {
    const pdtt::Config c = parse({"-i", "eth1", "-l", "/x/y", "-t", "0.5", "-v"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth1"});
    BOOST_TEST(c.log_prefix == "/x/y");
    BOOST_TEST(c.interval.count() == 500);
    BOOST_TEST(c.verbose);
    // Adjacent values work too.
    const pdtt::Config d = parse({"-ieth2", "-t7"});
    BOOST_TEST(d.interfaces == std::vector<std::string>{"eth2"});
    BOOST_TEST(d.interval.count() == 7'000);
}

BOOST_AUTO_TEST_CASE(interface_repeated_keeps_order) {
    const pdtt::Config c = parse({"-i", "eth0", "-i", "eth1", "--interface", "ib0"});
    BOOST_TEST(c.interfaces == (std::vector<std::string>{"eth0", "eth1", "ib0"}));
}

BOOST_AUTO_TEST_CASE(interface_name_of_15_characters) {
    const pdtt::Config c = parse({"-i", "abcdefghijklmno"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"abcdefghijklmno"});
}

BOOST_AUTO_TEST_CASE(stdout_modes) {
    BOOST_TEST((parse({"-i", "e", "--stdout", "text"}).stdout_mode == pdtt::StdoutMode::text));
    BOOST_TEST((parse({"-i", "e", "--stdout", "json"}).stdout_mode == pdtt::StdoutMode::json));
    BOOST_TEST((parse({"-i", "e", "--stdout", "none"}).stdout_mode == pdtt::StdoutMode::none));
}

BOOST_AUTO_TEST_CASE(ingress_hooks) {
    BOOST_TEST((parse({"-i", "e"}).ingress == pdtt::IngressHook::automatic));
    BOOST_TEST((parse({"-i", "e", "--ingress", "auto"}).ingress == pdtt::IngressHook::automatic));
    BOOST_TEST((parse({"-i", "e", "--ingress", "xdp"}).ingress == pdtt::IngressHook::xdp));
    BOOST_TEST((parse({"-i", "e", "--ingress", "tc"}).ingress == pdtt::IngressHook::tc));
    BOOST_TEST(usage_error({"-i", "e", "--ingress", "generic"}) ==
               "pdtt-agent: --ingress 'generic': must be auto, xdp or tc");
}

BOOST_AUTO_TEST_CASE(xdp_modes) {
    BOOST_TEST((parse({"-i", "e", "--xdp-mode", "auto"}).xdp_mode == pdtt::XdpMode::automatic));
    BOOST_TEST((parse({"-i", "e", "--ingress", "xdp", "--xdp-mode", "auto"}).xdp_mode == pdtt::XdpMode::automatic));
    BOOST_TEST((parse({"-i", "e", "--ingress", "xdp", "--xdp-mode", "native"}).xdp_mode == pdtt::XdpMode::native));
    BOOST_TEST((parse({"-i", "e", "--ingress", "xdp", "--xdp-mode", "generic"}).xdp_mode == pdtt::XdpMode::generic));
}

BOOST_AUTO_TEST_CASE(xdp_mode_without_ingress_xdp_is_a_usage_error) {
    // It does not imply --ingress xdp: generic XDP is only ever asked for by name.
    BOOST_TEST(usage_error({"-i", "e", "--xdp-mode", "native"}) == "pdtt-agent: --xdp-mode native needs --ingress xdp");
    BOOST_TEST(usage_error({"-i", "e", "--ingress", "tc", "--xdp-mode", "generic"}) ==
               "pdtt-agent: --xdp-mode generic needs --ingress xdp");
    BOOST_TEST(usage_error({"-i", "e", "--ingress", "auto", "--xdp-mode", "native"}) ==
               "pdtt-agent: --xdp-mode native needs --ingress xdp");
    TempDir dir;
    const std::string path = dir.write("x.conf", "interface = e\nxdp-mode = generic\n");
    BOOST_TEST(usage_error({"-c", path}) == "pdtt-agent: --xdp-mode generic needs --ingress xdp");
    BOOST_TEST((parse({"-c", path, "--ingress", "xdp"}).xdp_mode == pdtt::XdpMode::generic));
}

BOOST_AUTO_TEST_CASE(interval_values_in_milliseconds) {
    const std::pair<std::string, long> cases[] = {
        {"0.1", 100},      {"86400", 86'400'000}, {"10", 10'000}, {"2.5", 2'500}, {"0.25", 250},
        {"1.0005", 1'000}, {".5", 500},           {"3.", 3'000},  {"007", 7'000}, {"86400.000", 86'400'000},
    };
    for (const auto& [text, ms] : cases) {
        BOOST_TEST_CONTEXT("-t " << text) { BOOST_TEST(parse({"-i", "e", "-t", text}).interval.count() == ms); }
    }
}

BOOST_AUTO_TEST_CASE(syslog_url_forms_accepted) {
    for (const std::string url :
         {"udp://localhost:514", "tcp://10.0.0.1:6514", "udp://[2001:db8::1]:514", "tcp://[fe80::1%eth0]:514",
          "udp://log-1.example.org:65535", "udp://h:1", "tcp://[::ffff:192.0.2.1]:601"}) {
        BOOST_TEST_CONTEXT("--syslog " << url) {
            BOOST_TEST(parse({"-i", "e", "--syslog", url}).syslog == std::vector<std::string>{url});
        }
    }
}

BOOST_AUTO_TEST_CASE(help_prints_every_option_and_default) {
    const Result r = run({"--help"}, "/etc/test-default.conf");
    BOOST_TEST(!r.cfg.has_value());
    // Layout aside: runs of white space, line breaks included, as one space.
    const std::string text = std::regex_replace(r.out, std::regex("\\s+"), " ");
    for (const char* part : {"Usage: pdtt-agent",
                             "--config",
                             "--interface",
                             "--log-prefix",
                             "--interval",
                             "--stdout",
                             "--syslog",
                             "--no-files",
                             "--ingress",
                             "--xdp-mode",
                             "--verbose",
                             "--help",
                             "--version",
                             "-c",
                             "-i",
                             "-l",
                             "-t",
                             "-v",
                             "-h",
                             "-V",
                             "/etc/test-default.conf",
                             "default: /var/log/pdtt",
                             "default: 10)",
                             "default: text",
                             "default: none",
                             "default: files on",
                             "default: auto",
                             "default: off",
                             "text, json (JSON lines) or none",
                             "auto (native XDP on known NIC drivers, else tc), xdp or tc",
                             "with --ingress xdp: auto (native, else generic), native or generic",
                             "repeatable"})
        CHECK_HAS(text, part);
    const Result h = run({"-h"}, "/etc/test-default.conf");
    BOOST_TEST(!h.cfg.has_value());
    BOOST_TEST(h.out == r.out);
}

BOOST_AUTO_TEST_CASE(version_prints_name_and_version) {
    for (const char* opt : {"--version", "-V"}) {
        const Result r = run({opt});
        BOOST_TEST(!r.cfg.has_value());
        BOOST_TEST(r.out == "pdtt-agent " PDTT_VERSION "\n");
    }
}

BOOST_AUTO_TEST_CASE(help_ignores_a_broken_config_file) {
    TempDir dir;
    const std::string bad = dir.write("bad.conf", "bogus = 1\n");
    BOOST_TEST(!run({"--help"}, bad).cfg.has_value());
    BOOST_TEST(!run({"-V", "-c", bad}).cfg.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(command_line_errors)

BOOST_AUTO_TEST_CASE(missing_interface) {
    const std::string msg = usage_error({});
    BOOST_TEST(msg == "pdtt-agent: no interface given: use -i NAME (see ip -br link)");
    CHECK_HAS(usage_error({"-t", "5", "--stdout", "json"}), "no interface given");
}

BOOST_AUTO_TEST_CASE(bad_intervals) {
    for (const std::string v : {"0", "-1", "abc", "1e9", "", "0.09", "0.0999", "86400.5", "86401", "1e2", "inf", "nan",
                                "5s", " 5", "0x10", ".", "+5", "1.2.3", "99999999999999999999"}) {
        BOOST_TEST_CONTEXT("-t '" << v << "'") {
            const std::string msg = usage_error({"-i", "eth0", "-t", v});
            CHECK_HAS(msg, "--interval '" + v + "'");
            CHECK_HAS(msg, "0.1 to 86400");
        }
    }
    // The value glued to the option, as the negative one could be mistaken for an option.
    CHECK_HAS(usage_error({"-i", "eth0", "-t-1"}), "--interval '-1'");
    CHECK_HAS(usage_error({"-i", "eth0", "--interval=0"}), "--interval '0'");
}

BOOST_AUTO_TEST_CASE(bad_stdout) {
    const std::string msg = usage_error({"-i", "eth0", "--stdout", "xml"});
    BOOST_TEST(msg == "pdtt-agent: --stdout 'xml': must be text, json or none");
    CHECK_HAS(usage_error({"-i", "eth0", "--stdout", "JSON"}), "--stdout 'JSON'");
}

BOOST_AUTO_TEST_CASE(bad_xdp_mode) {
    const std::string msg = usage_error({"-i", "eth0", "--xdp-mode", "foo"});
    BOOST_TEST(msg == "pdtt-agent: --xdp-mode 'foo': must be auto, native or generic");
}

BOOST_AUTO_TEST_CASE(unknown_option) {
    const std::string msg = usage_error({"-i", "eth0", "--frobnicate"});
    CHECK_HAS(msg, "--frobnicate");
    CHECK_HAS(msg, "--help");
    // No guessing of abbreviations: the config file takes whole names only.
    CHECK_HAS(usage_error({"-i", "eth0", "--interv", "5"}), "--interv");
    CHECK_HAS(usage_error({"-i", "eth0", "-x"}), "-x");
}

BOOST_AUTO_TEST_CASE(options_given_twice) {
    const std::pair<Args, std::string> cases[] = {
        {{"-t", "5", "-t", "6"}, "--interval"},
        {{"-t", "5", "--interval", "5"}, "--interval"},
        {{"-l", "a", "-l", "b"}, "--log-prefix"},
        {{"--stdout", "json", "--stdout", "text"}, "--stdout"},
        {{"--xdp-mode", "native", "--xdp-mode", "generic"}, "--xdp-mode"},
        {{"-c", "a.conf", "-c", "b.conf"}, "--config"},
        {{"--no-files", "--no-files"}, "--no-files"},
        {{"-v", "--verbose"}, "--verbose"},
    };
    for (const auto& [extra, option] : cases) {
        BOOST_TEST_CONTEXT(joined(extra)) {
            Args args{"-i", "eth0"};
            args.insert(args.end(), extra.begin(), extra.end());
            const std::string msg = usage_error(args);
            CHECK_HAS(msg, option);
            CHECK_HAS(msg, "more than once");
        }
    }
}

BOOST_AUTO_TEST_CASE(option_without_its_value) {
    CHECK_HAS(usage_error({"-i", "eth0", "-t"}), "--interval");
    CHECK_HAS(usage_error({"-i"}), "--interface");
}

BOOST_AUTO_TEST_CASE(stray_argument) {
    const std::string msg = usage_error({"eth0"});
    CHECK_HAS(msg, "unexpected argument 'eth0'");
    CHECK_HAS(msg, "-i");
}

BOOST_AUTO_TEST_CASE(bad_interface_names) {
    for (const std::string v : {"", "abcdefghijklmnop", "a/b", "a:b", "a b", ".", ".."}) {
        BOOST_TEST_CONTEXT("-i '" << v << "'") { CHECK_HAS(usage_error({"-i", v}), "--interface '" + v + "'"); }
    }
    CHECK_HAS(usage_error({"-i", "eth0", "-i", "abcdefghijklmnop"}), "1 to 15 characters");
    CHECK_HAS(usage_error({"-i", "eth0", "-i", "eth0"}), "given twice");
}

BOOST_AUTO_TEST_CASE(empty_log_prefix) { CHECK_HAS(usage_error({"-i", "eth0", "-l", ""}), "--log-prefix ''"); }

BOOST_AUTO_TEST_CASE(bad_syslog_urls) {
    const std::pair<std::string, std::string> cases[] = {
        {"", "udp://, tcp:// or tls://"},
        {"localhost:514", "udp://, tcp:// or tls://"},
        {"http://h:514", "udp://, tcp:// or tls://"},
        {"udp://", "missing :PORT"},
        {"udp://h", "missing :PORT"},
        {"udp://h:", "port"},
        {"udp://h:0", "port"},
        {"udp://h:65536", "port"},
        {"udp://h:99999999999999999999", "port"},
        {"udp://h:-1", "port"},
        {"udp://h:514/x", "port"},
        {"udp://:514", "missing HOST"},
        {"udp://2001:db8::1:514", "brackets"},
        {"udp://[2001:db8::1:514", "']'"},
        {"udp://[zz]:514", "not an IPv6 address"},
        {"udp://[]:514", "not an IPv6 address"},
        {"udp://[fe80::1%]:514", "not an IPv6 address"},
        {"udp://[::1]514", "missing :PORT"},
        {"udp://[::1]", "missing :PORT"},
        {"udp://h h:514", "not a host name"},
    };
    for (const auto& [url, problem] : cases) {
        BOOST_TEST_CONTEXT("--syslog '" << url << "'") {
            const std::string msg = usage_error({"-i", "eth0", "--syslog", url});
            CHECK_HAS(msg, "--syslog '" + url + "'");
            CHECK_HAS(msg, problem);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(config_file)

BOOST_AUTO_TEST_CASE(every_key_from_the_file) {
    TempDir dir;
    const std::string path = dir.write("pdtt.conf", "# a comment\n"
                                                    "; another\n"
                                                    "\n"
                                                    "interface = eth0\n"
                                                    "  interface=ib0  \n"
                                                    "log-prefix = /data/log/pdtt   # where logs go\n"
                                                    "interval = 2.5\n"
                                                    "stdout = json\n"
                                                    "syslog = udp://[2001:db8::1]:514\n"
                                                    "syslog = tcp://loghost:6514 ; second\n"
                                                    "no-files = true\n"
                                                    "ingress = xdp\n"
                                                    "xdp-mode = generic\n"
                                                    "verbose = yes\r\n");
    const pdtt::Config c = parse({"-c", path});
    BOOST_TEST(c.interfaces == (std::vector<std::string>{"eth0", "ib0"}));
    BOOST_TEST(c.log_prefix == "/data/log/pdtt");
    BOOST_TEST(c.interval.count() == 2'500);
    BOOST_TEST((c.stdout_mode == pdtt::StdoutMode::json));
    BOOST_TEST(c.syslog == (std::vector<std::string>{"udp://[2001:db8::1]:514", "tcp://loghost:6514"}));
    BOOST_TEST(!c.files);
    BOOST_TEST((c.ingress == pdtt::IngressHook::xdp));
    BOOST_TEST((c.xdp_mode == pdtt::XdpMode::generic));
    BOOST_TEST(c.verbose);
    BOOST_TEST(c.config_file == path);
}

BOOST_AUTO_TEST_CASE(boolean_spellings) {
    TempDir dir;
    for (const std::string v : {"true", "yes", "on", "1"}) {
        const std::string path = dir.write("b.conf", "interface = e\nno-files = " + v + "\nverbose = " + v + "\n");
        const pdtt::Config c = parse({"-c", path});
        BOOST_TEST(!c.files, v);
        BOOST_TEST(c.verbose, v);
    }
    for (const std::string v : {"false", "no", "off", "0"}) {
        const std::string path = dir.write("b.conf", "interface = e\nno-files = " + v + "\nverbose = " + v + "\n");
        const pdtt::Config c = parse({"-c", path});
        BOOST_TEST(c.files, v);
        BOOST_TEST(!c.verbose, v);
    }
}

BOOST_AUTO_TEST_CASE(command_line_beats_file) {
    TempDir dir;
    const std::string path = dir.write("pdtt.conf", "interface = eth0\n"
                                                    "interface = eth1\n"
                                                    "log-prefix = /from/file\n"
                                                    "interval = 5\n"
                                                    "stdout = json\n"
                                                    "syslog = udp://filehost:514\n"
                                                    "ingress = xdp\n"
                                                    "xdp-mode = native\n");
    // Unset on the command line: the file's values.
    const pdtt::Config f = parse({"-c", path});
    BOOST_TEST(f.interfaces == (std::vector<std::string>{"eth0", "eth1"}));
    BOOST_TEST(f.interval.count() == 5'000);

    const pdtt::Config c = parse({"-c", path, "-t", "7", "-i", "eth2", "--stdout", "none", "-l", "/from/cli"});
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth2"}); // replaced, not merged
    BOOST_TEST(c.interval.count() == 7'000);
    BOOST_TEST((c.stdout_mode == pdtt::StdoutMode::none));
    BOOST_TEST(c.log_prefix == "/from/cli");
    BOOST_TEST(c.syslog == std::vector<std::string>{"udp://filehost:514"}); // from the file
    BOOST_TEST((c.xdp_mode == pdtt::XdpMode::native));                      // from the file

    const pdtt::Config s = parse({"-c", path, "--syslog", "tcp://clihost:601", "--xdp-mode", "auto"});
    BOOST_TEST(s.syslog == std::vector<std::string>{"tcp://clihost:601"});
    BOOST_TEST((s.xdp_mode == pdtt::XdpMode::automatic));
    BOOST_TEST(s.interfaces == (std::vector<std::string>{"eth0", "eth1"}));
}

BOOST_AUTO_TEST_CASE(default_file_is_read_when_it_exists) {
    TempDir dir;
    const std::string path = dir.write("default.conf", "interface = eth3\ninterval = 3\n");
    const pdtt::Config c = parse({}, path);
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth3"});
    BOOST_TEST(c.interval.count() == 3'000);
    BOOST_TEST(c.config_file == path);
}

BOOST_AUTO_TEST_CASE(default_file_absent_is_fine) {
    TempDir dir;
    const pdtt::Config c = parse({"-i", "eth0"}, (dir.path / "absent.conf").string());
    BOOST_TEST(c.config_file == "");
    BOOST_TEST(c.interval.count() == 10'000);
}

BOOST_AUTO_TEST_CASE(explicit_file_replaces_default_file) {
    TempDir dir;
    const std::string def = dir.write("default.conf", "this is not read = at all\n");
    const std::string other = dir.write("other.conf", "interface = eth4\ninterval = 4\n");
    const pdtt::Config c = parse({"-c", other}, def);
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth4"});
    BOOST_TEST(c.interval.count() == 4'000);
    BOOST_TEST(c.config_file == other);
}

BOOST_AUTO_TEST_CASE(missing_explicit_file) {
    TempDir dir;
    const std::string path = (dir.path / "missing.conf").string();
    const std::string msg = usage_error({"-i", "eth0", "-c", path});
    CHECK_HAS(msg, "--config '" + path + "': cannot read");
    CHECK_HAS(msg, "No such file");
    CHECK_HAS(usage_error({"-i", "eth0", "-c", dir.path.string()}),
              "--config '" + dir.path.string() + "': is a directory");
}

BOOST_AUTO_TEST_CASE(unreadable_explicit_file) {
    // Root reads any file, so as root the parse runs in a child that has
    // become nobody; the child's exit status says how the parse ended and a
    // pipe brings back its error line.
    TempDir dir;
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    const std::string path = dir.write("secret.conf", "interface = eth0\n");
    fs::permissions(path, fs::perms::none);
    const passwd* nobody = geteuid() == 0 ? getpwnam("nobody") : nullptr;
    BOOST_TEST_REQUIRE((geteuid() != 0 || nobody), "a user 'nobody' to drop root to");
    int fds[2];
    BOOST_TEST_REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (nobody && (setgroups(0, nullptr) != 0 || setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0))
            _exit(10);
        struct stat st {};
        if (stat(path.c_str(), &st) != 0) // denied for the file itself, not its directory
            _exit(11);
        int code = 12; // parsed without an error
        try {
            run({"-c", path});
        } catch (const pdtt::Error& e) {
            const std::string msg = pdtt::error_line(e.what());
            code = e.exit_code() == pdtt::kExitUsage ? 0 : 13;
            if (::write(fds[1], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size()))
                code = 14;
        } catch (...) {
            code = 15;
        }
        _exit(code);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;)
        msg.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    BOOST_TEST_REQUIRE(waitpid(pid, &status, 0) == pid);
    BOOST_TEST_REQUIRE(WIFEXITED(status));
    BOOST_TEST_REQUIRE(WEXITSTATUS(status) == 0,
                       "child exit status " << WEXITSTATUS(status)
                                            << " (10 cannot become nobody, 11 cannot reach the file, 12 no error, "
                                               "13 not a usage error, 14 pipe, 15 other exception)");
    BOOST_TEST(msg.starts_with("pdtt-agent: "), "prefix of: " << msg);
    CHECK_HAS(msg, "--config '" + path + "': cannot read");
    CHECK_HAS(msg, "Permission denied");
}

BOOST_AUTO_TEST_CASE(unknown_key_names_file_line_and_key) {
    TempDir dir;
    const std::string path = dir.write("pdtt.conf", "# pdtt\n"
                                                    "\n"
                                                    "interface = eth0\n"
                                                    "; comment\n"
                                                    "stdout = json\n"
                                                    "\n"
                                                    "intervall = 5\n"
                                                    "verbose = true\n");
    const std::string msg = usage_error({"-c", path});
    BOOST_TEST(msg.starts_with("pdtt-agent: " + path + ":7: unknown key 'intervall'"), msg);
    CHECK_HAS(msg, "interval,"); // the keys that exist
    // The same error through the default file.
    CHECK_HAS(usage_error({"-i", "eth0"}, path), path + ":7: unknown key 'intervall'");
}

BOOST_AUTO_TEST_CASE(command_line_only_options_are_not_keys) {
    TempDir dir;
    for (const std::string key : {"config", "help", "version", "i", "log_prefix", "Interval"}) {
        BOOST_TEST_CONTEXT(key) {
            const std::string path = dir.write("k.conf", "interface = eth0\n" + key + " = x\n");
            CHECK_HAS(usage_error({"-c", path}), path + ":2: unknown key '" + key + "'");
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_values_name_file_line_and_key) {
    const std::pair<std::string, std::string> cases[] = {
        {"interval = 0", "interval '0'"},
        {"interval = abc", "interval 'abc'"},
        {"interval = 1e9", "interval '1e9'"},
        {"stdout = xml", "stdout 'xml'"},
        {"xdp-mode = foo", "xdp-mode 'foo'"},
        {"syslog = udp://h:0", "syslog 'udp://h:0'"},
        {"interface = abcdefghijklmnop", "interface 'abcdefghijklmnop'"},
        {"interface = eth0", "interface 'eth0': interface given twice"},
        {"no-files = maybe", "no-files 'maybe'"},
        {"verbose = 2", "verbose '2'"},
        {"interval =", "key 'interval' has no value"},
        {"interval 5", "expected KEY = VALUE"},
        {"= 5", "missing key"},
        {"[agent]", "sections"},
        {"log-prefix = /y", "key 'log-prefix' given twice (first on line 2)"},
    };
    TempDir dir;
    for (const auto& [line, problem] : cases) {
        BOOST_TEST_CONTEXT(line) {
            const std::string path =
                dir.write("v.conf", "interface = eth0\nlog-prefix = /x\n# comment\n" + line + "\nstdout = text\n");
            const std::string msg = usage_error({"-c", path});
            CHECK_HAS(msg, path + ":4: " + problem);
        }
    }
}

BOOST_AUTO_TEST_CASE(file_errors_count_even_when_overridden) {
    TempDir dir;
    const std::string path = dir.write("o.conf", "interval = 0\n");
    CHECK_HAS(usage_error({"-c", path, "-i", "eth0", "-t", "5"}), path + ":1: interval '0'");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(example_file)

const std::string kExample = PDTT_SOURCE_DIR "/conf/pdtt.conf";

BOOST_AUTO_TEST_CASE(example_parses_to_the_defaults) {
    const pdtt::Config c = parse({"-c", kExample, "-i", "eth0"});
    const pdtt::Config d;
    BOOST_TEST(c.config_file == kExample);
    BOOST_TEST(c.interfaces == std::vector<std::string>{"eth0"});
    BOOST_TEST(c.log_prefix == d.log_prefix);
    BOOST_TEST(c.interval.count() == d.interval.count());
    BOOST_TEST((c.stdout_mode == d.stdout_mode));
    BOOST_TEST(c.syslog == d.syslog);
    BOOST_TEST(c.files == d.files);
    BOOST_TEST((c.ingress == d.ingress));
    BOOST_TEST((c.xdp_mode == d.xdp_mode));
    BOOST_TEST(c.verbose == d.verbose);
    // Without an interface anywhere the example is incomplete, by design.
    CHECK_HAS(usage_error({"-c", kExample}), "no interface given");
}

BOOST_AUTO_TEST_CASE(example_documents_every_key) {
    const std::string text = read(kExample);
    BOOST_TEST_REQUIRE(!text.empty());
    for (const char* line : {"# interface = eth0\n", "# log-prefix = /var/log/pdtt\n", "# interval = 10\n",
                             "# stdout = text\n", "# syslog = udp://", "# no-files = false\n", "# xdp-mode = auto\n",
                             "# verbose = false\n", "# syslog-facility = local0\n", "# syslog-app-name = pdtt\n",
                             "# udp-timeout = 60\n", "# flow-table-size = 262144\n", "# ring-buffer-mib = 4\n"})
        CHECK_HAS(text, line);
}

BOOST_AUTO_TEST_CASE(example_with_every_line_uncommented_is_valid) {
    // Uncommenting the shown settings must give a working file.
    std::string text = read(kExample);
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (std::regex_match(line, std::regex("# [a-z-]+ = .*")))
            line = line.substr(2);
        out += line + "\n";
    }
    TempDir dir;
    const std::string path = dir.write("pdtt.conf", out);
    const pdtt::Config c = parse({"-c", path});
    BOOST_TEST(c.interfaces == (std::vector<std::string>{"eth0", "ib0"}));
    BOOST_TEST(c.log_prefix == "/var/log/pdtt");
    BOOST_TEST(c.interval.count() == 10'000);
    BOOST_TEST(c.syslog.size() == 2u);
    BOOST_TEST(c.files);
    BOOST_TEST(!c.verbose);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sizes_and_syslog_identity)

BOOST_AUTO_TEST_CASE(defaults_and_settings) {
    const pdtt::Config d = parse({"-i", "eth0"});
    BOOST_TEST(d.syslog_facility == 16);
    BOOST_TEST(d.syslog_app_name == "pdtt");
    BOOST_TEST(d.udp_timeout.count() == 60);
    BOOST_TEST(d.flow_table_size == 262144u);
    BOOST_TEST(d.ring_buffer_mib == 4u);
    const pdtt::Config c = parse({"-i", "eth0", "--syslog-facility", "daemon", "--syslog-app-name", "dtn-agent",
                                  "--udp-timeout", "5", "--flow-table-size", "64", "--ring-buffer-mib", "1"});
    BOOST_TEST(c.syslog_facility == 3);
    BOOST_TEST(c.syslog_app_name == "dtn-agent");
    BOOST_TEST(c.udp_timeout.count() == 5);
    BOOST_TEST(c.flow_table_size == 64u);
    BOOST_TEST(c.ring_buffer_mib == 1u);
}

BOOST_AUTO_TEST_CASE(bad_values_name_the_option) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--syslog-facility", "local9"}, "--syslog-facility 'local9'"},
        {{"--syslog-app-name", "has space"}, "--syslog-app-name"},
        {{"--syslog-app-name", std::string(49, 'a')}, "--syslog-app-name"},
        {{"--udp-timeout", "0"}, "--udp-timeout '0'"},
        {{"--udp-timeout", "1.5"}, "--udp-timeout '1.5'"},
        {{"--flow-table-size", "8"}, "--flow-table-size '8'"},
        {{"--flow-table-size", "99999999999"}, "--flow-table-size"},
        {{"--ring-buffer-mib", "3"}, "power of two"},
        {{"--ring-buffer-mib", "2048"}, "--ring-buffer-mib '2048'"},
    };
    for (const auto& [args, needle] : cases) {
        std::vector<std::string> argv{"-i", "eth0"};
        argv.insert(argv.end(), args.begin(), args.end());
        BOOST_TEST_CONTEXT(args[0] << " " << args[1]) { CHECK_HAS(usage_error(argv), needle); }
    }
}

BOOST_AUTO_TEST_SUITE_END()
