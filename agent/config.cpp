// Command line through Boost.Program_options; the config file through a small
// INI reader of our own, because Boost's reports no line numbers.
#include "config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string_view>

#include <boost/program_options.hpp>

#ifndef PDTT_VERSION
#define PDTT_VERSION "0.0.0"
#endif

namespace pdtt {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;

constexpr std::size_t kMaxIfName = 15;   // IFNAMSIZ - 1

[[noreturn]] void usage_error(const std::string& message) {
    throw Error(kExitUsage, message);
}

bool all_digits(std::string_view s);
[[noreturn]] void bad_value(const std::string& where, const std::string& value, const std::string& problem);

// Keys of the config file: the long options that make sense there.
struct Key {
    std::string_view name;
    bool repeatable;
};
constexpr Key kKeys[] = {
    {"interface", true}, {"log-prefix", false}, {"interval", false}, {"stdout", false},
    {"syslog", true},    {"no-files", false},   {"xdp-mode", false}, {"verbose", false},
    {"syslog-facility", false}, {"syslog-app-name", false}, {"udp-timeout", false},
    {"flow-table-size", false}, {"ring-buffer-mib", false},
};

constexpr std::string_view kFacilities[] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
};

// A whole number from lo to hi, named for messages.
uint64_t parse_count(const std::string& where, const std::string& value, uint64_t lo, uint64_t hi,
                     const char* unit) {
    if (!all_digits(value) || value.size() > 12 || std::stoull(value) < lo || std::stoull(value) > hi)
        bad_value(where, value, "must be a whole number of " + std::string(unit) + " from " + std::to_string(lo) +
                                    " to " + std::to_string(hi));
    return std::stoull(value);
}

const Key* find_key(std::string_view name) {
    for (const Key& k : kKeys)
        if (k.name == name)
            return &k;
    return nullptr;
}

std::string key_list() {
    std::string s;
    for (const Key& k : kKeys)
        s += (s.empty() ? "" : ", ") + std::string(k.name);
    return s;
}

// A value's origin for messages: "--interval" or "FILE:LINE: interval".
[[noreturn]] void bad_value(const std::string& where, const std::string& value,
                            const std::string& problem) {
    usage_error(where + " '" + value + "': " + problem);
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Plain decimal seconds ("5", "2.5", ".5"), 0.1 to 86400, truncated to ms.
// Parsed by hand: no exponents, signs, "inf" or locale surprises.
std::chrono::milliseconds parse_interval(const std::string& where, const std::string& v) {
    const std::string problem = "must be a number of seconds from 0.1 to 86400";
    const auto dot = v.find('.');
    const std::string_view whole = std::string_view(v).substr(0, dot);
    const std::string_view frac =
        dot == std::string::npos ? std::string_view() : std::string_view(v).substr(dot + 1);
    const bool whole_ok = whole.empty() || all_digits(whole);
    const bool frac_ok = frac.empty() || all_digits(frac);
    if (!whole_ok || !frac_ok || (whole.empty() && frac.empty()))
        bad_value(where, v, problem);

    std::string_view w = whole;
    while (w.size() > 1 && w.front() == '0')
        w.remove_prefix(1);
    if (w.size() > 5)   // more than 99999 s, and no overflow below
        bad_value(where, v, problem);
    const long secs = w.empty() ? 0 : std::stol(std::string(w));
    long ms = 0;
    for (std::size_t i = 0; i < 3; ++i)
        ms = ms * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    const bool frac_nonzero = std::any_of(frac.begin(), frac.end(), [](char c) { return c != '0'; });

    if (secs > 86400 || (secs == 86400 && frac_nonzero) || (secs == 0 && ms < 100))
        bad_value(where, v, problem);
    return std::chrono::milliseconds(secs * 1000 + ms);
}

StdoutMode parse_stdout(const std::string& where, const std::string& v) {
    if (v == "text")
        return StdoutMode::text;
    if (v == "json")
        return StdoutMode::json;
    if (v == "none")
        return StdoutMode::none;
    bad_value(where, v, "must be text, json or none");
}

XdpMode parse_xdp_mode(const std::string& where, const std::string& v) {
    if (v == "auto")
        return XdpMode::automatic;
    if (v == "native")
        return XdpMode::native;
    if (v == "generic")
        return XdpMode::generic;
    bad_value(where, v, "must be auto, native or generic");
}

bool parse_bool(const std::string& where, const std::string& v) {
    if (v == "true" || v == "yes" || v == "on" || v == "1")
        return true;
    if (v == "false" || v == "no" || v == "off" || v == "0")
        return false;
    bad_value(where, v, "must be true or false");
}

// The kernel's rule (dev_valid_name); whether it exists is checked at run time.
void check_interface(const std::string& where, const std::string& v) {
    if (v.empty() || v.size() > kMaxIfName)
        bad_value(where, v, "an interface name has 1 to 15 characters (see ip -br link)");
    if (v == "." || v == ".." ||
        std::any_of(v.begin(), v.end(), [](unsigned char c) { return c == '/' || c == ':' || std::isspace(c); }))
        bad_value(where, v, "not a valid interface name (see ip -br link)");
}

// udp://HOST:PORT or tcp://HOST:PORT, an IPv6 literal in brackets.
// Whether HOST resolves is checked at run time.
void check_syslog(const std::string& where, const std::string& v) {
    const auto fail = [&](const std::string& problem) {
        bad_value(where, v, problem + " (expected udp://HOST:PORT or tcp://HOST:PORT)");
    };
    std::string_view rest = v;
    if (!rest.starts_with("udp://") && !rest.starts_with("tcp://"))
        fail("must start with udp:// or tcp://");
    rest.remove_prefix(6);

    std::string_view port;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            fail("missing ']' after the IPv6 address");
        const std::string host(rest.substr(1, close - 1));
        const auto pct = host.find('%');   // zone, as in [fe80::1%eth0]
        in6_addr addr{};
        if (inet_pton(AF_INET6, host.substr(0, pct).c_str(), &addr) != 1 ||
            (pct != std::string::npos && pct + 1 == host.size()))
            fail("'" + host + "' is not an IPv6 address");
        rest.remove_prefix(close + 1);
        if (!rest.starts_with(':'))
            fail("missing :PORT");
        port = rest.substr(1);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos)
            fail("missing :PORT");
        const std::string_view host = rest.substr(0, colon);
        if (host.empty())
            fail("missing HOST");
        if (host.find(':') != std::string_view::npos)
            fail("put an IPv6 address in brackets, as in udp://[2001:db8::1]:514");
        if (!std::all_of(host.begin(), host.end(), [](unsigned char c) {
                return std::isalnum(c) || c == '.' || c == '-' || c == '_';
            }))
            fail("'" + std::string(host) + "' is not a host name or address");
        port = rest.substr(colon + 1);
    }
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) < 1 ||
        std::stoul(std::string(port)) > 65535)
        fail("port must be a number from 1 to 65535");
}

// Sets one setting from its text; the one place values are checked.
void apply(Config& cfg, std::string_view key, const std::string& value, const std::string& where) {
    if (key == "interface") {
        check_interface(where, value);
        if (std::find(cfg.interfaces.begin(), cfg.interfaces.end(), value) != cfg.interfaces.end())
            bad_value(where, value, "interface given twice");
        cfg.interfaces.push_back(value);
    } else if (key == "log-prefix") {
        if (value.empty())
            bad_value(where, value, "must not be empty (logs go to PREFIX-USERNAME.log)");
        cfg.log_prefix = value;
    } else if (key == "interval") {
        cfg.interval = parse_interval(where, value);
    } else if (key == "stdout") {
        cfg.stdout_mode = parse_stdout(where, value);
    } else if (key == "syslog") {
        check_syslog(where, value);
        cfg.syslog.push_back(value);
    } else if (key == "no-files") {
        cfg.files = !parse_bool(where, value);
    } else if (key == "xdp-mode") {
        cfg.xdp_mode = parse_xdp_mode(where, value);
    } else if (key == "verbose") {
        cfg.verbose = parse_bool(where, value);
    } else if (key == "syslog-facility") {
        cfg.syslog_facility = syslog_facility_code(value);
        if (cfg.syslog_facility < 0)
            bad_value(where, value, "not a syslog facility (local0..local7, daemon, user, ...)");
    } else if (key == "syslog-app-name") {
        // RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
        if (value.empty() || value.size() > 48 ||
            !std::all_of(value.begin(), value.end(), [](char c) { return c > 32 && c < 127; }))
            bad_value(where, value, "must be 1 to 48 printable ASCII characters without spaces");
        cfg.syslog_app_name = value;
    } else if (key == "udp-timeout") {
        cfg.udp_timeout = std::chrono::seconds(parse_count(where, value, 1, 86400, "seconds"));
    } else if (key == "flow-table-size") {
        cfg.flow_table_size = static_cast<uint32_t>(parse_count(where, value, 16, 1u << 24, "entries"));
    } else if (key == "ring-buffer-mib") {
        uint64_t mib = parse_count(where, value, 1, 1024, "MiB");
        if (mib & (mib - 1))
            bad_value(where, value, "must be a power of two (1, 2, 4, ... 1024)");
        cfg.ring_buffer_mib = static_cast<uint32_t>(mib);
    }
}

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

// Reads KEY = VALUE lines into cfg. '#' and ';' start comments (mid-line
// only after white space); sections are refused rather than ignored.
// `what` names the file's origin: "--config" or "config file".
void read_config_file(Config& cfg, const std::string& path, const std::string& what) {
    std::error_code ec;
    if (fs::is_directory(path, ec))
        usage_error(what + " '" + path + "': is a directory, not a file");
    errno = 0;
    std::ifstream in(path);
    if (!in) {
        const int err = errno ? errno : ENOENT;
        usage_error(what + " '" + path + "': cannot read: " + std::strerror(err));
    }

    std::vector<std::pair<std::string_view, int>> seen;   // non-repeatable key, line
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        const std::string at = path + ":" + std::to_string(lineno) + ": ";
        std::string_view t = trim(line);
        if (t.empty() || t.front() == '#' || t.front() == ';')
            continue;
        if (t.front() == '[')
            usage_error(at + "sections like '" + std::string(t) + "' are not supported: write KEY = VALUE lines");
        for (std::size_t i = 1; i < t.size(); ++i) {
            if ((t[i] == '#' || t[i] == ';') && (t[i - 1] == ' ' || t[i - 1] == '\t')) {
                t = trim(t.substr(0, i));
                break;
            }
        }
        const auto eq = t.find('=');
        if (eq == std::string_view::npos)
            usage_error(at + "expected KEY = VALUE, got '" + std::string(t) + "'");
        const std::string key(trim(t.substr(0, eq)));
        const std::string value(trim(t.substr(eq + 1)));
        if (key.empty())
            usage_error(at + "missing key before '='");
        const Key* k = find_key(key);
        if (!k)
            usage_error(at + "unknown key '" + key + "' (keys: " + key_list() + ")");
        if (!k->repeatable) {
            const auto prev = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == k->name; });
            if (prev != seen.end())
                usage_error(at + "key '" + key + "' given twice (first on line " + std::to_string(prev->second) + ")");
            seen.emplace_back(k->name, lineno);
        }
        if (value.empty())
            usage_error(at + "key '" + key + "' has no value");
        apply(cfg, key, value, at + key);
    }
    if (in.bad())
        usage_error(what + " '" + path + "': cannot read: " + std::strerror(errno ? errno : EIO));
    cfg.config_file = path;
}

po::options_description describe(const std::string& default_config) {
    po::options_description d("Options");
    // clang-format off
    d.add_options()
        ("config,c", po::value<std::string>()->value_name("FILE"),
            ("INI config file, the long option names as keys (default: " +
             default_config + " when it exists)").c_str())
        ("interface,i", po::value<std::vector<std::string>>()->value_name("NAME"),
            "interface to monitor; repeatable; required, here or in the config file "
            "(no default)")
        ("log-prefix,l", po::value<std::string>()->value_name("PREFIX"),
            "logs at PREFIX-USER.log (default: /var/log/pdtt)")
        ("interval,t", po::value<std::string>()->value_name("SECONDS"),
            "report interval, 0.1 to 86400 (default: 10)")
        ("stdout", po::value<std::string>()->value_name("MODE"),
            "console output: text, json (JSON lines) or none (default: text)")
        ("syslog", po::value<std::vector<std::string>>()->value_name("URL"),
            "send records to udp://HOST:PORT or tcp://HOST:PORT; repeatable (default: none)")
        ("no-files", po::bool_switch(), "write no per-user log files (default: files on)")
        ("xdp-mode", po::value<std::string>()->value_name("MODE"),
            "XDP mode: auto, native or generic (default: auto)")
        ("verbose,v", po::bool_switch(), "libbpf and agent debug on stderr (default: off)")
        ("syslog-facility", po::value<std::string>()->value_name("NAME"), "syslog facility (default: local0)")
        ("syslog-app-name", po::value<std::string>()->value_name("NAME"), "syslog APP-NAME (default: pdtt)")
        ("udp-timeout", po::value<std::string>()->value_name("SECONDS"),
            "a UDP flow closes after this long idle (default: 60)")
        ("flow-table-size", po::value<std::string>()->value_name("N"),
            "kernel flow table entries, about 200 bytes each when used (default: 262144)")
        ("ring-buffer-mib", po::value<std::string>()->value_name("MIB"),
            "kernel-to-agent ring buffer, a power of two, locked in memory (default: 4)")
        ("help,h", po::bool_switch(), "print this help and exit")
        ("version,V", po::bool_switch(), "print the version and exit");
    // clang-format on
    return d;
}

} // namespace

int syslog_facility_code(std::string_view name) {
    for (size_t i = 0; i < std::size(kFacilities); i++)
        if (kFacilities[i] == name)
            return static_cast<int>(i);
    return -1;
}

std::optional<Config> parse_config(int argc, const char* const argv[], std::ostream& out,
                                   const std::string& default_config) {
    const po::options_description desc = describe(default_config);
    const std::vector<std::string> args(argc > 1 ? argv + 1 : argv, argc > 1 ? argv + argc : argv);

    po::variables_map vm;
    try {
        const po::parsed_options parsed =
            po::command_line_parser(args)
                .options(desc)
                .style(po::command_line_style::unix_style & ~po::command_line_style::allow_guessing)
                .run();
        for (const po::option& o : parsed.options)
            if (o.position_key != -1 && !o.value.empty())
                usage_error("unexpected argument '" + o.value.front() + "' (interfaces go after -i)");
        po::store(parsed, vm);
    } catch (const po::error& e) {
        usage_error(std::string(e.what()) + " (see pdtt-agent --help)");
    }

    if (vm["help"].as<bool>()) {
        out << "Usage: pdtt-agent [options]\n"
               "Accounts network data transfer per user on this host.\n\n"
            << desc
            << "\nThe command line beats the config file, which beats the defaults.\n"
               "Exit status: 0 stopped, 1 runtime failure, 2 usage or config error,\n"
               "3 missing privilege or kernel feature.\n";
        return std::nullopt;
    }
    if (vm["version"].as<bool>()) {
        out << kProgramName << " " PDTT_VERSION "\n";
        return std::nullopt;
    }

    Config cfg;
    if (vm.count("config")) {
        read_config_file(cfg, vm["config"].as<std::string>(), "--config");
    } else {
        std::error_code ec;
        if (fs::exists(default_config, ec))
            read_config_file(cfg, default_config, "config file");
    }

    // Repeatable options: the command line's list replaces the file's.
    for (const char* key : {"interface", "syslog"}) {
        if (!vm.count(key))
            continue;
        (key == std::string_view("interface") ? cfg.interfaces : cfg.syslog).clear();
        for (const std::string& v : vm[key].as<std::vector<std::string>>())
            apply(cfg, key, v, std::string("--") + key);
    }
    for (const char* key : {"log-prefix", "interval", "stdout", "xdp-mode", "syslog-facility", "syslog-app-name",
                            "udp-timeout", "flow-table-size", "ring-buffer-mib"})
        if (vm.count(key))
            apply(cfg, key, vm[key].as<std::string>(), std::string("--") + key);
    if (vm["no-files"].as<bool>())
        cfg.files = false;
    if (vm["verbose"].as<bool>())
        cfg.verbose = true;

    if (cfg.interfaces.empty())
        usage_error("no interface given: use -i NAME (see ip -br link)");
    return cfg;
}

} // namespace pdtt
