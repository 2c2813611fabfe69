// The ring record decoder and aggregator fed any sequence of pdtt_event
// structs (a few flow keys and ids, so that records of one flow meet, and
// any type, owner and counters), interleaved with the agent's other calls:
// no crash, no exception, and what comes out stays consistent.
#include "aggregator.hpp"
#include "factory.hpp"
#include "names.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "aggregator invariant broken: %s\n", what.c_str());
    std::abort();
}

bool fake_passwd(uint32_t uid, std::string& name) {
    if (uid % 3 == 2)
        return false; // no such user: "uid-N"
    name = "user" + std::to_string(uid);
    return true;
}

// Checks every record as a sink sees it.
class Checker : public pdtt::Sink {
public:
    void flow_open(const pdtt::FlowRecord& r) override { flow(r); }
    void flow_delta(const pdtt::FlowRecord& r) override {
        flow(r);
        if (r.cnt.empty())
            fail("a flow_delta that moved nothing");
    }
    void flow_close(const pdtt::FlowRecord& r) override { flow(r); }
    void flow_owner(const pdtt::FlowRecord& r) override {
        flow(r);
        if (r.from_user.empty())
            fail("a flow_owner without its old owner's name");
    }
    void user_report(const pdtt::UserReport& r) override {
        if (r.user.empty())
            fail("a user_report without a user name");
        if (r.tx_bytes + r.rx_bytes + r.tx_packets + r.rx_packets == 0)
            fail("a user_report without traffic");
        if (!reported.insert({r.ts.time_since_epoch().count(), r.uid}).second)
            fail("two user_reports of uid " + std::to_string(r.uid) + " for one interval");
        uint64_t tx = 0, rx = 0;
        for (const auto& c : r.connections) {
            tx += c.tx_bytes;
            rx += c.rx_bytes;
        }
        // Only the unattributed user has bytes outside its rows (no socket, no pair).
        if (tx > r.tx_bytes || rx > r.rx_bytes ||
            (r.uid != pdtt::kUnattributedUid && (tx != r.tx_bytes || rx != r.rx_bytes)))
            fail("connections of uid " + std::to_string(r.uid) + " do not add up to its totals");
    }
    std::set<std::pair<int64_t, int64_t>> reported; // (interval end, uid)

private:
    static void flow(const pdtt::FlowRecord& r) {
        if (r.id.user.empty() || r.id.iface.empty() || r.id.proto.empty())
            fail("a flow record without its names");
    }
};

pdtt_flow_key key(int i) {
    static const uint8_t v4a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    static const uint8_t v4b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
    static const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    switch (i) {
    case 0:
        return pdtt::make_flow_key(v4a, 40000, v4b, 22, IPPROTO_TCP, 1);
    case 1:
        return pdtt::make_flow_key(v4a, 40001, v4b, 53, IPPROTO_UDP, 1);
    case 2:
        return pdtt::make_flow_key(v6, 40000, v6, 443, IPPROTO_TCP, 1);
    default:
        return pdtt::make_flow_key(v6, 40002, v4b, 5000, IPPROTO_UDP, 2);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider p(data, size);
    static pdtt::UserNames names(std::chrono::seconds(600), &fake_passwd, pdtt::UserNames::Threads::none);
    pdtt::WallClock clock;
    pdtt::SinkList sinks;
    auto checker = std::make_unique<Checker>();
    Checker& check = *checker;
    sinks.push_back(std::move(checker));
    static std::FILE* devnull = std::fopen("/dev/null", "w");
    sinks.push_back(pdtt::make_json_sink(devnull));
    sinks.push_back(pdtt::make_text_sink(devnull));

    try {
        pdtt::Aggregator agg(
            sinks, names, [](uint32_t idx) { return idx ? "if" + std::to_string(idx) : std::string("eth0"); }, clock,
            [&p](const pdtt_flow_key&) { return p.ConsumeBool() ? int64_t{4000} : pdtt::kUnattributedUid; });
        // Counters below 2^40 each: a kernel's, summed over a run without wrapping.
        auto counters = [&p] {
            return pdtt::Counters{
                p.ConsumeIntegralInRange<uint64_t>(0, 1ull << 40), p.ConsumeIntegralInRange<uint64_t>(0, 1ull << 40),
                p.ConsumeIntegralInRange<uint64_t>(0, 1ull << 30), p.ConsumeIntegralInRange<uint64_t>(0, 1ull << 30)};
        };
        int64_t end_us = 1'700'000'000'000'000;
        while (p.remaining_bytes() > 0) {
            const int op = p.ConsumeIntegralInRange(0, 15);
            if (op < 9) {
                pdtt_event e{};
                if (p.ConsumeBool()) { // raw bytes, as a ring record could hold
                    auto raw = p.ConsumeBytes<uint8_t>(sizeof(e));
                    if (!raw.empty())
                        std::memcpy(&e, raw.data(), raw.size());
                    e.key = key(e.key.lport & 3); // a few keys, so records meet
                    e.flow_id &= 7;
                } else {
                    e.type = p.ConsumeIntegralInRange<uint8_t>(0, 5);
                    e.key = key(p.ConsumeIntegralInRange(0, 3));
                    e.flow_id = p.ConsumeIntegralInRange<uint64_t>(1, 6);
                    static const uint32_t uids[] = {0, 1000, 1001, 1002, PDTT_UID_UNRESOLVED};
                    e.uid = uids[p.ConsumeIntegralInRange(0, 4)];
                    e.pid = p.ConsumeIntegralInRange<uint32_t>(0, 3);
                    e.ifindex = p.ConsumeIntegralInRange<uint32_t>(0, 2);
                    e.direction = p.ConsumeIntegralInRange<uint8_t>(0, 3);
                    e.ts_ns = p.ConsumeIntegral<uint64_t>() >> 2;
                    e.open_ns = p.ConsumeIntegral<uint64_t>() >> 2;
                    auto comm = p.ConsumeBytes<char>(sizeof(e.comm));
                    if (!comm.empty())
                        std::memcpy(e.comm, comm.data(), comm.size());
                }
                pdtt::Counters c = counters();
                e.cnt = {c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets};
                agg.on_event(e);
            } else if (op == 9) {
                agg.deltas_done();
            } else if (op == 10) {
                end_us += 1'000'000;
                agg.report(pdtt::Timestamp(std::chrono::microseconds(end_us)), 1.0);
            } else if (op == 11) {
                agg.add_unattributed(counters());
            } else if (op == 12) {
                agg.add_overflow(p.ConsumeIntegralInRange<int64_t>(-1, 1002), counters());
            } else if (op == 13) {
                // The drain may bring a close (or any record) of a flow prune looked at.
                agg.prune([&p](const pdtt_flow_key&) { return p.ConsumeBool(); },
                          [&] {
                              if (!p.ConsumeBool())
                                  return;
                              pdtt_event e{};
                              e.type = PDTT_EV_FLOW_CLOSE;
                              e.key = key(p.ConsumeIntegralInRange(0, 3));
                              e.flow_id = p.ConsumeIntegralInRange<uint64_t>(1, 6);
                              e.uid = 1000;
                              pdtt::Counters c = counters();
                              e.cnt = {c.tx_bytes, c.rx_bytes, c.tx_packets, c.rx_packets};
                              agg.on_event(e);
                          });
            } else {
                for (const auto& k : agg.udp_to_close(p.ConsumeIntegral<uint64_t>(), p.ConsumeIntegral<uint64_t>(),
                                                      [&p](const pdtt_flow_key&) { return p.ConsumeBool(); }))
                    agg.forget(k);
            }
            if (agg.udp_active() > agg.active() || agg.active() > 4)
                fail("flows tracked: " + std::to_string(agg.active()) + ", of which UDP " +
                     std::to_string(agg.udp_active()) + ", with 4 keys");
        }
        end_us += 1'000'000;
        agg.report(pdtt::Timestamp(std::chrono::microseconds(end_us)), 1.0);
    } catch (const std::exception& e) {
        fail(std::string("exception: ") + e.what());
    }
    (void)check;
    return 0;
}
