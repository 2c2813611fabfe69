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

// Boost fills its option errors' templates by replacing "%option%",
// "%original_token%"... until none is left, so a token that holds its own
// placeholder (`--x%original_token%`) never ends and grows without bound
// (fuzz_config). The values go in with '%' masked, and come out as typed.
std::string option_error_text(po::error& e) {
    struct Masked : po::error_with_option_name {
        static void mask(po::error_with_option_name& named) {
            for (auto& [key, value] : named.*(&Masked::m_substitutions))
                std::replace(value.begin(), value.end(), '%', '\x01');
        }
    };
    auto* named = dynamic_cast<po::error_with_option_name*>(&e);
    if (!named)
        return e.what();
    Masked::mask(*named);
    std::string text = named->what();
    std::replace(text.begin(), text.end(), '\x01', '%');
    return text;
}

namespace fs = std::filesystem;

constexpr std::size_t kMaxIfName = 15; // IFNAMSIZ - 1

[[noreturn]] void usage_error(const std::string& message) { throw Error(kExitUsage, message); }

bool all_digits(std::string_view s);
[[noreturn]] void bad_value(const std::string& where, const std::string& value, const std::string& problem);

// The names of an enum's values, for parsing and for help's defaults.
template <typename E> struct Choice {
    std::string_view name;
    E value;
};
constexpr Choice<StdoutMode> kStdoutModes[] = {
    {"text", StdoutMode::text}, {"json", StdoutMode::json}, {"none", StdoutMode::none}};
constexpr Choice<XdpMode> kXdpModes[] = {
    {"auto", XdpMode::automatic}, {"native", XdpMode::native}, {"generic", XdpMode::generic}};
constexpr Choice<IngressHook> kIngressHooks[] = {
    {"auto", IngressHook::automatic}, {"xdp", IngressHook::xdp}, {"tc", IngressHook::tc}};

constexpr std::string_view kFacilities[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7",
};

// A whole number from lo to hi, named for messages.
uint64_t parse_count(const std::string& where, const std::string& value, uint64_t lo, uint64_t hi, const char* unit) {
    if (!all_digits(value) || value.size() > 12 || std::stoull(value) < lo || std::stoull(value) > hi)
        bad_value(where, value,
                  "must be a whole number of " + std::string(unit) + " from " + std::to_string(lo) + " to " +
                      std::to_string(hi));
    return std::stoull(value);
}

// A value's origin for messages: "--interval" or "FILE:LINE: interval".
[[noreturn]] void bad_value(const std::string& where, const std::string& value, const std::string& problem) {
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
    const std::string_view frac = dot == std::string::npos ? std::string_view() : std::string_view(v).substr(dot + 1);
    const bool whole_ok = whole.empty() || all_digits(whole);
    const bool frac_ok = frac.empty() || all_digits(frac);
    if (!whole_ok || !frac_ok || (whole.empty() && frac.empty()))
        bad_value(where, v, problem);

    std::string_view w = whole;
    while (w.size() > 1 && w.front() == '0')
        w.remove_prefix(1);
    if (w.size() > 5) // more than 99999 s, and no overflow below
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

// "a, b or c"
template <typename E, std::size_t N> std::string choice_list(const Choice<E> (&choices)[N]) {
    std::string s;
    for (std::size_t i = 0; i < N; ++i)
        s += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(choices[i].name);
    return s;
}

template <typename E, std::size_t N>
E parse_choice(const std::string& where, const std::string& v, const Choice<E> (&choices)[N]) {
    for (const Choice<E>& c : choices)
        if (c.name == v)
            return c.value;
    bad_value(where, v, "must be " + choice_list(choices));
}

template <typename E, std::size_t N> std::string choice_name(E value, const Choice<E> (&choices)[N]) {
    for (const Choice<E>& c : choices)
        if (c.value == value)
            return std::string(c.name);
    return "?";
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

// udp://, tcp:// or tls://HOST:PORT, an IPv6 literal in brackets.
// Whether HOST resolves is checked at run time.
void check_syslog(const std::string& where, const std::string& v) {
    const auto fail = [&](const std::string& problem) {
        bad_value(where, v, problem + " (expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT)");
    };
    std::string_view rest = v;
    if (!rest.starts_with("udp://") && !rest.starts_with("tcp://") && !rest.starts_with("tls://"))
        fail("must start with udp://, tcp:// or tls://");
    rest.remove_prefix(6);

    std::string_view port;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            fail("missing ']' after the IPv6 address");
        const std::string host(rest.substr(1, close - 1));
        const auto pct = host.find('%'); // zone, as in [fe80::1%eth0]
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
        if (!std::all_of(host.begin(), host.end(),
                         [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; }))
            fail("'" + std::string(host) + "' is not a host name or address");
        port = rest.substr(colon + 1);
    }
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) < 1 ||
        std::stoul(std::string(port)) > 65535)
        fail("port must be a number from 1 to 65535");
}

// Help's defaults.
std::string on_off(bool on) { return on ? "on" : "off"; }

// "flow_close,user_report": every name a record type syslog carries, none twice.
RecordTypes parse_record_types(const std::string& where, const std::string& v) {
    RecordTypes set{0};
    std::string_view rest = v;
    while (true) {
        const auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        const auto t = RecordTypes::find(item);
        if (!t) {
            std::string names;
            for (auto n : kSyslogRecordNames)
                names += (names.empty() ? "" : ", ") + std::string(n);
            bad_value(where, v, "'" + std::string(item) + "' is not a record type syslog sends (" + names + ")");
        }
        if (set.has(*t))
            bad_value(where, v, "'" + std::string(item) + "' given twice");
        set.add(*t);
        if (comma == std::string_view::npos)
            break;
        rest.remove_prefix(comma + 1);
    }
    return set;
}

std::string record_types_text(const RecordTypes& set) {
    std::string s;
    for (std::size_t i = 0; i < std::size(kSyslogRecordNames); ++i)
        if (set.has(static_cast<RecordType>(i)))
            s += (s.empty() ? "" : ",") + std::string(kSyslogRecordNames[i]);
    return s;
}

std::string list_or_none(const std::vector<std::string>& list) {
    std::string s;
    for (const std::string& v : list)
        s += (s.empty() ? "" : ", ") + v;
    return s.empty() ? "none" : s;
}

// "10", "2.5"
std::string seconds_text(std::chrono::milliseconds ms) {
    std::string s = std::to_string(ms.count() / 1000);
    if (const long frac = static_cast<long>(ms.count() % 1000)) {
        std::string digits = std::to_string(1000 + frac).substr(1);
        digits.erase(digits.find_last_not_of('0') + 1);
        s += "." + digits;
    }
    return s;
}

std::string facility_name(int code) {
    return code >= 0 && static_cast<std::size_t>(code) < std::size(kFacilities) ? std::string(kFacilities[code])
                                                                                : std::to_string(code);
}

// Every option; the one place values are checked. Config-file keys are in
// this order in messages, options in --help.
// clang-format off
constexpr OptionSpec kOptions[] = {
    {.name = "config", .short_name = 'c', .value_name = "FILE",
     .help = "INI config file, the long option names as keys",
     .shown_default = [](const Config& d) { return d.config_file + " when it exists"; }},
    {.name = "interface", .short_name = 'i', .value_name = "NAME",
     .help = "interface to monitor, required here or in the config file", .repeatable = true,
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         check_interface(where, v);
         if (std::find(c.interfaces.begin(), c.interfaces.end(), v) != c.interfaces.end())
             bad_value(where, v, "interface given twice");
         c.interfaces.push_back(v);
     }},
    {.name = "log-prefix", .short_name = 'l', .value_name = "PREFIX", .help = "logs at PREFIX-USER.log",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         if (v.empty())
             bad_value(where, v, "must not be empty (logs go to PREFIX-USERNAME.log)");
         c.log_prefix = v;
     },
     .shown_default = [](const Config& d) { return d.log_prefix; }},
    {.name = "interval", .short_name = 't', .value_name = "SECONDS", .help = "report interval, 0.1 to 86400",
     .apply = [](Config& c, const std::string& v, const std::string& where) { c.interval = parse_interval(where, v); },
     .shown_default = [](const Config& d) { return seconds_text(d.interval); }},
    {.name = "stdout", .value_name = "MODE", .help = "console output: text, json (JSON lines) or none",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.stdout_mode = parse_choice(where, v, kStdoutModes);
     },
     .shown_default = [](const Config& d) { return choice_name(d.stdout_mode, kStdoutModes); }},
    {.name = "syslog", .value_name = "URL", .help = "send records to udp://, tcp:// or tls://HOST:PORT",
     .repeatable = true,
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         check_syslog(where, v);
         c.syslog.push_back(v);
     },
     .shown_default = [](const Config& d) { return list_or_none(d.syslog); }},
    {.name = "syslog-records", .value_name = "LIST", .help = "which record types go to syslog, comma-separated",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.syslog_records = parse_record_types(where, v);
     },
     .shown_default = [](const Config& d) { return record_types_text(d.syslog_records); }},
    {.name = "syslog-ca", .value_name = "FILE", .help = "tls:// syslog: the receivers' CA certificates (PEM)",
     .apply = [](Config& c, const std::string& v, const std::string&) { c.syslog_ca = v; },
     .shown_default = [](const Config&) { return std::string("the system's CAs"); }},
    {.name = "syslog-cert", .value_name = "FILE", .help = "tls:// syslog: client certificate (PEM), with --syslog-key",
     .apply = [](Config& c, const std::string& v, const std::string&) { c.syslog_cert = v; },
     .shown_default = [](const Config&) { return std::string("none"); }},
    {.name = "syslog-key", .value_name = "FILE", .help = "tls:// syslog: the client certificate's private key (PEM)",
     .apply = [](Config& c, const std::string& v, const std::string&) { c.syslog_key = v; },
     .shown_default = [](const Config&) { return std::string("none"); }},
    {.name = "no-files", .help = "write no per-user log files",
     .apply = [](Config& c, const std::string& v, const std::string& where) { c.files = !parse_bool(where, v); },
     .shown_default = [](const Config& d) { return "files " + on_off(d.files); }},
    {.name = "ingress", .value_name = "HOOK",
     .help = "ingress hook: auto (native XDP on known NIC drivers, else tc), xdp or tc",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.ingress = parse_choice(where, v, kIngressHooks);
     },
     .shown_default = [](const Config& d) { return choice_name(d.ingress, kIngressHooks); }},
    {.name = "xdp-mode", .value_name = "MODE",
     .help = "with --ingress xdp: auto (native, else generic), native or generic",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.xdp_mode = parse_choice(where, v, kXdpModes);
     },
     .shown_default = [](const Config& d) { return choice_name(d.xdp_mode, kXdpModes); }},
    {.name = "verbose", .short_name = 'v', .help = "libbpf and agent debug on stderr",
     .apply = [](Config& c, const std::string& v, const std::string& where) { c.verbose = parse_bool(where, v); },
     .shown_default = [](const Config& d) { return on_off(d.verbose); }},
    {.name = "syslog-facility", .value_name = "NAME", .help = "syslog facility",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.syslog_facility = syslog_facility_code(v);
         if (c.syslog_facility < 0)
             bad_value(where, v, "not a syslog facility (local0..local7, daemon, user, ...)");
     },
     .shown_default = [](const Config& d) { return facility_name(d.syslog_facility); }},
    {.name = "syslog-app-name", .value_name = "NAME", .help = "syslog APP-NAME",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         // RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
         if (v.empty() || v.size() > 48 ||
             !std::all_of(v.begin(), v.end(), [](char ch) { return ch > 32 && ch < 127; }))
             bad_value(where, v, "must be 1 to 48 printable ASCII characters without spaces");
         c.syslog_app_name = v;
     },
     .shown_default = [](const Config& d) { return d.syslog_app_name; }},
    {.name = "udp-timeout", .value_name = "SECONDS", .help = "a UDP flow closes after this long idle",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.udp_timeout = std::chrono::seconds(parse_count(where, v, 1, 86400, "seconds"));
     },
     .shown_default = [](const Config& d) { return std::to_string(d.udp_timeout.count()); }},
    {.name = "flow-table-size", .value_name = "N",
     .help = "kernel flow table entries, about 200 bytes each when used",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.flow_table_size = static_cast<uint32_t>(parse_count(where, v, 16, 1u << 24, "entries"));
     },
     .shown_default = [](const Config& d) { return std::to_string(d.flow_table_size); }},
    {.name = "max-flows-per-user", .value_name = "N",
     .help = "flow table entries one uid may hold; its further flows count in its overflow row",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.max_flows_per_user = static_cast<uint32_t>(parse_count(where, v, 1, 1u << 24, "entries"));
     },
     .shown_default = [](const Config& d) {
         return d.max_flows_per_user ? std::to_string(d.max_flows_per_user) : "a quarter of flow-table-size";
     }},
    {.name = "ring-buffer-mib", .value_name = "MIB",
     .help = "kernel-to-agent ring buffer, a power of two, locked in memory",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         const uint64_t mib = parse_count(where, v, 1, 1024, "MiB");
         if (mib & (mib - 1))
             bad_value(where, v, "must be a power of two (1, 2, 4, ... 1024)");
         c.ring_buffer_mib = static_cast<uint32_t>(mib);
     },
     .shown_default = [](const Config& d) { return std::to_string(d.ring_buffer_mib); }},
    {.name = "cgroup-v1", .value_name = "CONTROLLER",
     .help = "jobs from this cgroup v1 hierarchy (Slurm on v1); auto: freezer when it has slurm/, else v2; off: v2",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         if (v.empty() || v.size() > 64 || !std::all_of(v.begin(), v.end(), [](char ch) {
                 return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '=' || ch == '-';
             }))
             bad_value(where, v, "must be auto, off or a v1 controller such as freezer or name=NAME");
         c.cgroup_v1 = v;
     },
     .shown_default = [](const Config& d) { return d.cgroup_v1; }},
    {.name = "class", .value_name = "NAME=CIDR[,CIDR...]",
     .help = "a traffic class of remote addresses, the most specific wins, else 'other'", .repeatable = true,
     .apply = [](Config& c, const std::string& v, const std::string& where) { c.classes.add(v, where); },
     .shown_default = [](const Config&) { return std::string("none"); }},
    {.name = "metrics-listen", .value_name = "ADDR:PORT",
     .help = "serve Prometheus metrics at http://ADDR:PORT/metrics (IPv6 in brackets)",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         const auto colon = v.rfind(':');
         std::string host = v.substr(0, colon == std::string::npos ? 0 : colon);
         const std::string port = colon == std::string::npos ? "" : v.substr(colon + 1);
         const bool v6 = host.size() >= 2 && host.front() == '[' && host.back() == ']';
         if (v6)
             host = host.substr(1, host.size() - 2);
         unsigned char addr[16];
         if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), addr) != 1)
             bad_value(where, v, "must be ADDR:PORT with an IP address, as in 127.0.0.1:9877 or [::1]:9877");
         if (!all_digits(port) || port.size() > 5 || std::stoul(port) < 1 || std::stoul(port) > 65535)
             bad_value(where, v, "port must be a number from 1 to 65535");
         c.metrics_listen = v;
     },
     .shown_default = [](const Config& d) { return d.metrics_listen.empty() ? std::string("off") : d.metrics_listen; }},
    {.name = "metrics-token-file", .value_name = "FILE",
     .help = "require Authorization: Bearer <the file's token> on /metrics; mode 0600 or stricter",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         if (v.empty())
             bad_value(where, v, "must name a file");
         c.metrics_token_file = v;
     },
     .shown_default = [](const Config& d) {
         return d.metrics_token_file.empty() ? std::string("none") : d.metrics_token_file;
     }},
    {.name = "wait-for-interfaces", .help = "wait for an interface missing at start instead of failing",
     .apply = [](Config& c, const std::string& v, const std::string& where) {
         c.wait_for_interfaces = parse_bool(where, v);
     },
     .shown_default = [](const Config& d) { return on_off(d.wait_for_interfaces); }},
    {.name = "help", .short_name = 'h', .help = "print this help and exit"},
    {.name = "version", .short_name = 'V', .help = "print the version and exit"},
};
// clang-format on

// Mistakes in a new row that would otherwise show only at run time.
constexpr bool options_are_consistent() {
    for (std::size_t i = 0; i < std::size(kOptions); ++i) {
        const OptionSpec& o = kOptions[i];
        if (o.name.empty() || o.help.empty() || (o.repeatable && o.value_name.empty()))
            return false;
        for (std::size_t j = 0; j < i; ++j)
            if (kOptions[j].name == o.name || (o.short_name && kOptions[j].short_name == o.short_name))
                return false;
    }
    return true;
}
static_assert(options_are_consistent(), "kOptions: every option needs a name and help, a unique name and short "
                                        "name, and a value name when repeatable");

// A config-file key: an option with an apply.
const OptionSpec* find_key(std::string_view name) {
    for (const OptionSpec& o : kOptions)
        if (o.apply && o.name == name)
            return &o;
    return nullptr;
}

std::string key_list() {
    std::string s;
    for (const OptionSpec& o : kOptions)
        if (o.apply)
            s += (s.empty() ? "" : ", ") + std::string(o.name);
    return s;
}

// "FILE:LINE: unknown key 'KEY' (keys: ...)"
[[noreturn]] void unknown_key(const std::string& at, const std::string& key) {
    usage_error(at + "unknown key '" + key + "' (keys: " + key_list() + ")");
}

// "FILE:LINE: key 'KEY' PROBLEM"
[[noreturn]] void key_error(const std::string& at, const std::string& key, const std::string& problem) {
    usage_error(at + "key '" + key + "' " + problem);
}

// Whether the command line gave the option (a switch: set it).
bool given(const po::variables_map& vm, const OptionSpec& o) {
    const std::string name(o.name);
    return o.value_name.empty() ? vm[name].as<bool>() : vm.count(name) > 0;
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
// `what` names the file's origin: "--config" or "config file". A key the
// command line also gives is checked, then dropped: the command line's value,
// or list, replaces the file's.
void read_config_file(Config& cfg, const std::string& path, const std::string& what, const po::variables_map& cli) {
    std::error_code ec;
    if (fs::is_directory(path, ec))
        usage_error(what + " '" + path + "': is a directory, not a file");
    errno = 0;
    std::ifstream in(path);
    if (!in) {
        const int err = errno ? errno : ENOENT;
        usage_error(what + " '" + path + "': cannot read: " + std::strerror(err));
    }

    Config overridden;
    std::vector<std::pair<std::string_view, int>> seen; // non-repeatable key, line
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
        const OptionSpec* k = find_key(key);
        if (!k)
            unknown_key(at, key);
        if (!k->repeatable) {
            const auto prev = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == k->name; });
            if (prev != seen.end())
                key_error(at, key, "given twice (first on line " + std::to_string(prev->second) + ")");
            seen.emplace_back(k->name, lineno);
        }
        if (value.empty())
            key_error(at, key, "has no value");
        k->apply(given(cli, *k) ? overridden : cfg, value, at + key);
    }
    if (in.bad())
        usage_error(what + " '" + path + "': cannot read: " + std::strerror(errno ? errno : EIO));
    cfg.config_file = path;
}

po::options_description describe(const Config& defaults) {
    po::options_description d("Options");
    for (const OptionSpec& o : kOptions) {
        std::string names(o.name);
        if (o.short_name)
            names += std::string(",") + o.short_name;
        std::string text(o.help);
        if (o.repeatable)
            text += "; repeatable";
        if (o.shown_default)
            text += " (default: " + o.shown_default(defaults) + ")";
        const std::string value_name(o.value_name);
        const po::value_semantic* value = nullptr;
        if (value_name.empty())
            value = po::bool_switch();
        else if (o.repeatable)
            value = po::value<std::vector<std::string>>()->value_name(value_name);
        else
            value = po::value<std::string>()->value_name(value_name);
        d.add_options()(names.c_str(), value, text.c_str());
    }
    return d;
}

} // namespace

std::span<const OptionSpec> options() { return kOptions; }

int syslog_facility_code(std::string_view name) {
    for (size_t i = 0; i < std::size(kFacilities); i++)
        if (kFacilities[i] == name)
            return static_cast<int>(i);
    return -1;
}

std::optional<Config> parse_config(int argc, const char* const argv[], std::ostream& out,
                                   const std::string& default_config) {
    Config shown; // help's defaults; --config's is the file read without one
    shown.config_file = default_config;
    const po::options_description desc = describe(shown);
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
    } catch (po::error& e) {
        usage_error(option_error_text(e) + " (see pdtt-agent --help)");
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
        read_config_file(cfg, vm["config"].as<std::string>(), "--config", vm);
    } else {
        std::error_code ec;
        if (fs::exists(default_config, ec))
            read_config_file(cfg, default_config, "config file", vm);
    }

    for (const OptionSpec& o : kOptions) {
        if (!o.apply || !given(vm, o))
            continue;
        const std::string where = "--" + std::string(o.name);
        if (o.value_name.empty())
            o.apply(cfg, "true", where);
        else if (o.repeatable)
            for (const std::string& v : vm[std::string(o.name)].as<std::vector<std::string>>())
                o.apply(cfg, v, where);
        else
            o.apply(cfg, vm[std::string(o.name)].as<std::string>(), where);
    }

    if (cfg.interfaces.empty())
        usage_error("no interface given: use -i NAME (see ip -br link)");
    // Not an implied --ingress xdp: generic XDP is only ever asked for by name.
    if (cfg.xdp_mode != XdpMode::automatic && cfg.ingress != IngressHook::xdp)
        usage_error("--xdp-mode " + std::string(choice_name(cfg.xdp_mode, kXdpModes)) + " needs --ingress xdp");
    return cfg;
}

} // namespace pdtt
