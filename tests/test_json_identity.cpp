// The JSON sink makes a flow's identity fields once and reuses them for
// every record of the flow: driven through the aggregator, every line must
// be the line made from scratch, however the flow's owner, process and
// cgroup change on the way.
#define BOOST_TEST_MODULE json_identity
#include <boost/test/unit_test.hpp>

#include "aggregator.hpp"
#include "cgroups.hpp"
#include "factory.hpp"
#include "subuid.hpp"

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

using namespace pdtt;
namespace fs = std::filesystem;

namespace {

bool fake_passwd(uint32_t uid, std::string& name) {
    name = uid == 1001 ? "alice" : uid == 1002 ? "bob" : "root";
    return true;
}

// What one JSON sink writes, into memory.
struct Lines {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = open_memstream(&buf, &len);
    std::unique_ptr<Sink> sink = make_json_sink(f);
    ~Lines() {
        sink.reset();
        std::fclose(f);
        std::free(buf);
    }
    std::string text() {
        sink->flush();
        std::fflush(f);
        return std::string(buf, len);
    }
};

// Hands each record to one JSON sink as it comes, with the flow's kept
// identity, and to another with none, which makes every line from scratch.
struct Tee : Sink {
    Lines& kept;
    Lines& fresh;
    Tee(Lines& k, Lines& f) : kept(k), fresh(f) {}
    template <typename F> void both(const FlowRecord& r, F call) {
        (kept.sink.get()->*call)(r);
        FlowRecord copy = r;
        copy.id_json = nullptr;
        (fresh.sink.get()->*call)(copy);
    }
    void flow_open(const FlowRecord& r) override { both(r, &Sink::flow_open); }
    void flow_delta(const FlowRecord& r) override { both(r, &Sink::flow_delta); }
    void flow_owner(const FlowRecord& r) override { both(r, &Sink::flow_owner); }
    void flow_close(const FlowRecord& r) override { both(r, &Sink::flow_close); }
};

// An aggregator feeding one sink.
struct Pipeline {
    SinkList sinks;
    UserNames names{std::chrono::seconds(600), &fake_passwd, UserNames::Threads::none};
    WallClock clock;
    Aggregator agg{sinks, names, [](uint32_t) { return std::string("veth0"); }, clock};
    explicit Pipeline(std::unique_ptr<Sink> sink) { sinks.push_back(std::move(sink)); }
};

CgroupResolver::Options walk_only() {
    CgroupResolver::Options o;
    o.use_handles = false; // a temporary directory is no cgroup2 file system
    return o;
}

// A fake cgroup2 hierarchy in a temporary directory (a cgroup's id is its inode).
struct Tree {
    fs::path root = fs::temp_directory_path() / ("pdtt-json-identity-" + std::to_string(::getpid()));
    Tree() { fs::create_directories(root); }
    ~Tree() { fs::remove_all(root); }
    uint64_t make(const std::string& rel) {
        fs::create_directories(root / rel);
        struct stat st {};
        BOOST_REQUIRE(::stat((root / rel).c_str(), &st) == 0);
        return st.st_ino;
    }
};

pdtt_event ev(uint8_t type, uint64_t flow_id, uint32_t uid, uint64_t cgroup, uint32_t pid, const char* comm,
              uint64_t tx) {
    pdtt_event e{};
    e.type = type;
    e.flow_id = flow_id;
    uint8_t laddr[16] = {}, raddr[16] = {};
    laddr[10] = laddr[11] = raddr[10] = raddr[11] = 0xff;
    laddr[12] = raddr[12] = 10;
    laddr[15] = 1;
    raddr[15] = 2;
    e.key = make_flow_key(laddr, static_cast<uint16_t>(40000 + flow_id), raddr, 22, IPPROTO_TCP, 4026531840u);
    e.uid = uid;
    e.cgroup = cgroup;
    e.ifindex = 3;
    e.cnt = {tx, tx / 2, tx / 1000 + 1, tx / 2000 + 1};
    e.open_ns = 1'000'000'000;
    e.ts_ns = 1'000'000'000 + tx;
    e.pid = pid;
    std::strncpy(e.comm, comm, sizeof e.comm - 1);
    return e;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(kept_identity_is_remade_whenever_the_flow_changes) {
    Tree tree;
    uint64_t step0 = tree.make("slurmstepd.scope/job_4242/step_0");
    uint64_t other_job = tree.make("slurmstepd.scope/job_77/step_0");
    uint64_t late = tree.make("slurmstepd.scope/job_88/step_1");
    CgroupResolver cgroups{CgroupMount{2, tree.root.string(), "/", 0}, walk_only()};
    auto resolve = [&](uint64_t id) {
        cgroups.lookup(id);
        for (int i = 0; i < 500 && cgroups.stats().pending; ++i) {
            cgroups.poll();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        BOOST_TEST_REQUIRE(cgroups.stats().pending == 0u);
    };
    resolve(step0);
    resolve(other_job);

    Lines kept, fresh;
    Pipeline p{std::make_unique<Tee>(kept, fresh)};
    Aggregator& agg = p.agg;
    agg.set_cgroups(&cgroups);

    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1001, step0, 10, "ssh", 1000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, step0, 10, "ssh", 2000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, step0, 11, "scp", 3000));       // another process
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, 1002, step0, 12, "rsync", 4000));     // another user
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1002, step0, 12, "rsync", 5000));     // reused
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, 1002, other_job, 12, "rsync", 6000)); // another job
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1002, other_job, 12, "rsync", 7000));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 2, 1001, late, 20, "dd", 100)); // cgroup not resolved yet
    resolve(late);
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 2, 1001, late, 20, "dd", 200)); // resolved since
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1002, other_job, 12, "rsync", 8000));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 2, 1001, late, 20, "dd", 300));
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 3, 1001, 0, 30, "cp", 100)); // opened in softirq: no cgroup
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 3, 1001, 0, 30, "cp", 200));
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 3, 1001, step0, 30, "cp", 300)); // same owner, its cgroup learnt
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 3, 1001, step0, 30, "cp", 400));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 3, 1001, step0, 30, "cp", 500));

    const std::string text = kept.text();
    BOOST_TEST(text == fresh.text());
    BOOST_TEST(count(text, "\n") == 16u);
    BOOST_TEST(count(text, "\"comm\":\"scp\"") == 1u);
    BOOST_TEST(count(text, "\"user\":\"bob\"") == 5u);
    BOOST_TEST(count(text, "\"job\":\"77\"") == 3u);
    BOOST_TEST(count(text, "\"cgroup\":null") == 4u); // flow 2's open, flow 3 until its cgroup was learnt
    BOOST_TEST(count(text, "\"job\":\"88\"") == 2u);
}

// Another uid of the owner's subordinate range takes the flow over: the
// same user, no owner record, but raw_uid changes, and so must the kept
// identity (it kept the first raw_uid: helper review).
BOOST_AUTO_TEST_CASE(kept_identity_follows_a_new_raw_uid_of_the_same_user) {
    Lines kept, fresh;
    Pipeline p{std::make_unique<Tee>(kept, fresh)};
    Aggregator& agg = p.agg;
    agg.set_subuids(std::make_shared<const SubuidMap>(
        SubuidMap::parse("1001:200000:65536\n", [](const std::string&) { return std::nullopt; })));

    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 200007, 0, 10, "ssh", 1000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 200007, 0, 10, "ssh", 2000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 200007, 0, 10, "ssh", 3000)); // kept from here
    agg.on_event(ev(PDTT_EV_FLOW_OWNER, 1, 1001, 0, 10, "ssh", 4000));   // alice herself now
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 0, 10, "ssh", 5000));
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1001, 0, 10, "ssh", 6000));

    const std::string text = kept.text();
    BOOST_TEST(text == fresh.text());
    BOOST_TEST(count(text, "\"type\":\"flow_owner\"") == 0u);
    BOOST_TEST(count(text, "\"user\":\"alice\"") == 6u);
    BOOST_TEST(count(text, "\"raw_uid\":200007") == 4u); // with what moved before the change
    BOOST_TEST(count(text, "\"raw_uid\":1001") == 2u);
}

// The flow table is open-addressed and rehashes as it grows: a flow's kept
// identity must follow it, and no record may be made from where a flow
// used to be.
BOOST_AUTO_TEST_CASE(kept_identity_follows_its_flow_when_the_table_grows) {
    Lines kept, fresh;
    Pipeline p{std::make_unique<Tee>(kept, fresh)};
    Aggregator& agg = p.agg;

    constexpr uint64_t kFlows = 3000;
    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1001, 0, 10, "ssh", 1000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 0, 10, "ssh", 2000));
    agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 0, 10, "ssh", 2001)); // its identity is kept from here
    for (uint64_t id = 2; id <= kFlows; ++id) {
        agg.on_event(ev(PDTT_EV_FLOW_OPEN, id, 1002, 0, 20, "dd", 1000));
        agg.on_event(ev(PDTT_EV_FLOW_DELTA, id, 1002, 0, 20, "dd", 2000));
        if (id % 3 == 0) // holes for inserts to reuse
            agg.on_event(ev(PDTT_EV_FLOW_CLOSE, id, 1002, 0, 20, "dd", 3000));
        agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 0, 10, "ssh", 2000 + id));
    }
    agg.on_event(ev(PDTT_EV_FLOW_CLOSE, 1, 1001, 0, 10, "ssh", 10 * kFlows));
    BOOST_TEST(agg.active() == kFlows - 1 - kFlows / 3);

    const std::string text = kept.text();
    BOOST_TEST(text == fresh.text());
    BOOST_TEST(count(text, "\"flow_id\":1,") == kFlows + 3);
    BOOST_TEST(count(text, "\"comm\":\"ssh\"") == kFlows + 3);
    BOOST_TEST(count(text, "\"user\":\"alice\"") == kFlows + 3);
}

namespace {

// Whether each delta record offered the sink a place to keep its flow's
// identity text.
struct KeepOffers : Sink {
    std::vector<bool> offered;
    void flow_delta(const FlowRecord& r) override { offered.push_back(r.id_json != nullptr); }
};

} // namespace

// Most of a host's open flows move once and then idle (100,000 held
// connections): those keep no identity text (about 200 bytes a flow); a
// flow keeps it once it moves again.
BOOST_AUTO_TEST_CASE(identity_is_kept_from_a_flows_second_delta_on) {
    auto offers = std::make_unique<KeepOffers>();
    KeepOffers& o = *offers;
    Pipeline p{std::move(offers)};
    Aggregator& agg = p.agg;

    agg.on_event(ev(PDTT_EV_FLOW_OPEN, 1, 1001, 0, 10, "ssh", 1000));
    for (uint64_t tx = 2000; tx <= 4000; tx += 1000)
        agg.on_event(ev(PDTT_EV_FLOW_DELTA, 1, 1001, 0, 10, "ssh", tx));
    BOOST_TEST(o.offered == (std::vector<bool>{false, true, true}));
}
