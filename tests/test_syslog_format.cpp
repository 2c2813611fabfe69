// Syslog sink, the messages alone: RFC 5424 formatting and RFC 6587
// framing checked against the grammar. No sockets, no root.
#define BOOST_TEST_MODULE syslog_format
#include <boost/test/unit_test.hpp>

#include "syslog_lab.hpp"

#include <cctype>
#include <map>
#include <string>

using namespace pdtt;
using namespace pdtt::test;

BOOST_AUTO_TEST_SUITE(format)

BOOST_FIXTURE_TEST_CASE(agent_stats_message_is_exactly_rfc5424, UtcZone) {
    std::string m = rfc5424::format_agent_stats(kHeader, sample_stats());
    BOOST_TEST(m == "<134>1 2024-01-15T10:30:00.999999+00:00 host.example pdtt 1234 agent_stats "
                    "[pdtt@32473 v=\"1\" ts=\"2024-01-15T10:30:00.999999Z\" interval_s=\"10\" events=\"1000\" "
                    "ring_drops=\"0\" flow_table_full=\"0\" aux_table_full=\"0\" flow_share_full=\"0\" "
                    "owner_deferred=\"0\" deltas_incomplete=\"0\" flows_active=\"3\" "
                    "flow_table_size=\"262144\" sink_errors=\"2\" interfaces_missing=\"1\" cgroups_unresolved=\"0\"] "
                    "1000 events, 0 ring drops, 3 flows active, 2 sink errors");
    rfc5424::Header local7 = kHeader;
    local7.facility = 23;
    BOOST_TEST(must_parse(rfc5424::format_agent_stats(local7, sample_stats())).pri == 23 * 8 + 6);
}

BOOST_FIXTURE_TEST_CASE(every_record_parses_by_the_grammar, UtcZone) {
    Parsed f = must_parse(rfc5424::format_flow_close(kHeader, sample_flow()));
    BOOST_TEST(f.pri == 134);
    BOOST_TEST(f.hostname == "host.example");
    BOOST_TEST(f.app == "pdtt");
    BOOST_TEST(f.procid == "1234");
    BOOST_TEST(f.msgid == "flow_close");
    BOOST_TEST(f.sd_id == "pdtt@32473");
    BOOST_TEST(f.elements == 1);
    BOOST_TEST(f.msg == "alice: tcp 192.168.1.100:40000 -> 93.184.216.34:22 closed after 1.5 s, tx 512.0 KiB, "
                        "rx 1.0 MiB");
    Parsed u = must_parse(rfc5424::format_user_report(kHeader, sample_report(2), rfc5424::kUdpMaxMessage).at(0));
    BOOST_TEST(u.msgid == "user_report");
    BOOST_TEST(u.msg == "alice: tx 768.0 KiB, rx 1.1 MiB, 2 flows in 10 s");
    BOOST_TEST(must_parse(rfc5424::format_agent_stats(kHeader, sample_stats())).msgid == "agent_stats");
}

BOOST_AUTO_TEST_CASE(timestamp_has_microseconds_and_the_local_offset) {
    set_tz("XYZ-8"); // POSIX: eight hours east of UTC
    BOOST_TEST(rfc5424::timestamp(at(42)) == "2024-01-15T18:30:00.000042+08:00");
    set_tz("ABC+3:30");
    BOOST_TEST(rfc5424::timestamp(at(999999)) == "2024-01-15T07:00:00.999999-03:30");
    set_tz("UTC");
    BOOST_TEST(rfc5424::timestamp(at()) == "2024-01-15T10:30:00.000000+00:00");
}

BOOST_FIXTURE_TEST_CASE(sd_fields_are_the_json_records_fields, UtcZone) {
    FlowRecord known = sample_flow();
    FlowRecord unknown = sample_flow();
    unknown.id.pid.reset();
    unknown.id.comm.reset();
    unknown.id.uid = -1;
    unknown.id.user = "unattributed";
    unknown.id.family = "ipv6";
    unknown.id.local = "fd00::1";
    unknown.id.remote = "fd00::2";
    for (const FlowRecord& r : {known, unknown}) {
        auto sd = must_parse(rfc5424::format_flow_close(kHeader, r)).sd();
        BOOST_TEST((sd == sd_of_json(json_of([&](Sink& s) { s.flow_close(r); }))));
    }
    BOOST_TEST(must_parse(rfc5424::format_flow_close(kHeader, unknown)).sd().count("pid") == 0u);

    UserReport u = sample_report(3);
    u.interval_s = 1.25;
    auto usd = must_parse(rfc5424::format_user_report(kHeader, u, rfc5424::kUdpMaxMessage).at(0)).sd();
    BOOST_TEST((usd == sd_of_json(json_of([&](Sink& s) { s.user_report(u); }))));
    BOOST_TEST(usd.at("interval_s") == "1.25");
    BOOST_TEST(usd.at("remote_2") == "fd00:200:2::abcd:ef01");

    AgentStats st = sample_stats();
    auto ssd = must_parse(rfc5424::format_agent_stats(kHeader, st)).sd();
    BOOST_TEST((ssd == sd_of_json(json_of([&](Sink& s) { s.agent_stats(st); }))));
}

BOOST_AUTO_TEST_CASE(quote_backslash_and_bracket_are_escaped_and_nothing_else) {
    BOOST_TEST(rfc5424::escape_param_value(R"(a"b\c]d)") == R"(a\"b\\c\]d)");
    BOOST_TEST(rfc5424::escape_param_value(R"("\]]\")") == R"(\"\\\]\]\\\")");
    BOOST_TEST(rfc5424::escape_param_value("[= '}") == "[= '}");
    FlowRecord r = sample_flow();
    r.id.user = R"(x"y\z]w)";
    r.id.comm = R"("]\)";
    auto sd = must_parse(rfc5424::format_flow_close(kHeader, r)).sd();
    BOOST_TEST(sd.at("user") == r.id.user);
    BOOST_TEST(sd.at("comm") == *r.id.comm);
}

BOOST_AUTO_TEST_CASE(values_are_utf8_invalid_input_repaired) {
    FlowRecord r = sample_flow();
    r.id.user = "caf\xC3\xA9-\xE2\x82\xAC"; // café-€, valid: kept
    r.id.comm = "ab\xFF\xC0"
                "c\xE2\x82"; // invalid bytes, a truncated sequence
    std::string m = rfc5424::format_flow_close(kHeader, r);
    auto sd = must_parse(m).sd();
    BOOST_TEST(sd.at("user") == "caf\xC3\xA9-\xE2\x82\xAC");
    BOOST_TEST(sd.at("comm") == "ab\xEF\xBF\xBD\xEF\xBF\xBD"
                                "c\xEF\xBF\xBD");
    BOOST_TEST(valid_utf8(m) == m); // MSG too
    BOOST_TEST(rfc5424::escape_param_value("\xC3\xA9\"\xFF") == "\xC3\xA9\\\"\xEF\xBF\xBD");
}

BOOST_AUTO_TEST_CASE(header_fields_are_printable_ascii_or_nil) {
    rfc5424::Header h{
        16,
        "my host\xC3\xA9",
        std::string(60, 'a'),
        "",
    };
    Parsed p = must_parse(rfc5424::format_message(h, at(), "agent_stats", {{"k", "v"}},
                                                  "a\nb\x01"
                                                  "c"));
    BOOST_TEST(p.hostname == "my_host__");
    BOOST_TEST(p.app == std::string(48, 'a'));
    BOOST_TEST(p.procid == "-");
    BOOST_TEST(p.msg == "a#012b#001c"); // MSG: no control characters
}

// A receiver writes one line per message: no value may start another line
// or hide text behind a carriage return or an escape sequence.
BOOST_AUTO_TEST_CASE(control_characters_in_values_and_msg_are_escaped_as_hash_octal) {
    BOOST_TEST(rfc5424::escape_control("a\nb\rc\td") == "a#012b#015c#011d");
    BOOST_TEST(rfc5424::escape_control(std::string("\0\x1b[31m\x7f", 7)) == "#000#033[31m#177");
    BOOST_TEST(rfc5424::escape_control("caf\xC3\xA9 #1") == "caf\xC3\xA9 #1"); // UTF-8 and '#' stay
    FlowRecord r = sample_flow();
    r.id.user = "eve\n<14>1 - forged - - - - injected";
    r.id.comm = "a\tb\r";
    std::string m = rfc5424::format_flow_close(kHeader, r);
    BOOST_TEST(m.find_first_of(std::string("\0\n\r\t\x1b\x7f", 6)) == std::string::npos, m);
    Parsed p = must_parse(m);
    BOOST_TEST(p.sd().at("user") == "eve#012<14>1 - forged - - - - injected");
    BOOST_TEST(p.sd().at("comm") == "a#011b#015");
    BOOST_TEST(p.msg.find("eve#012<14>1") != std::string::npos, p.msg);
}

BOOST_AUTO_TEST_CASE(a_big_user_report_is_split_not_truncated) {
    UserReport u = sample_report(300);
    for (std::size_t max : {rfc5424::kUdpMaxMessage, rfc5424::kTcpMaxMessage}) {
        BOOST_TEST_CONTEXT("max " << max) {
            auto msgs = rfc5424::format_user_report(kHeader, u, max);
            BOOST_TEST(msgs.size() > 1u);
            std::map<std::string, std::string> all;
            for (std::size_t i = 0; i < msgs.size(); ++i) {
                BOOST_TEST(msgs[i].size() <= max);
                if (i + 1 < msgs.size()) // full but for less than one connection and the part fields
                    BOOST_TEST(msgs[i].size() > max - 150, msgs[i].size());
                auto sd = must_parse(msgs[i]).sd();
                BOOST_TEST(sd.at("user") == "alice");
                BOOST_TEST(sd.at("part") == std::to_string(i + 1));
                BOOST_TEST(sd.at("parts") == std::to_string(msgs.size()));
                BOOST_TEST(sd.count("tx_bytes") == (i == 0 ? 1u : 0u)); // totals once
                for (auto& [k, v] : sd)
                    if (k.find('_') != std::string::npos && std::isdigit(static_cast<unsigned char>(k.back())))
                        BOOST_TEST(all.emplace(k, v).second, k << " twice");
            }
            BOOST_TEST(all.size() == 4 * 300u);
            for (std::size_t c = 0; c < 300; ++c) {
                auto n = "_" + std::to_string(c);
                BOOST_TEST(all["remote" + n] == u.connections[c].remote);
                BOOST_TEST(all["tx_bytes" + n] == std::to_string(u.connections[c].tx_bytes));
                BOOST_TEST(all["rx_bytes" + n] == std::to_string(u.connections[c].rx_bytes));
            }
        }
    }
    auto one = rfc5424::format_user_report(kHeader, sample_report(2), rfc5424::kUdpMaxMessage);
    BOOST_TEST(one.size() == 1u);
    BOOST_TEST(must_parse(one[0]).sd().count("part") == 0u);
}

BOOST_AUTO_TEST_CASE(octet_counting_counts_octets) {
    BOOST_TEST(rfc5424::octet_frame("caf\xC3\xA9") == "5 caf\xC3\xA9");
    std::string m = rfc5424::format_agent_stats(kHeader, sample_stats());
    std::string framed = rfc5424::octet_frame(m) + rfc5424::octet_frame("x");
    auto frames = take_frames(framed);
    BOOST_TEST(frames.size() == 2u);
    BOOST_TEST(frames[0] == m);
    BOOST_TEST(frames[1] == "x");
    BOOST_TEST(framed.empty());
}

BOOST_AUTO_TEST_SUITE_END()
