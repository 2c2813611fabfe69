// Aggregation arithmetic: kernel records (cumulative counters) in, per-flow
// deltas and per-user interval reports out. No kernel needed. And flows
// older than the agent, found in the socket table (sock_diag, no root).
#define BOOST_TEST_MODULE flows
#include <boost/test/unit_test.hpp>

#include <map>

#include "aggregator.hpp"
#include "fd.hpp"
#include "sockdiag.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

using namespace pdtt;

namespace {

struct Capture : Sink {
    std::vector<FlowRecord> opens, deltas, closes, owners;
    std::vector<UserReport> reports;
    void flow_owner(const FlowRecord& r) override { owners.push_back(r); }
    void flow_open(const FlowRecord& r) override { opens.push_back(r); }
    void flow_delta(const FlowRecord& r) override { deltas.push_back(r); }
    void flow_close(const FlowRecord& r) override { closes.push_back(r); }
    void user_report(const UserReport& r) override { reports.push_back(r); }
};

bool fake_passwd(uint32_t uid, std::string& name) {
    if (uid != 1001)
        return false;
    name = "alice";
    return true;
}

struct Fixture {
    SinkList sinks;
    Capture* cap;
    UserNames names{std::chrono::seconds(600), &fake_passwd, UserNames::Threads::none};
    WallClock clock;
    Aggregator agg{sinks, names, [](uint32_t i) { return i == 3 ? std::string("veth0") : "if" + std::to_string(i); },
                   clock};
    Fixture() {
        auto c = std::make_unique<Capture>();
        cap = c.get();
        sinks.push_back(std::move(c));
    }
};

pdtt_event ev(uint8_t type, const char* local, uint16_t lport, const char* remote, uint16_t rport, uint32_t uid,
              uint64_t tx, uint64_t rx) {
    pdtt_event e{};
    e.type = type;
    e.flow_id = 1;
    auto put = [](uint8_t* dst, const char* s) {
        in_addr a4;
        if (inet_pton(AF_INET, s, &a4) == 1) {
            dst[10] = dst[11] = 0xff;
            std::memcpy(dst + 12, &a4, 4);
        } else {
            BOOST_REQUIRE(inet_pton(AF_INET6, s, dst) == 1);
        }
    };
    uint8_t laddr[16] = {}, raddr[16] = {};
    put(laddr, local);
    put(raddr, remote);
    e.key = make_flow_key(laddr, lport, raddr, rport, IPPROTO_TCP, 4026531840u);
    e.uid = uid;
    e.ifindex = 3;
    e.cnt = {tx, rx, tx ? tx / 1000 + 1 : 0, rx ? rx / 1000 + 1 : 0};
    e.open_ns = 1'000'000'000;
    e.ts_ns = 3'500'000'000;
    e.direction = PDTT_DIR_OUTBOUND;
    e.pid = 42;
    std::strcpy(e.comm, "rsync");
    return e;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(open_delta_close_accounts_each_byte_once, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 500));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 3000, 700));
    auto close = ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 3500, 900);
    close.tcp_bytes_acked = 3501;
    close.tcp_bytes_received = 901;
    agg.on_event(close);

    BOOST_TEST_REQUIRE(cap->opens.size() == 1u);
    BOOST_TEST(cap->opens[0].id.user == "alice");
    BOOST_TEST(cap->opens[0].id.iface == "veth0");
    BOOST_TEST(cap->opens[0].id.local == "10.0.0.1");
    BOOST_TEST(cap->opens[0].id.remote == "10.0.0.2");
    BOOST_TEST(cap->opens[0].id.family == "ipv4");
    BOOST_TEST(*cap->opens[0].id.pid == 42u);
    BOOST_TEST(*cap->opens[0].id.comm == "rsync");
    BOOST_TEST_REQUIRE(cap->deltas.size() == 2u);
    BOOST_TEST(cap->deltas[0].cnt.tx_bytes == 1000u);
    BOOST_TEST(cap->deltas[1].cnt.tx_bytes == 2000u); // differences, not cumulative
    BOOST_TEST(cap->deltas[1].cnt.rx_bytes == 200u);
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(cap->closes[0].cnt.tx_bytes == 3500u); // totals at close
    BOOST_TEST(cap->closes[0].tcp_bytes_acked == 3501u);
    BOOST_TEST(cap->closes[0].duration_ms == 2500u);
    BOOST_TEST(agg.active() == 0u);

    agg.report(Timestamp{}, 10.0);
    BOOST_TEST_REQUIRE(cap->reports.size() == 1u);
    BOOST_TEST(cap->reports[0].tx_bytes == 3500u);
    BOOST_TEST(cap->reports[0].rx_bytes == 900u);
    BOOST_TEST(cap->reports[0].flows == 1u);
    BOOST_TEST_REQUIRE(cap->reports[0].connections.size() == 1u);
    BOOST_TEST(cap->reports[0].connections[0].tx_bytes == 3500u);
}

BOOST_FIXTURE_TEST_CASE(interval_bytes_sum_to_flow_total_across_reports, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 0));
    agg.report(Timestamp{}, 10.0);
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 2500, 0));
    agg.report(Timestamp{}, 10.0);
    agg.report(Timestamp{}, 10.0); // idle interval: no report
    BOOST_TEST_REQUIRE(cap->reports.size() == 2u);
    BOOST_TEST(cap->reports[0].tx_bytes == 1000u);
    BOOST_TEST(cap->reports[1].tx_bytes == 1500u);
}

BOOST_FIXTURE_TEST_CASE(lost_open_record_is_recovered_from_the_delta, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "fd00::1", 5000, "fd00::2", 80, 1001, 100, 200));
    BOOST_TEST_REQUIRE(cap->opens.size() == 1u);
    BOOST_TEST(cap->opens[0].id.family == "ipv6");
    BOOST_TEST(cap->opens[0].id.local == "fd00::1");
    BOOST_TEST_REQUIRE(cap->deltas.size() == 1u);
    BOOST_TEST(cap->deltas[0].cnt.rx_bytes == 200u);
}

BOOST_FIXTURE_TEST_CASE(duplicate_and_stale_records_never_double_count, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 0)); // duplicate
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 800, 0));  // stale
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1200, 0));
    // A delta record that raced with the close: already in the close's totals.
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1100, 0));
    BOOST_TEST(cap->deltas.size() == 1u);
    BOOST_TEST(agg.active() == 0u);
    agg.report(Timestamp{}, 10.0);
    BOOST_TEST_REQUIRE(cap->reports.size() == 1u);
    BOOST_TEST(cap->reports[0].tx_bytes == 1200u);
    // A record of another flow on the same 5-tuple is a new flow.
    pdtt_event next = ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 10, 0);
    next.flow_id = 2;
    agg.on_event(next);
    BOOST_TEST(agg.active() == 1u);
    BOOST_TEST(cap->opens.size() == 2u);
}

// A delta reserved between the kernel's first-packet check and its
// FLOW_OPEN reaches the agent before the open: the open must not start the
// flow's counting again.
BOOST_FIXTURE_TEST_CASE(an_open_after_its_flows_first_delta_counts_nothing_twice, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 0));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 0));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1500, 0));
    agg.report(Timestamp{}, 10.0);
    BOOST_TEST_REQUIRE(cap->reports.size() == 1u);
    BOOST_TEST(cap->reports[0].tx_bytes == 1500u);
    BOOST_TEST(cap->opens.size() == 1u);
}

// Records of a closed flow that arrive after its close (deltas of a pass that
// raced with it) are no new flow, even after the pass ended.
BOOST_FIXTURE_TEST_CASE(records_after_a_close_make_no_phantom_flow, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1000, 0));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1200, 0));
    agg.deltas_done();
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 1100, 0));
    BOOST_TEST(agg.active() == 0u);
    BOOST_TEST(cap->opens.size() == 1u);
}

// The bytes before a change of owner stay the old owner's; flow_owner and
// flow_close together give each user's share, equal to the reports.
BOOST_FIXTURE_TEST_CASE(a_change_of_owner_splits_the_bytes_at_the_change, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 22, "10.0.0.2", 40000, 0, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 22, "10.0.0.2", 40000, 0, 300, 700));
    pdtt_event moved = ev(PDTT_EV_FLOW_OWNER, "10.0.0.1", 22, "10.0.0.2", 40000, 1001, 500, 900);
    moved.pid = 77;
    std::memcpy(moved.comm, "sshd", 5);
    agg.on_event(moved);
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 22, "10.0.0.2", 40000, 1001, 5500, 10900));
    agg.report(Timestamp{}, 10.0);

    BOOST_TEST_REQUIRE(cap->owners.size() == 1u);
    const FlowRecord& o = cap->owners[0];
    BOOST_TEST(o.from_uid == 0);
    BOOST_TEST(o.id.uid == 1001);
    BOOST_TEST(o.id.user == "alice");
    BOOST_TEST(*o.id.pid == 77u);
    BOOST_TEST(*o.id.comm == "sshd");
    BOOST_TEST(o.cnt.tx_bytes == 500u);
    BOOST_TEST(o.cnt.rx_bytes == 900u);
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(cap->closes[0].id.uid == 1001);
    BOOST_TEST(cap->closes[0].cnt.tx_bytes == 5000u, "since the change");
    BOOST_TEST(cap->closes[0].cnt.rx_bytes == 10000u);
    std::map<int64_t, uint64_t> tx;
    for (const auto& r : cap->reports)
        tx[r.uid] += r.tx_bytes;
    BOOST_TEST(tx[0] == 500u);
    BOOST_TEST(tx[1001] == 5000u);
}

// The same user in another process, or a record the kernel could not name
// an owner for: noted, no change of owner.
BOOST_FIXTURE_TEST_CASE(a_new_process_of_the_same_user_is_only_noted, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 0, 0));
    pdtt_event same = ev(PDTT_EV_FLOW_OWNER, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 10, 0);
    same.pid = 99;
    agg.on_event(same);
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 20, 0));
    BOOST_TEST(cap->owners.empty());
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(*cap->closes[0].id.pid == 42u, "the close's pid wins: it is the latest");
    BOOST_TEST(cap->closes[0].cnt.tx_bytes == 20u);
}

// Bytes of flows without a slot in the kernel table: the owner's, one
// "* -> *" row.
BOOST_FIXTURE_TEST_CASE(overflow_bytes_are_the_owners_in_one_star_row, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 10));
    agg.add_overflow(1001, {1000, 2000, 3, 4});
    agg.add_overflow(1001, {1, 2, 1, 1});
    agg.report(Timestamp{}, 10.0);
    BOOST_TEST_REQUIRE(cap->reports.size() == 1u);
    const UserReport& r = cap->reports[0];
    BOOST_TEST(r.tx_bytes == 1101u);
    BOOST_TEST(r.rx_bytes == 2012u);
    BOOST_TEST_REQUIRE(r.connections.size() == 2u);
    BOOST_TEST(r.connections[1].local == "*");
    BOOST_TEST(r.connections[1].remote == "*");
    BOOST_TEST(r.connections[1].tx_bytes == 1001u);
}

BOOST_FIXTURE_TEST_CASE(users_and_pairs_are_kept_apart, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 10));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40001, "10.0.0.2", 22, 1001, 200, 20)); // same pair
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40002, "10.0.0.3", 22, 1001, 400, 40)); // other pair
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40003, "10.0.0.2", 22, 2002, 800, 80)); // other user
    agg.add_unattributed({7, 9, 1, 1});
    agg.report(Timestamp{}, 5.0);
    BOOST_TEST_REQUIRE(cap->reports.size() == 3u);
    std::map<int64_t, UserReport> by_uid;
    for (auto& r : cap->reports)
        by_uid[r.uid] = r;
    const auto& alice = by_uid.at(1001);
    BOOST_TEST(alice.user == "alice");
    BOOST_TEST(alice.tx_bytes == 700u);
    BOOST_TEST(alice.flows == 3u);
    BOOST_TEST_REQUIRE(alice.connections.size() == 2u);
    BOOST_TEST(alice.connections[0].remote == "10.0.0.2");
    BOOST_TEST(alice.connections[0].tx_bytes == 300u);
    BOOST_TEST(alice.connections[0].rx_bytes == 30u);
    BOOST_TEST(alice.connections[1].remote == "10.0.0.3");
    BOOST_TEST(by_uid.at(2002).user == "uid-2002"); // no passwd entry
    BOOST_TEST(by_uid.at(2002).tx_bytes == 800u);
    BOOST_TEST(by_uid.at(kUnattributedUid).user == "unattributed");
    BOOST_TEST(by_uid.at(kUnattributedUid).rx_bytes == 9u);
    BOOST_TEST(by_uid.at(kUnattributedUid).connections.empty());
}

BOOST_FIXTURE_TEST_CASE(prune_forgets_flows_the_kernel_lost, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 10));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40001, "10.0.0.2", 22, 1001, 100, 10));
    agg.report(Timestamp{}, 1.0);
    agg.report(Timestamp{}, 1.0);
    agg.prune([](const pdtt_flow_key& k) { return k.lport == 40001; }, [] {});
    BOOST_TEST(agg.active() == 1u);
}

// The kernel sends a flow's close, then removes the flow: a prune between
// the two finds the flow gone while its close waits in the ring. That close
// must close the flow, not open it a second time (6,485 of 100,000 held
// flows had two flow_open records when the holders stopped just as a
// report ran: run.sh --figures memory).
BOOST_FIXTURE_TEST_CASE(a_close_still_in_the_ring_closes_its_flow_rather_than_opening_it_again, Fixture) {
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 0, 0));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 10));
    agg.report(Timestamp{}, 1.0);
    agg.report(Timestamp{}, 1.0);
    bool drained = false;
    agg.prune([](const pdtt_flow_key&) { return false; }, // the kernel removed it
              [&] {
                  drained = true;
                  agg.on_event(ev(PDTT_EV_FLOW_CLOSE, "10.0.0.1", 40000, "10.0.0.2", 22, 1001, 100, 10));
              });
    BOOST_TEST(drained);
    BOOST_TEST(agg.active() == 0u);
    BOOST_TEST(cap->opens.size() == 1u);
    BOOST_TEST_REQUIRE(cap->closes.size() == 1u);
    BOOST_TEST(cap->closes[0].cnt.tx_bytes == 100u);

    // A flow whose close was lost is still forgotten, and a new flow that
    // opened on its 5-tuple while the ring drained is kept.
    auto flow = [](uint64_t id, uint8_t type, uint16_t lport, uint64_t tx) {
        pdtt_event e = ev(type, "10.0.0.1", lport, "10.0.0.2", 22, 1001, tx, 0);
        e.flow_id = id;
        return e;
    };
    agg.on_event(flow(2, PDTT_EV_FLOW_DELTA, 40001, 100));
    agg.on_event(flow(3, PDTT_EV_FLOW_DELTA, 40002, 100));
    agg.report(Timestamp{}, 1.0);
    agg.report(Timestamp{}, 1.0);
    agg.prune([](const pdtt_flow_key&) { return false; },
              [&] { agg.on_event(flow(4, PDTT_EV_FLOW_OPEN, 40002, 0)); }); // flow 3's close was lost
    BOOST_TEST(agg.active() == 1u);
    BOOST_TEST(cap->opens.size() == 4u);
}

BOOST_AUTO_TEST_CASE(addresses_format_like_users_write_them) {
    uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 100};
    BOOST_TEST(format_addr(v4) == "192.168.1.100");
    uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    BOOST_TEST(format_addr(v6) == "fd00::1");
    BOOST_TEST(is_v4_mapped(v4));
    BOOST_TEST(!is_v4_mapped(v6));
}

// format_addr writes its own text: it must be inet_ntop's, byte for byte.
BOOST_AUTO_TEST_CASE(addresses_format_as_inet_ntop_writes_them) {
    auto ntop = [](const uint8_t a[16]) {
        char buf[INET6_ADDRSTRLEN];
        if (is_v4_mapped(a))
            ::inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
        else
            ::inet_ntop(AF_INET6, a, buf, sizeof(buf));
        return std::string(buf);
    };
    size_t checked = 0, mismatched = 0;
    auto check = [&](const uint8_t a[16]) {
        ++checked;
        const std::string want = ntop(a), got = format_addr(a);
        if (got != want && ++mismatched <= 5)
            BOOST_ERROR("format_addr wrote " << got << ", inet_ntop " << want);
    };
    // Every pattern of zero and non-zero groups (where "::" goes, and the
    // dotted tails after six zeros or five and ffff), with small and
    // large groups.
    for (uint16_t value : {0x1, 0xa, 0xff, 0x100, 0xffff})
        for (unsigned mask = 0; mask < 256; ++mask) {
            uint8_t a[16] = {};
            for (int g = 0; g < 8; ++g)
                if (mask & (1u << g)) {
                    a[2 * g] = uint8_t(value >> 8);
                    a[2 * g + 1] = uint8_t(value);
                }
            check(a);
            a[10] = a[11] = 0xff; // group 5 ffff
            check(a);
        }
    // Every octet value in each IPv4 position.
    for (int pos = 12; pos < 16; ++pos)
        for (int v = 0; v < 256; ++v) {
            uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 20, 30, 40};
            a[pos] = uint8_t(v);
            check(a);
        }
    uint32_t x = 2463534242u; // xorshift: the same addresses every run
    for (int i = 0; i < 200000; ++i) {
        uint8_t a[16];
        for (auto& b : a) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b = (x & 3) == 0 ? 0 : uint8_t(x >> 8); // a quarter zero: runs of zero groups
        }
        check(a);
    }
    BOOST_TEST(mismatched == 0u);
    BOOST_TEST(checked == 5u * 512u + 1024u + 200000u);
}

BOOST_AUTO_TEST_CASE(a_connection_older_than_the_agent_is_found_with_owner_and_direction) {
    auto local_port = [](int fd) {
        sockaddr_in a{};
        socklen_t len = sizeof(a);
        BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        return ntohs(a.sin_port);
    };
    sockaddr_in lo{};
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST_REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0);
    BOOST_TEST_REQUIRE(::listen(listener.get(), 1) == 0);
    uint16_t sport = local_port(listener.get());
    lo.sin_port = htons(sport);
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST_REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0);
    Fd server(::accept(listener.get(), nullptr, nullptr));
    BOOST_TEST_REQUIRE(bool(server));
    uint16_t cport = local_port(client.get());

    constexpr uint32_t kNetns = 4026531840u;
    std::vector<FlowEntry> found = find_existing_flows(kNetns);
    const FlowEntry *out = nullptr, *in = nullptr;
    for (const auto& e : found) {
        if (e.key.lport == cport && e.key.rport == sport)
            out = &e;
        if (e.key.lport == sport && e.key.rport == cport)
            in = &e;
    }
    BOOST_TEST_REQUIRE(out, "the connecting end is found");
    BOOST_TEST_REQUIRE(in, "the accepted end is found");
    const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    for (const FlowEntry* e : {out, in}) {
        BOOST_TEST(std::memcmp(e->key.laddr, loopback, 16) == 0, "local address 127.0.0.1, IPv4-mapped");
        BOOST_TEST(std::memcmp(e->key.raddr, loopback, 16) == 0, "remote address 127.0.0.1, IPv4-mapped");
        BOOST_TEST(e->key.proto == IPPROTO_TCP);
        BOOST_TEST(e->key.netns == kNetns, "keys carry the namespace inode asked for");
        BOOST_TEST(e->flow.uid == ::geteuid(), "the owner is the socket's uid");
        BOOST_TEST(e->flow.family == AF_INET, "shown as IPv4");
        BOOST_TEST(e->flow.open_ns > 0u, "open time set (the agent's start)");
    }
    BOOST_TEST(out->flow.direction == PDTT_DIR_OUTBOUND, "the connecting end is outbound");
    BOOST_TEST(in->flow.direction == PDTT_DIR_INBOUND, "the end on a listening port is inbound");
}
