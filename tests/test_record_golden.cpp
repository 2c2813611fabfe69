// Every record type, byte for byte, as the JSON sink and the syslog
// formatter write it, hostile strings included: a change to how records
// are rendered must leave these bytes alone, or change them here on purpose.
#define BOOST_TEST_MODULE record_golden
#include <boost/test/unit_test.hpp>

#include "factory.hpp"
#include "record_json.hpp"
#include "sample_records.hpp"
#include "syslog_format.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

using namespace pdtt;
using pdtt::test::at;
using pdtt::test::UtcZone;

namespace {

const rfc5424::Header kHeader{16, "host.example", "pdtt", "1234"};

// Quotes, backslashes, C0 controls, DEL, a bracket and invalid UTF-8.
const std::string kHostile = "a\"b\\c]\x01\n\x1f\x7f\xff\xfe\xc3(\xe2\x82";

FlowRecord flow(FlowEvent type) {
    FlowRecord r = test::sample_flow(type);
    r.id.flow_id = 18446744073709551615ull;
    r.id.cgroup = "system.slice/slurmstepd.scope/job_42/step_0/user/task_0";
    r.id.job = "42";
    r.id.step = "0";
    r.from_uid = 0;
    r.from_user = "root";
    r.from_job = "41";
    r.tcp_bytes_retrans = 7;
    return r;
}

// Nobody's: no process, no cgroup, over IPv6.
FlowRecord unowned(FlowEvent type) {
    FlowRecord r = flow(type);
    r.id.flow_id = 0;
    r.id.uid = kUnattributedUid;
    r.id.raw_uid = kUnattributedUid;
    r.id.user = kUnattributedUser;
    r.id.pid.reset();
    r.id.comm.reset();
    r.id.cgroup = {};
    r.id.job.reset();
    r.id.step.reset();
    r.id.proto = "udp";
    r.id.family = "ipv6";
    r.id.local = "fd00:201::1";
    r.id.remote = "fd00:201:ffff:ffff:ffff:ffff:ffff:ffff";
    r.id.direction = Direction::unknown;
    r.from_job.reset();
    return r;
}

FlowRecord hostile(FlowEvent type) {
    static const std::string user = "\x80u]\"", cgroup = "a/" + kHostile, job = "j\\" + kHostile;
    FlowRecord r = flow(type);
    r.id.iface = "eth\"0\\";
    r.id.user = user;
    r.id.comm = kHostile;
    r.id.cgroup = cgroup;
    r.id.job = job;
    r.id.step = kHostile;
    r.from_user = user;
    r.from_job = job;
    r.id.direction = Direction::inbound;
    return r;
}

UserReport report(double interval_s, size_t conns) {
    UserReport r;
    r.ts = at(999999);
    r.user = "alice";
    r.uid = 1000;
    r.interval_s = interval_s;
    r.tx_bytes = 786432;
    r.rx_bytes = 1179648;
    r.tx_packets = 600;
    r.rx_packets = 900;
    r.flows = 2;
    for (size_t i = 0; i < conns; ++i)
        r.connections.push_back(
            {"192.168.1.100", "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 1000 + i, 2000 + i});
    return r;
}

const std::vector<ClassTotals> kClasses = {{"wan", 5, 6}, {"other", 0, 0}};

JobReport job(bool step, double interval_s) {
    JobReport r;
    r.ts = at(5);
    r.job = "42";
    if (step)
        r.step = "batch";
    r.cgroup = "system.slice/slurmstepd.scope/job_42" + std::string(step ? "/step_batch" : "");
    r.user = "alice";
    r.uid = 1000;
    r.interval_s = interval_s;
    r.tx_bytes = 11;
    r.rx_bytes = 22;
    return r;
}

AgentStats stats(double interval_s) {
    AgentStats s;
    s.ts = at(1);
    s.interval_s = interval_s;
    s.events = 1, s.ring_drops = 2, s.flow_table_full = 3, s.aux_table_full = 4, s.flow_share_full = 5;
    s.owner_deferred = 6, s.deltas_incomplete = 7, s.flows_active = 8, s.flows_udp = 9;
    s.flow_table_size = 65536, s.sink_errors = 10, s.interfaces_missing = 11;
    s.cgroups_unresolved = 12;
    return s;
}

// What the JSON sink writes for the records handed in by feed.
std::string json_of(const std::function<void(Sink&)>& feed) {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    auto sink = make_json_sink(f);
    feed(*sink);
    sink->flush();
    sink.reset();
    std::fclose(f);
    std::string out(buf, len);
    std::free(buf);
    return out;
}

// The bytes as a C++ literal, so that a failure shows what to expect.
std::string literal(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 32 || c > 126) {
            char esc[6];
            std::snprintf(esc, sizeof esc, "\\%03o", c);
            out += esc;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

void check(const std::string& actual, const std::string& expected) {
    BOOST_TEST(actual == expected, "got " << literal(actual));
}

} // namespace

BOOST_AUTO_TEST_SUITE(json_lines)

BOOST_AUTO_TEST_CASE(flow_records) {
    check(json_of([](Sink& s) {
              s.flow_open(flow(FlowEvent::open));
              s.flow_delta(flow(FlowEvent::delta));
              s.flow_owner(flow(FlowEvent::owner));
              s.flow_close(flow(FlowEvent::close));
          }),
          "{\"v\":1,\"type\":\"flow_open\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth0\",\"user\":\"alice\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,\"comm\":\"rsync\","
          "\"cgroup\":\"system.sl"
          "ice/slurmstepd.scope/job_42/step_0/user/task_0\",\"job\":\"42\",\"step\":\"0\",\"proto\":\"tcp\","
          "\"family\":\"ipv4\",\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\","
          "\"rport\":443,\"direction\":\"outbound\"}\n"
          "{\"v\":1,\"type\":\"flow_delta\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth0\",\"user\":\"alice\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,\"comm\":\"rsync\","
          "\"cgroup\":\"system.sl"
          "ice/slurmstepd.scope/job_42/step_0/user/task_0\",\"job\":\"42\",\"step\":\"0\",\"proto\":\"tcp\","
          "\"family\":\"ipv4\",\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\","
          "\"rport\":443,\"direction\":\"outbound\",\"tx_bytes\":100,\"rx_bytes\":200,\"tx_packets\":3,"
          "\"rx_packets\":4}\n"
          "{\"v\":1,\"type\":\"flow_owner\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth0\",\"user\":\"alice\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,\"comm\":\"rsync\","
          "\"cgroup\":\"system.sl"
          "ice/slurmstepd.scope/job_42/step_0/user/task_0\",\"job\":\"42\",\"step\":\"0\",\"proto\":\"tcp\","
          "\"family\":\"ipv4\",\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\","
          "\"rport\":443,\"direction\":\"outbound\",\"from_uid\":0,\"from_user\":\"root\",\"from_job\":\"41\","
          "\"tx_bytes\":100,\"rx_bytes\":200,\"tx_packets\":3,\"rx_packets\":4}\n"
          "{\"v\":1,\"type\":\"flow_close\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth0\",\"user\":\"alice\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,\"comm\":\"rsync\","
          "\"cgroup\":\"system.sl"
          "ice/slurmstepd.scope/job_42/step_0/user/task_0\",\"job\":\"42\",\"step\":\"0\",\"proto\":\"tcp\","
          "\"family\":\"ipv4\",\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\","
          "\"rport\":443,\"direction\":\"outbound\",\"tx_bytes\":100,\"rx_bytes\":200,\"tx_packets\":3,"
          "\"rx_packets\":4,\"tcp_bytes_acked\":99,\"tcp_bytes_received\":198,\"tcp_bytes_retrans\":7,"
          "\"duration_ms\":1500}\n");
}

BOOST_AUTO_TEST_CASE(flow_records_of_nobody) {
    check(json_of([](Sink& s) {
              s.flow_open(unowned(FlowEvent::open));
              s.flow_owner(unowned(FlowEvent::owner));
              s.flow_close(unowned(FlowEvent::close));
          }),
          "{\"v\":1,\"type\":\"flow_open\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":0,\"iface\":\"eth0\","
          "\"user\":\"unattributed\",\"uid\":-1,\"raw_uid\":-1,\"pid\":null,\"comm\":null,\"cgroup\":null,\"job\":null,"
          "\"step\":null,\"proto\":\"udp\",\"family\":\"ipv6\",\"local\":\"fd00:201::1\",\"lport\":40000,"
          "\"remote\":\"fd00:201:ffff:ffff:ffff:ffff:ffff:ffff\",\"rport\":443,\"direction\":\"unknown\"}\n"
          "{\"v\":1,\"type\":\"flow_owner\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":0,\"iface\":\"eth0\","
          "\"user\":\"unattributed\",\"uid\":-1,\"raw_uid\":-1,\"pid\":null,\"comm\":null,\"cgroup\":null,\"job\":null,"
          "\"step\":null,\"proto\":\"udp\",\"family\":\"ipv6\",\"local\":\"fd00:201::1\",\"lport\":40000,"
          "\"remote\":\"fd00:201:ffff:ffff:ffff:ffff:ffff:ffff\",\"rport\":443,\"direction\":\"unknown\","
          "\"from_uid\":0,\"from_user\":\"root\",\"from_job\":null,\"tx_bytes\":100,\"rx_bytes\":200,"
          "\"tx_packets\":3,\"rx_packets\":4}\n"
          "{\"v\":1,\"type\":\"flow_close\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":0,\"iface\":\"eth0\","
          "\"user\":\"unattributed\",\"uid\":-1,\"raw_uid\":-1,\"pid\":null,\"comm\":null,\"cgroup\":null,\"job\":null,"
          "\"step\":null,\"proto\":\"udp\",\"family\":\"ipv6\",\"local\":\"fd00:201::1\",\"lport\":40000,"
          "\"remote\":\"fd00:201:ffff:ffff:ffff:ffff:ffff:ffff\",\"rport\":443,\"direction\":\"unknown\","
          "\"tx_bytes\":100,\"rx_bytes\":200,\"tx_packets\":3,\"rx_packets\":4,\"tcp_bytes_acked\":99,"
          "\"tcp_bytes_received\":198,\"tcp_bytes_retrans\":7,\"duration_ms\":1500}\n");
}

BOOST_AUTO_TEST_CASE(flow_records_with_hostile_strings) {
    check(json_of([](Sink& s) {
              s.flow_open(hostile(FlowEvent::open));
              s.flow_owner(hostile(FlowEvent::owner));
              s.flow_close(hostile(FlowEvent::close));
          }),
          "{\"v\":1,\"type\":\"flow_open\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth\\\"0\\\\\",\"user\":\"\357\277\275u]\\\"\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,"
          "\"comm\":\"a\\\"b\\\\"
          "c]\\u0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"cgroup\":\"a/a\\\"b\\\\c]\\u"
          "0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"job\":\"j\\\\a\\\"b\\\\c]\\u0001\\"
          "n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"step\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177"
          "\357\277\275\357\277\275\357\277\275(\357\277\275\",\"proto\":\"tcp\",\"family\":\"ipv4\","
          "\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\",\"rport\":443,\"direction\":\"in"
          "bound\"}\n"
          "{\"v\":1,\"type\":\"flow_owner\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth\\\"0\\\\\",\"user\":\"\357\277\275u]\\\"\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,"
          "\"comm\":\"a\\\"b\\\\"
          "c]\\u0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"cgroup\":\"a/a\\\"b\\\\c]\\u"
          "0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"job\":\"j\\\\a\\\"b\\\\c]\\u0001\\"
          "n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"step\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177"
          "\357\277\275\357\277\275\357\277\275(\357\277\275\",\"proto\":\"tcp\",\"family\":\"ipv4\","
          "\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\",\"rport\":443,\"direction\":\"in"
          "bound\",\"from_uid\":0,\"from_user\":\"\357\277\275u]\\\"\",\"from_job\":\"j\\\\a\\\"b\\\\c]\\u0001\\n\\u"
          "001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"tx_bytes\":100,\"rx_bytes\":200,"
          "\"tx_packets\":3,\"rx_packets\":4}\n"
          "{\"v\":1,\"type\":\"flow_close\",\"ts\":\"2024-01-15T10:30:00.123456Z\",\"flow_id\":18446744073709551615,"
          "\"iface\":\"eth\\\"0\\\\\",\"user\":\"\357\277\275u]\\\"\",\"uid\":1000,\"raw_uid\":1000,\"pid\":4242,"
          "\"comm\":\"a\\\"b\\\\"
          "c]\\u0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"cgroup\":\"a/a\\\"b\\\\c]\\u"
          "0001\\n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"job\":\"j\\\\a\\\"b\\\\c]\\u0001\\"
          "n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"step\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177"
          "\357\277\275\357\277\275\357\277\275(\357\277\275\",\"proto\":\"tcp\",\"family\":\"ipv4\","
          "\"local\":\"192.168.1.100\",\"lport\":40000,\"remote\":\"93.184.216.34\",\"rport\":443,\"direction\":\"in"
          "bound\",\"tx_bytes\":100,\"rx_bytes\":200,\"tx_packets\":3,\"rx_packets\":4,\"tcp_bytes_acked\":99,"
          "\"tcp_bytes_received\":198,\"tcp_bytes_retrans\":7,\"duration_ms\":1500}\n");
}

BOOST_AUTO_TEST_CASE(user_reports) {
    check(json_of([](Sink& s) {
              UserReport r = report(10, 2);
              s.user_report(r);
              r.classes = kClasses;
              s.user_report(r);
              r = report(0, 0);
              r.user = kHostile;
              r.uid = kUnattributedUid;
              s.user_report(r);
          }),
          "{\"v\":1,\"type\":\"user_report\",\"ts\":\"2024-01-15T10:30:00.999999Z\",\"user\":\"alice\","
          "\"uid\":1000,\"interval_s\":10,\"tx_bytes\":786432,\"rx_bytes\":1179648,\"tx_packets\":600,"
          "\"rx_packets\":900,\"flows\":2,\"connections\":[{\"local\":\"192.168.1.100\",\"remote\":\"10.0.0.0\","
          "\"tx_bytes\":1000,\"rx_bytes\":2000},{\"local\":\"192.168.1.100\",\"remote\":\"10.0.0.1\","
          "\"tx_bytes\":1001,\"rx_bytes\":2001}]}\n"
          "{\"v\":1,\"type\":\"user_report\",\"ts\":\"2024-01-15T10:30:00.999999Z\",\"user\":\"alice\","
          "\"uid\":1000,\"interval_s\":10,\"tx_bytes\":786432,\"rx_bytes\":1179648,\"tx_packets\":600,"
          "\"rx_packets\":900,\"flows\":2,\"connections\":[{\"local\":\"192.168.1.100\",\"remote\":\"10.0.0.0\","
          "\"tx_bytes\":1000,\"rx_bytes\":2000},{\"local\":\"192.168.1.100\",\"remote\":\"10.0.0.1\","
          "\"tx_bytes\":1001,\"rx_bytes\":2001}],\"classes\":{\"wan\":{\"tx_bytes\":5,\"rx_bytes\":6},"
          "\"other\":{\"tx_bytes\":0,\"rx_bytes\":0}}}\n"
          "{\"v\":1,\"type\":\"user_report\",\"ts\":\"2024-01-15T10:30:00.999999Z\",\"user\":\"a\\\"b\\\\c]\\u0001\\"
          "n\\u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"uid\":-1,\"interval_s\":0,"
          "\"tx_bytes\":786432,\"rx_bytes\":1179648,\"tx_packets\":600,\"rx_packets\":900,\"flows\":2,"
          "\"connections\":[]}\n");
}

BOOST_AUTO_TEST_CASE(job_reports) {
    check(json_of([](Sink& s) {
              s.job_report(job(true, 10));
              JobReport r = job(false, 10);
              r.classes = kClasses;
              s.job_report(r);
              r = job(true, 10);
              r.job = kHostile;
              r.step = kHostile;
              r.cgroup = kHostile;
              r.user = kHostile;
              s.job_report(r);
          }),
          "{\"v\":1,\"type\":\"job_report\",\"ts\":\"2024-01-15T10:30:00.000005Z\",\"job\":\"42\",\"step\":\"batch\""
          ",\"cgroup\":\"system.slice/slurmstepd.scope/job_42/step_batch\",\"user\":\"alice\",\"uid\":1000,"
          "\"interval_s\":10,\"tx_bytes\":11,\"rx_bytes\":22}\n"
          "{\"v\":1,\"type\":\"job_report\",\"ts\":\"2024-01-15T10:30:00.000005Z\",\"job\":\"42\",\"step\":null,"
          "\"cgroup\":\"system.slice/slurmstepd.scope/job_42\",\"user\":\"alice\",\"uid\":1000,\"interval_s\":10,"
          "\"tx_bytes\":11,\"rx_bytes\":22,\"classes\":{\"wan\":{\"tx_bytes\":5,\"rx_bytes\":6},\"other\":{\"tx_byte"
          "s\":0,\"rx_bytes\":0}}}\n"
          "{\"v\":1,\"type\":\"job_report\",\"ts\":\"2024-01-15T10:30:00.000005Z\",\"job\":\"a\\\"b\\\\c]\\u0001\\n\\"
          "u001f\177\357\277\275\357\277\275\357\277\275(\357\277\275\",\"step\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177"
          "\357\277\275\357\277\275\357\277\275(\357\277\275\",\"cgroup\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177\357\277"
          "\275\357\277\275\357\277\275(\357\277\275\",\"user\":\"a\\\"b\\\\c]\\u0001\\n\\u001f\177\357\277\275\357\277"
          "\275\357\277\275(\357\277\275\",\"uid\":1000,\"interval_s\":10,\"tx_bytes\":11,\"rx_bytes\":22}\n");
}

BOOST_AUTO_TEST_CASE(agent_stats) {
    check(json_of([](Sink& s) { s.agent_stats(stats(10)); }),
          "{\"v\":1,\"type\":\"agent_stats\",\"ts\":\"2024-01-15T10:30:00.000001Z\",\"interval_s\":10,"
          "\"events\":1,\"ring_drops\":2,\"flow_table_full\":3,\"aux_table_full\":4,\"flow_share_full\":5,"
          "\"owner_deferred\":6,\"deltas_incomplete\":7,\"flows_active\":8,\"flow_table_size\":65536,"
          "\"sink_errors\":10,\"interfaces_missing\":11,\"cgroups_unresolved\":12}\n");
}

// The one place fractional numbers show: interval lengths.
BOOST_AUTO_TEST_CASE(fractional_seconds) {
    check(json_of([](Sink& s) {
              s.user_report(report(2.5, 0));
              s.job_report(job(true, 1.003));
              s.agent_stats(stats(0.5));
              s.agent_stats(stats(1234567.0004));
              s.agent_stats(stats(0.001));
          }),
          "{\"v\":1,\"type\":\"user_report\",\"ts\":\"2024-01-15T10:30:00.999999Z\",\"user\":\"alice\","
          "\"uid\":1000,\"interval_s\":2.5,\"tx_bytes\":786432,\"rx_bytes\":1179648,\"tx_packets\":600,"
          "\"rx_packets\":900,\"flows\":2,\"connections\":[]}\n"
          "{\"v\":1,\"type\":\"job_report\",\"ts\":\"2024-01-15T10:30:00.000005Z\",\"job\":\"42\",\"step\":\"batch\""
          ",\"cgroup\":\"system.slice/slurmstepd.scope/job_42/step_batch\",\"user\":\"alice\",\"uid\":1000,"
          "\"interval_s\":1.003,\"tx_bytes\":11,\"rx_bytes\":22}\n"
          "{\"v\":1,\"type\":\"agent_stats\",\"ts\":\"2024-01-15T10:30:00.000001Z\",\"interval_s\":0.5,"
          "\"events\":1,\"ring_drops\":2,\"flow_table_full\":3,\"aux_table_full\":4,\"flow_share_full\":5,"
          "\"owner_deferred\":6,\"deltas_incomplete\":7,\"flows_active\":8,\"flow_table_size\":65536,"
          "\"sink_errors\":10,\"interfaces_missing\":11,\"cgroups_unresolved\":12}\n"
          "{\"v\":1,\"type\":\"agent_stats\",\"ts\":\"2024-01-15T10:30:00.000001Z\",\"interval_s\":1234567,"
          "\"events\":1,\"ring_drops\":2,\"flow_table_full\":3,\"aux_table_full\":4,\"flow_share_full\":5,"
          "\"owner_deferred\":6,\"deltas_incomplete\":7,\"flows_active\":8,\"flow_table_size\":65536,"
          "\"sink_errors\":10,\"interfaces_missing\":11,\"cgroups_unresolved\":12}\n"
          "{\"v\":1,\"type\":\"agent_stats\",\"ts\":\"2024-01-15T10:30:00.000001Z\",\"interval_s\":0.001,"
          "\"events\":1,\"ring_drops\":2,\"flow_table_full\":3,\"aux_table_full\":4,\"flow_share_full\":5,"
          "\"owner_deferred\":6,\"deltas_incomplete\":7,\"flows_active\":8,\"flow_table_size\":65536,"
          "\"sink_errors\":10,\"interfaces_missing\":11,\"cgroups_unresolved\":12}\n");
}

// The sink reuses one buffer for every line: a line many times longer than
// any before it, escapes and all, and a short one after it are each whole.
BOOST_AUTO_TEST_CASE(lines_longer_than_any_before) {
    std::string longest;
    for (int i = 0; i < 300; ++i)
        longest += kHostile;
    UserReport big = report(10, 0);
    big.user = longest;
    for (uint64_t i = 0; i < 2000; ++i)
        big.connections.push_back({kHostile, std::to_string(i), i, 2 * i});
    FlowRecord big_flow = hostile(FlowEvent::close);
    big_flow.id.comm = longest;
    const UserReport small = report(10, 1);
    const FlowRecord small_flow = flow(FlowEvent::close);
    const std::string text = json_of([&](Sink& s) {
        s.user_report(small);
        s.user_report(big);
        s.user_report(small);
        s.flow_close(small_flow);
        s.flow_close(big_flow);
        s.flow_close(small_flow);
    });
    const boost::json::object expected[] = {to_json(small),      to_json(big),      to_json(small),
                                            to_json(small_flow), to_json(big_flow), to_json(small_flow)};
    size_t at = 0;
    for (const auto& e : expected) {
        const size_t end = text.find('\n', at);
        BOOST_TEST_REQUIRE(end != std::string::npos);
        BOOST_TEST((boost::json::parse(text.substr(at, end - at)) == e));
        at = end + 1;
    }
    BOOST_TEST(at == text.size());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(syslog_messages)

BOOST_FIXTURE_TEST_CASE(flow_records, UtcZone) {
    check(rfc5424::format_flow_owner(kHeader, flow(FlowEvent::owner)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_owner [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"18446744073709551615\" iface=\"eth0\" user=\"alice\" "
          "uid=\"1000\" raw_uid=\"1000\" pid=\"4242\" comm=\"rsync\" "
          "cgroup=\"system.slice/slurmstepd.scope/job_42/step_0/user/task_0"
          "\" job=\"42\" step=\"0\" proto=\"tcp\" family=\"ipv4\" local=\"192.168.1.100\" lport=\"40000\" "
          "remote=\"93.184.216.34\" rport=\"443\" direction=\"outbound\" from_uid=\"0\" from_user=\"root\" "
          "from_job=\"41\" tx_bytes=\"100\" rx_bytes=\"200\" tx_packets=\"3\" rx_packets=\"4\"] tcp 192.168.1.100:40"
          "000 -> 93.184.216.34:443 passed from root to alice after tx 100 B, rx 200 B");
    check(rfc5424::format_flow_close(kHeader, flow(FlowEvent::close)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_close [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"18446744073709551615\" iface=\"eth0\" user=\"alice\" "
          "uid=\"1000\" raw_uid=\"1000\" pid=\"4242\" comm=\"rsync\" "
          "cgroup=\"system.slice/slurmstepd.scope/job_42/step_0/user/task_0"
          "\" job=\"42\" step=\"0\" proto=\"tcp\" family=\"ipv4\" local=\"192.168.1.100\" lport=\"40000\" "
          "remote=\"93.184.216.34\" rport=\"443\" direction=\"outbound\" tx_bytes=\"100\" rx_bytes=\"200\" "
          "tx_packets=\"3\" rx_packets=\"4\" tcp_bytes_acked=\"99\" tcp_bytes_received=\"198\" tcp_bytes_retrans=\"7"
          "\" duration_ms=\"1500\"] alice: tcp 192.168.1.100:40000 -> 93.184.216.34:443 closed after "
          "1.5 s, tx 100 B, rx 200 B");
    check(rfc5424::format_flow_owner(kHeader, unowned(FlowEvent::owner)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_owner [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"0\" iface=\"eth0\" user=\"unattributed\" uid=\"-1\" "
          "raw_uid=\"-1\" "
          "proto=\"udp\" family=\"ipv6\" local=\"fd00:201::1\" lport=\"40000\" remote=\"fd00:201:ffff:ffff:ffff:ffff"
          ":ffff:ffff\" rport=\"443\" direction=\"unknown\" from_uid=\"0\" from_user=\"root\" tx_bytes=\"100\" "
          "rx_bytes=\"200\" tx_packets=\"3\" rx_packets=\"4\"] udp [fd00:201::1]:40000 -> [fd00:201:ffff:ffff:ffff:f"
          "fff:ffff:ffff]:443 passed from root to unattributed after tx 100 B, rx 200 B");
    check(rfc5424::format_flow_close(kHeader, unowned(FlowEvent::close)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_close [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"0\" iface=\"eth0\" user=\"unattributed\" uid=\"-1\" "
          "raw_uid=\"-1\" "
          "proto=\"udp\" family=\"ipv6\" local=\"fd00:201::1\" lport=\"40000\" remote=\"fd00:201:ffff:ffff:ffff:ffff"
          ":ffff:ffff\" rport=\"443\" direction=\"unknown\" tx_bytes=\"100\" rx_bytes=\"200\" tx_packets=\"3\" "
          "rx_packets=\"4\" tcp_bytes_acked=\"99\" tcp_bytes_received=\"198\" tcp_bytes_retrans=\"7\" "
          "duration_ms=\"1500\"] unattributed: udp [fd00:201::1]:40000 -> [fd00:201:ffff:ffff:ffff:ffff:ffff:ffff]:4"
          "43 closed after 1.5 s, tx 100 B, rx 200 B");
}

BOOST_FIXTURE_TEST_CASE(flow_records_with_hostile_strings, UtcZone) {
    check(rfc5424::format_flow_owner(kHeader, hostile(FlowEvent::owner)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_owner [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"18446744073709551615\" iface=\"eth\\\"0\\\\\" "
          "user=\"\357\277\275u\\]\\\"\" uid=\"1000\" raw_uid=\"1000\" pid=\"4242\" "
          "comm=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275"
          "\357\277\275\357\277\275(\357\277\275\" cgroup=\"a/a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275"
          "\357\277\275(\357\277\275\" job=\"j\\\\a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275"
          "(\357\277\275\" step=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275\" "
          "proto=\"tcp\" family=\"ipv4\" local=\"192.168.1.100\" lport=\"40000\" remote=\"93.184.216.34\" "
          "rport=\"443\" direction=\"inbound\" from_uid=\"0\" from_user=\"\357\277\275u\\]\\\"\" from_job=\"j\\\\a\\"
          "\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275\" tx_bytes=\"100\" "
          "rx_bytes=\"200\" tx_packets=\"3\" rx_packets=\"4\"] tcp 192.168.1.100:40000 -> 93.184.216.34:443 "
          "passed from \357\277\275u]\" to \357\277\275u]\" after tx 100 B, rx 200 B");
    check(rfc5424::format_flow_close(kHeader, hostile(FlowEvent::close)),
          "<134>1 2024-01-15T10:30:00.123456+00:00 host.example pdtt 1234 flow_close [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.123456Z\" flow_id=\"18446744073709551615\" iface=\"eth\\\"0\\\\\" "
          "user=\"\357\277\275u\\]\\\"\" uid=\"1000\" raw_uid=\"1000\" pid=\"4242\" "
          "comm=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275"
          "\357\277\275\357\277\275(\357\277\275\" cgroup=\"a/a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275"
          "\357\277\275(\357\277\275\" job=\"j\\\\a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275"
          "(\357\277\275\" step=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275\" "
          "proto=\"tcp\" family=\"ipv4\" local=\"192.168.1.100\" lport=\"40000\" remote=\"93.184.216.34\" "
          "rport=\"443\" direction=\"inbound\" tx_bytes=\"100\" rx_bytes=\"200\" tx_packets=\"3\" rx_packets=\"4\" "
          "tcp_bytes_acked=\"99\" tcp_bytes_received=\"198\" tcp_bytes_retrans=\"7\" duration_ms=\"1500\"] "
          "\357\277\275u]\": tcp 192.168.1.100:40000 -> 93.184.216.34:443 closed after 1.5 s, tx 100 "
          "B, rx 200 B");
}

BOOST_FIXTURE_TEST_CASE(user_reports, UtcZone) {
    UserReport r = report(10, 2);
    r.classes = kClasses;
    auto one = rfc5424::format_user_report(kHeader, r, rfc5424::kUdpMaxMessage);
    BOOST_REQUIRE(one.size() == 1u);
    check(one[0],
          "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 user_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.999999Z\" user=\"alice\" uid=\"1000\" interval_s=\"10\" tx_bytes=\"786432\" "
          "rx_bytes=\"1179648\" tx_packets=\"600\" rx_packets=\"900\" flows=\"2\" class_0=\"wan\" class_tx_bytes_0=\""
          "5\" class_rx_bytes_0=\"6\" class_1=\"other\" class_tx_bytes_1=\"0\" class_rx_bytes_1=\"0\" "
          "local_0=\"192.168.1.100\" remote_0=\"10.0.0.0\" tx_bytes_0=\"1000\" rx_bytes_0=\"2000\" local_1=\"192.168"
          ".1.100\" remote_1=\"10.0.0.1\" tx_bytes_1=\"1001\" rx_bytes_1=\"2001\"] alice: tx 768.0 KiB,"
          " rx 1.1 MiB, 2 flows in 10 s");
    r = report(2.5, 0);
    r.user = kHostile;
    one = rfc5424::format_user_report(kHeader, r, rfc5424::kUdpMaxMessage);
    BOOST_REQUIRE(one.size() == 1u);
    check(one[0],
          "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 user_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.999999Z\" user=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275"
          "(\357\277\275\" uid=\"1000\" interval_s=\"2.5\" tx_bytes=\"786432\" rx_bytes=\"1179648\" tx_packets=\"600"
          "\" rx_packets=\"900\" flows=\"2\"] a\"b\\c]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275"
          ": tx 768.0 KiB, rx 1.1 MiB, 2 flows in 2.5 s");
}

BOOST_FIXTURE_TEST_CASE(split_user_report, UtcZone) {
    UserReport r = report(10, 30);
    r.classes = kClasses;
    auto parts = rfc5424::format_user_report(kHeader, r, rfc5424::kUdpMaxMessage);
    BOOST_REQUIRE(parts.size() == 3u);
    check(parts[0],
          "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 user_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.999999Z\" user=\"alice\" uid=\"1000\" interval_s=\"10\" part=\"1\" "
          "parts=\"3\" tx_bytes=\"786432\" rx_bytes=\"1179648\" tx_packets=\"600\" rx_packets=\"900\" "
          "flows=\"2\" class_0=\"wan\" class_tx_bytes_0=\"5\" class_rx_bytes_0=\"6\" class_1=\"other\" "
          "class_tx_bytes_1=\"0\" class_rx_bytes_1=\"0\" local_0=\"192.168.1.100\" remote_0=\"10.0.0.0\" "
          "tx_bytes_0=\"1000\" rx_bytes_0=\"2000\" local_1=\"192.168.1.100\" remote_1=\"10.0.0.1\" tx_bytes_1=\"1001"
          "\" rx_bytes_1=\"2001\" local_2=\"192.168.1.100\" remote_2=\"10.0.0.2\" tx_bytes_2=\"1002\" "
          "rx_bytes_2=\"2002\" local_3=\"192.168.1.100\" remote_3=\"10.0.0.3\" tx_bytes_3=\"1003\" rx_bytes_3=\"2003"
          "\" local_4=\"192.168.1.100\" remote_4=\"10.0.0.4\" tx_bytes_4=\"1004\" rx_bytes_4=\"2004\" "
          "local_5=\"192.168.1.100\" remote_5=\"10.0.0.5\" tx_bytes_5=\"1005\" rx_bytes_5=\"2005\" local_6=\"192.168"
          ".1.100\" remote_6=\"10.0.0.6\" tx_bytes_6=\"1006\" rx_bytes_6=\"2006\" local_7=\"192.168.1.100\" "
          "remote_7=\"10.0.0.7\" tx_bytes_7=\"1007\" rx_bytes_7=\"2007\" local_8=\"192.168.1.100\" remote_8=\"10.0.0"
          ".8\" tx_bytes_8=\"1008\" rx_bytes_8=\"2008\"] alice: tx 768.0 KiB, rx 1.1 MiB, 2 flows in "
          "10 s (part 1/3)");
    check(parts[1],
          "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 user_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.999999Z\" user=\"alice\" uid=\"1000\" interval_s=\"10\" part=\"2\" "
          "parts=\"3\" local_9=\"192.168.1.100\" remote_9=\"10.0.0.9\" tx_bytes_9=\"1009\" rx_bytes_9=\"2009\" "
          "local_10=\"192.168.1.100\" remote_10=\"10.0.0.10\" tx_bytes_10=\"1010\" rx_bytes_10=\"2010\" "
          "local_11=\"192.168.1.100\" remote_11=\"10.0.0.11\" tx_bytes_11=\"1011\" rx_bytes_11=\"2011\" "
          "local_12=\"192.168.1.100\" remote_12=\"10.0.0.12\" tx_bytes_12=\"1012\" rx_bytes_12=\"2012\" "
          "local_13=\"192.168.1.100\" remote_13=\"10.0.0.13\" tx_bytes_13=\"1013\" rx_bytes_13=\"2013\" "
          "local_14=\"192.168.1.100\" remote_14=\"10.0.0.14\" tx_bytes_14=\"1014\" rx_bytes_14=\"2014\" "
          "local_15=\"192.168.1.100\" remote_15=\"10.0.0.15\" tx_bytes_15=\"1015\" rx_bytes_15=\"2015\" "
          "local_16=\"192.168.1.100\" remote_16=\"10.0.0.16\" tx_bytes_16=\"1016\" rx_bytes_16=\"2016\" "
          "local_17=\"192.168.1.100\" remote_17=\"10.0.0.17\" tx_bytes_17=\"1017\" rx_bytes_17=\"2017\" "
          "local_18=\"192.168.1.100\" remote_18=\"10.0.0.18\" tx_bytes_18=\"1018\" rx_bytes_18=\"2018\" "
          "local_19=\"192.168.1.100\" remote_19=\"10.0.0.19\" tx_bytes_19=\"1019\" rx_bytes_19=\"2019\"] "
          "alice: tx 768.0 KiB, rx 1.1 MiB, 2 flows in 10 s (part 2/3)");
    check(parts[2],
          "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 user_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.999999Z\" user=\"alice\" uid=\"1000\" interval_s=\"10\" part=\"3\" "
          "parts=\"3\" local_20=\"192.168.1.100\" remote_20=\"10.0.0.20\" tx_bytes_20=\"1020\" rx_bytes_20=\"2020\" "
          "local_21=\"192.168.1.100\" remote_21=\"10.0.0.21\" tx_bytes_21=\"1021\" rx_bytes_21=\"2021\" "
          "local_22=\"192.168.1.100\" remote_22=\"10.0.0.22\" tx_bytes_22=\"1022\" rx_bytes_22=\"2022\" "
          "local_23=\"192.168.1.100\" remote_23=\"10.0.0.23\" tx_bytes_23=\"1023\" rx_bytes_23=\"2023\" "
          "local_24=\"192.168.1.100\" remote_24=\"10.0.0.24\" tx_bytes_24=\"1024\" rx_bytes_24=\"2024\" "
          "local_25=\"192.168.1.100\" remote_25=\"10.0.0.25\" tx_bytes_25=\"1025\" rx_bytes_25=\"2025\" "
          "local_26=\"192.168.1.100\" remote_26=\"10.0.0.26\" tx_bytes_26=\"1026\" rx_bytes_26=\"2026\" "
          "local_27=\"192.168.1.100\" remote_27=\"10.0.0.27\" tx_bytes_27=\"1027\" rx_bytes_27=\"2027\" "
          "local_28=\"192.168.1.100\" remote_28=\"10.0.0.28\" tx_bytes_28=\"1028\" rx_bytes_28=\"2028\" "
          "local_29=\"192.168.1.100\" remote_29=\"10.0.0.29\" tx_bytes_29=\"1029\" rx_bytes_29=\"2029\"] "
          "alice: tx 768.0 KiB, rx 1.1 MiB, 2 flows in 10 s (part 3/3)");
}

BOOST_FIXTURE_TEST_CASE(job_reports, UtcZone) {
    JobReport r = job(true, 1.003);
    r.classes = kClasses;
    check(rfc5424::format_job_report(kHeader, r),
          "<134>1 2024-01-15T10:30:00.000005+00:00 host.example pdtt 1234 job_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.000005Z\" job=\"42\" step=\"batch\" cgroup=\"system.slice/slurmstepd.scope/job_4"
          "2/step_batch\" user=\"alice\" uid=\"1000\" interval_s=\"1.003\" tx_bytes=\"11\" rx_bytes=\"22\" "
          "class_0=\"wan\" class_tx_bytes_0=\"5\" class_rx_bytes_0=\"6\" class_1=\"other\" class_tx_bytes_1=\"0\" "
          "class_rx_bytes_1=\"0\"] job 42 step batch, alice: tx 11 B, rx 22 B in 1.003 s");
    r = job(false, 10);
    r.job = kHostile;
    r.user = kHostile;
    check(rfc5424::format_job_report(kHeader, r),
          "<134>1 2024-01-15T10:30:00.000005+00:00 host.example pdtt 1234 job_report [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.000005Z\" job=\"a\\\"b\\\\c\\]#001#012#037#177\357\277\275\357\277\275\357\277\275"
          "(\357\277\275\" cgroup=\"system.slice/slurmstepd.scope/job_42\" user=\"a\\\"b\\\\c\\]#001#012#037#177\357"
          "\277\275\357\277\275\357\277\275(\357\277\275\" uid=\"1000\" interval_s=\"10\" tx_bytes=\"11\" "
          "rx_bytes=\"22\"] job a\"b\\c]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275,"
          " a\"b\\c]#001#012#037#177\357\277\275\357\277\275\357\277\275(\357\277\275: tx 11 B, rx 22 "
          "B in 10 s");
}

BOOST_FIXTURE_TEST_CASE(agent_stats, UtcZone) {
    check(rfc5424::format_agent_stats(kHeader, stats(10)),
          "<134>1 2024-01-15T10:30:00.000001+00:00 host.example pdtt 1234 agent_stats [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.000001Z\" interval_s=\"10\" events=\"1\" ring_drops=\"2\" flow_table_full=\"3\" "
          "aux_table_full=\"4\" flow_share_full=\"5\" owner_deferred=\"6\" deltas_incomplete=\"7\" flows_active=\"8\""
          " flow_table_size=\"65536\" sink_errors=\"10\" interfaces_missing=\"11\" cgroups_unresolved=\"12\"] 1 "
          "events, 2 ring "
          "drops, 8 flows active, 10 sink errors");
    check(rfc5424::format_agent_stats(kHeader, stats(0.5)),
          "<134>1 2024-01-15T10:30:00.000001+00:00 host.example pdtt 1234 agent_stats [pdtt@32473 v=\"1\" "
          "ts=\"2024-01-15T10:30:00.000001Z\" interval_s=\"0.5\" events=\"1\" ring_drops=\"2\" flow_table_full=\"3\""
          " aux_table_full=\"4\" flow_share_full=\"5\" owner_deferred=\"6\" deltas_incomplete=\"7\" flows_active=\"8"
          "\" flow_table_size=\"65536\" sink_errors=\"10\" interfaces_missing=\"11\" cgroups_unresolved=\"12\"] 1 "
          "events, 2 ring "
          "drops, 8 flows active, 10 sink errors");
}

BOOST_AUTO_TEST_SUITE_END()
