// Command line and /etc/pdtt.conf, through Boost.Program_options.
// Precedence: command line, then config file, then defaults.
#pragma once

#include "classes.hpp"
#include "errors.hpp"
#include "pdtt.h"
#include "records.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pdtt {

enum class StdoutMode { text, json, none };
enum class XdpMode { automatic, native, generic };
enum class IngressHook { automatic, xdp, tc };

struct Config {
    std::vector<std::string> interfaces;
    std::string log_prefix = "/var/log/pdtt";
    std::chrono::milliseconds interval{10'000};
    StdoutMode stdout_mode = StdoutMode::text;
    std::vector<std::string> syslog;                // udp://host:port, tcp://host:port, tls://host:port
    std::string syslog_ca, syslog_cert, syslog_key; // tls://: PEM files, "" for none (the system's CAs)
    bool files = true;
    IngressHook ingress = IngressHook::automatic;
    XdpMode xdp_mode = XdpMode::automatic; // only with ingress xdp
    bool verbose = false;
    std::string config_file;  // the file that was read, "" if none
    int syslog_facility = 16; // local0
    std::string syslog_app_name = "pdtt";
    std::chrono::seconds udp_timeout{60};
    uint32_t flow_table_size = PDTT_DEFAULT_FLOW_ENTRIES; // kernel flow table entries
    uint32_t max_flows_per_user = 0;                      // entries one uid may hold; 0: a quarter of flow_table_size
    uint32_t ring_buffer_mib = PDTT_DEFAULT_RING_MIB;     // kernel-to-user ring, MiB (power of two)
    RecordTypes syslog_records;                           // which records go to syslog: all by default
    TrafficClasses classes;                               // --class; empty: no per-class totals
    std::string metrics_listen;                           // ADDR:PORT of GET /metrics, "" for off
    std::string metrics_token_file;                       // bearer token for /metrics, "" for none
    bool wait_for_interfaces = false;                     // a missing interface at start is waited for, not exit 2
    std::string cgroup_v1 = "auto";                       // jobs' hierarchy: auto, off (v2) or a v1 controller
};

// One option: its command-line form, its config-file key and its help. The
// command line, the config file and --help all come from options(), and a
// man page can too, so an option is one row there plus its Config field.
struct OptionSpec {
    std::string_view name = {};       // --NAME, and the config file's key
    char short_name = 0;              // -X; 0 for none
    std::string_view value_name = {}; // as in --interval SECONDS; empty for a switch (true/false in the file)
    std::string_view help = {};       // one line, without "repeatable" and the default
    bool repeatable = false;          // each use adds a value; the command line's list replaces the file's
    // Checks one value's text and sets it; `where` names its origin in
    // messages ("--interval" or "FILE:LINE: interval"). A switch given on the
    // command line is applied as "true". Null for --config, --help and
    // --version: command line only, no config-file keys.
    void (*apply)(Config& cfg, const std::string& value, const std::string& where) = nullptr;
    // The default as help shows it, read from a default Config (whose
    // config_file names the file read when there is no --config); null when
    // there is none to show.
    std::string (*shown_default)(const Config& defaults) = nullptr;
};

// Every option, in --help order.
std::span<const OptionSpec> options();

// RFC 5424 facility number of a name ("local0" -> 16); -1 if unknown.
int syslog_facility_code(std::string_view name);

inline constexpr const char* kDefaultConfigFile = "/etc/pdtt.conf";

// Parses argv (and the config file it names, or kDefaultConfigFile when that
// exists). Returns nullopt after printing --help or --version to `out`.
// Throws Error(kExitUsage, "...") with a one-line message naming the option,
// or FILE:LINE and the key, for anything malformed.
// default_config is a parameter so tests need not touch /etc.
std::optional<Config> parse_config(int argc, const char* const argv[], std::ostream& out,
                                   const std::string& default_config = kDefaultConfigFile);

} // namespace pdtt
