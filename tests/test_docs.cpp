// The docs say what the code does: every option --help prints is in the man
// page, whose OPTIONS section is the option table's; every field the sinks
// emit (JSON keys, syslog parameters, metrics and their labels) is in
// docs/records.md, in its record type's section; the man page renders
// without warnings; and no tracked file points outside the repository.
// The fields come from real output: every record type built and written
// through the sinks, as the agent writes them.
#define BOOST_TEST_MODULE docs
#include <boost/test/unit_test.hpp>

#include "factory.hpp"
#include "metrics_sink.hpp"
#include "syslog_format.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace pdtt;

namespace {

const fs::path kSource = PDTT_SOURCE_DIR;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in, "cannot read " << p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Run {
    int status = -1;
    std::string out; // stdout and stderr
};

// Runs a shell command and takes everything it prints.
Run run(const std::string& cmd) {
    Run r;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    BOOST_REQUIRE_MESSAGE(p, "cannot run " << cmd);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        r.out.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool have(const std::string& tool) { return run("command -v " + tool + " >/dev/null").status == 0; }

// A man page's text as a reader sees the names in it: "\-\-flow\-table\-size"
// and "\fB\-i\fR" read as "--flow-table-size" and "-i".
std::string roff_plain(std::string s) {
    s = std::regex_replace(s, std::regex(R"(\\f[BIRP])"), "");
    s = std::regex_replace(s, std::regex(R"(\\-)"), "-");
    s = std::regex_replace(s, std::regex(R"(\\&)"), "");
    return s;
}

// docs/records.md split at its headings: "### `flow_open`" is "flow_open",
// "## Syslog" is "Syslog"; each holds the text up to the next heading.
std::map<std::string, std::string> sections(const std::string& md) {
    std::map<std::string, std::string> out;
    std::istringstream in(md);
    std::string line, name;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, std::regex(R"(#{2,3} `?([^`]+)`?)"))) {
            name = m[1];
            continue;
        }
        out[name] += line + "\n";
    }
    return out;
}

// Whether a table of `text` has a row for `field`: "| `field` |".
bool has_row(const std::string& text, const std::string& field) {
    return text.find("| `" + field + "` |") != std::string::npos;
}

// 2024-01-15 10:30:00 UTC.
Timestamp at() { return Timestamp(std::chrono::microseconds(int64_t{1705314600} * 1'000'000)); }

FlowRecord flow(FlowEvent type) {
    FlowRecord r;
    r.type = type;
    r.ts = at();
    r.id.flow_id = 42;
    r.id.iface = "eth0";
    r.id.uid = 1001;
    r.id.user = "alice";
    r.id.pid = 4242;
    r.id.comm = "rsync";
    r.id.proto = "tcp";
    r.id.family = "ipv4";
    r.id.local = "192.0.2.10";
    r.id.lport = 40000;
    r.id.remote = "198.51.100.7";
    r.id.rport = 873;
    r.id.direction = Direction::outbound;
    r.id.cgroup = "/system.slice/slurmstepd.scope/job_1234/step_0";
    r.id.job = "1234";
    r.id.step = "0";
    r.cnt = {1000, 2000, 3, 4};
    r.from_uid = 0;
    r.from_user = "root";
    r.from_job = std::nullopt;
    r.tcp_bytes_acked = 1002;
    r.tcp_bytes_received = 2001;
    r.duration_ms = 1500;
    return r;
}

UserReport user_report() {
    UserReport r;
    r.ts = at();
    r.user = "alice";
    r.uid = 1001;
    r.interval_s = 10;
    r.tx_bytes = 1000;
    r.rx_bytes = 2000;
    r.tx_packets = 3;
    r.rx_packets = 4;
    r.flows = 2;
    r.connections = {{"192.0.2.10", "198.51.100.7", 600, 1500}, {"*", "*", 400, 500}};
    r.classes = {{"storage", 600, 1500}, {"other", 400, 500}};
    return r;
}

JobReport job_report() {
    JobReport r;
    r.ts = at();
    r.job = "1234";
    r.step = "0";
    r.cgroup = "/system.slice/slurmstepd.scope/job_1234/step_0";
    r.user = "alice";
    r.uid = 1001;
    r.interval_s = 10;
    r.tx_bytes = 1000;
    r.rx_bytes = 2000;
    r.classes = {{"storage", 1000, 2000}};
    return r;
}

AgentStats agent_stats() {
    AgentStats s;
    s.ts = at();
    s.interval_s = 10;
    s.events = 10, s.ring_drops = 1, s.flow_table_full = 2, s.aux_table_full = 3, s.flow_share_full = 4;
    s.owner_deferred = 5, s.deltas_incomplete = 6, s.flows_active = 7, s.flows_udp = 2, s.flow_table_size = 1024;
    s.sink_errors = 8, s.interfaces_missing = 1;
    return s;
}

// Field paths of one JSON record: "tx_bytes", "connections[].local",
// "classes.NAME.tx_bytes" (a class's key is the user's name for it).
void collect(const json::object& o, const std::string& prefix, std::set<std::string>& out) {
    for (const auto& kv : o) {
        const std::string path = prefix + std::string(kv.key());
        out.insert(path);
        if (kv.value().is_array()) {
            for (const auto& e : kv.value().get_array())
                if (e.is_object())
                    collect(e.get_object(), path + "[].", out);
        } else if (kv.value().is_object()) {
            for (const auto& c : kv.value().get_object())
                if (c.value().is_object())
                    collect(c.value().get_object(), path + ".NAME.", out);
        }
    }
}

// Every record type, written by the JSON sink: type -> its field paths.
std::map<std::string, std::set<std::string>> json_fields() {
    std::FILE* f = std::tmpfile();
    BOOST_REQUIRE(f);
    {
        auto sink = make_json_sink(f);
        sink->flow_open(flow(FlowEvent::open));
        sink->flow_delta(flow(FlowEvent::delta));
        sink->flow_owner(flow(FlowEvent::owner));
        sink->flow_close(flow(FlowEvent::close));
        sink->user_report(user_report());
        sink->job_report(job_report());
        sink->agent_stats(agent_stats());
        sink->interval_end();
        sink->flush();
    }
    std::rewind(f);
    std::map<std::string, std::set<std::string>> out;
    char buf[8192];
    while (std::fgets(buf, sizeof buf, f)) {
        const json::object o = json::parse(buf).as_object();
        collect(o, "", out[std::string(o.at("type").as_string())]);
    }
    std::fclose(f);
    return out;
}

const std::string kRecordTypes[] = {"flow_open",   "flow_delta", "flow_owner", "flow_close",
                                    "user_report", "job_report", "agent_stats"};

} // namespace

BOOST_AUTO_TEST_CASE(every_option_of_help_is_in_the_man_page) {
    const Run help = run(std::string(PDTT_AGENT_BIN) + " --help");
    BOOST_REQUIRE_EQUAL(help.status, 0);
    const std::string man = roff_plain(slurp(kSource / "docs/pdtt-agent.8"));
    std::set<std::string> names;
    const std::regex opt(R"((^|[ ,\[])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b)");
    for (auto it = std::sregex_iterator(help.out.begin(), help.out.end(), opt); it != std::sregex_iterator(); ++it)
        names.insert((*it)[2]);
    BOOST_TEST(names.size() > 20u, "--help names " << names.size() << " options");
    for (const std::string& n : names)
        BOOST_TEST(man.find(n) != std::string::npos, "--help's " << n << " is in docs/pdtt-agent.8");
    // "-c [ --config ] FILE" in --help: the man page's "-c, --config".
    const std::regex pair(R"(-([a-zA-Z]) \[ (--[a-z][a-z0-9-]*) \])");
    int pairs = 0;
    for (auto it = std::sregex_iterator(help.out.begin(), help.out.end(), pair); it != std::sregex_iterator();
         ++it, ++pairs) {
        const std::string both = "-" + (*it)[1].str() + ", " + (*it)[2].str();
        BOOST_TEST(man.find(both) != std::string::npos, both << " is in docs/pdtt-agent.8");
    }
    BOOST_TEST(pairs >= 5, "--help names " << pairs << " short options");
}

BOOST_AUTO_TEST_CASE(man_page_options_are_the_option_table) {
    const Run r = run(std::string(PDTT_MANPAGE_BIN) + " --check " + (kSource / "docs/pdtt-agent.8").string());
    BOOST_TEST(r.status == 0, r.out);
}

BOOST_AUTO_TEST_CASE(man_page_renders_without_warnings) {
    const std::string page = (kSource / "docs/pdtt-agent.8").string();
    if (!have("groff")) {
        BOOST_TEST_MESSAGE("no groff here: rendering not checked");
        return;
    }
    const Run r = run("groff -man -ww -z -Tutf8 " + page);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.empty(), "groff -ww says: " << r.out);
    if (have("man")) {
        const Run m = run("MANWIDTH=80 man --warnings -l " + page + " >/dev/null");
        BOOST_TEST(m.status == 0);
        BOOST_TEST(m.out.empty(), "man -l says: " << m.out);
    }
    if (have("mandoc")) {
        const Run m = run("mandoc -T lint -W warning " + page);
        BOOST_TEST(m.out.empty(), "mandoc -T lint says: " << m.out);
    }
}

BOOST_AUTO_TEST_CASE(every_json_field_is_in_the_records_reference) {
    const auto docs = sections(slurp(kSource / "docs/records.md"));
    const auto fields = json_fields();
    for (const std::string& type : kRecordTypes) {
        BOOST_TEST_CONTEXT("record " << type) {
            BOOST_TEST_REQUIRE(fields.count(type) == 1u, "the JSON sink wrote a " << type);
            BOOST_TEST_REQUIRE(docs.count(type) == 1u, "docs/records.md has a section for " << type);
            std::string allowed = docs.at("Every record") + docs.at(type);
            if (type.rfind("flow_", 0) == 0)
                allowed += docs.at("Flow identity");
            for (const std::string& f : fields.at(type))
                BOOST_TEST(has_row(allowed, f), f << " has a row in its section");
        }
    }
}

BOOST_AUTO_TEST_CASE(every_syslog_parameter_is_in_the_records_reference) {
    const auto docs = sections(slurp(kSource / "docs/records.md"));
    const auto fields = json_fields();
    const rfc5424::Header h{16, "dtn1", "pdtt", "812"};
    std::map<std::string, std::vector<std::string>> messages{
        {"flow_owner", {rfc5424::format_flow_owner(h, flow(FlowEvent::owner))}},
        {"flow_close", {rfc5424::format_flow_close(h, flow(FlowEvent::close))}},
        {"user_report", rfc5424::format_user_report(h, user_report(), 400)}, // small: split in parts
        {"job_report", {rfc5424::format_job_report(h, job_report())}},
        {"agent_stats", {rfc5424::format_agent_stats(h, agent_stats())}},
    };
    BOOST_TEST(messages["user_report"].size() > 1u, "the user_report was split, so part and parts are checked");
    const std::regex param(R"( ([a-z_0-9]+)=")");
    for (const auto& [type, msgs] : messages) {
        BOOST_TEST_CONTEXT("syslog " << type) {
            std::set<std::string> names;
            for (const std::string& m : msgs)
                for (auto it = std::sregex_iterator(m.begin(), m.end(), param); it != std::sregex_iterator(); ++it)
                    names.insert((*it)[1]);
            BOOST_TEST(names.count("v") == 1u);
            for (std::string n : names) {
                // local_0 is local_N; anything else is the JSON field of that name.
                n = std::regex_replace(n, std::regex("_[0-9]+$"), "_N");
                const bool json_field = fields.at(type).count(n) == 1 && n != "type";
                BOOST_TEST((json_field || has_row(docs.at("Syslog"), n)),
                           n << " is a JSON field of " << type << " or has a row under Syslog");
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(every_metric_and_label_is_in_the_records_reference) {
    const auto docs = sections(slurp(kSource / "docs/records.md"));
    const std::string& prom = docs.at("Prometheus metrics");
    boost::asio::io_context io;
    auto sink = make_metrics_sink(MetricsOptions{.listen = "", .token_file = "", .version = "0.1.0"}, io);
    sink->flow_open(flow(FlowEvent::open));
    sink->flow_delta(flow(FlowEvent::delta));
    sink->flow_close(flow(FlowEvent::close));
    sink->user_report(user_report());
    sink->agent_stats(agent_stats());
    sink->interval_end();
    const std::string text = sink->exposition();

    std::set<std::string> metrics, labels;
    std::istringstream in(text);
    std::string line;
    const std::regex type_line(R"(# TYPE ([a-z_]+) .*)"), label(R"(([a-z_]+)=")");
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, type_line))
            metrics.insert(m[1]);
        else if (line.rfind('#', 0) != 0)
            for (auto it = std::sregex_iterator(line.begin(), line.end(), label); it != std::sregex_iterator(); ++it)
                labels.insert((*it)[1]);
    }
    BOOST_TEST(metrics.count("pdtt_transmit_bytes_total") == 1u, text);
    BOOST_TEST(labels.count("user") == 1u, text);
    for (const std::string& m : metrics)
        BOOST_TEST(has_row(prom, m), "metric " << m << " has a row under Prometheus metrics");
    for (const std::string& l : labels)
        BOOST_TEST(has_row(prom, l), "label " << l << " has a row under Prometheus metrics");
}

// A relative link in the Markdown documents names a file of the tree.
BOOST_AUTO_TEST_CASE(every_relative_link_of_the_documents_resolves) {
    std::vector<fs::path> docs{kSource / "README.md", kSource / "CHANGELOG.md"};
    for (const auto& e : fs::directory_iterator(kSource / "docs"))
        if (e.path().extension() == ".md")
            docs.push_back(e.path());
    const std::regex link(R"(\]\(([^)#\s]+)(#[^)]*)?\))");
    int links = 0;
    for (const fs::path& doc : docs) {
        const std::string text = slurp(doc);
        for (auto it = std::sregex_iterator(text.begin(), text.end(), link); it != std::sregex_iterator(); ++it) {
            const std::string target = (*it)[1];
            if (target.find("://") != std::string::npos)
                continue;
            links++;
            BOOST_TEST(fs::exists(doc.parent_path() / target), doc.filename() << " links " << target);
        }
    }
    BOOST_TEST(links > 5, links << " relative links checked");
}

// Users of the repository have nothing outside it: no file may send them there.
BOOST_AUTO_TEST_CASE(no_tracked_file_points_outside_the_repository) {
    if (!fs::exists(kSource / ".git") || !have("git")) {
        BOOST_TEST_MESSAGE("not a git checkout: not checked");
        return;
    }
    // Patterns that do not match themselves, so this file passes too. The
    // product contract the code was written to is not in the repository:
    // not even its name (a word of its own, not AF_UNSPEC) may appear.
    const Run r = run("git -C " + kSource.string() +
                      " grep -n -I -E -e '(^|[^A-Za-z_])S[P]EC([^A-Za-z_]|$)' -e '[.][.]/shared' -e '/work[/]shared'");
    BOOST_TEST(r.status == 1, "tracked files that point outside the repository:\n" << r.out);
}
