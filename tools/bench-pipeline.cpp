// bench-pipeline: the agent's user-space path without the kernel. Synthetic
// ring records go through the same steps as RingReader::on_sample (copy out
// of the ring, decode) and pdtt::Aggregator (aggregate, name, JSON lines to
// /dev/null), timed on one thread.
//
//   bench-pipeline [--events N] [--flows F] [--deltas K] [--users U]
//                  [--sweeps-per-report R] [--ipv6-percent P]
//
// The stream looks like the kernel's: F flows are open at any time; every
// sweep emits one FLOW_DELTA per open flow with growing cumulative
// counters; a flow closes after K sweeps (FLOW_CLOSE) and a fresh one
// (FLOW_OPEN) takes its place; lifetimes are staggered so that opens and
// closes spread over the sweeps. Every R sweeps the agent's interval report
// runs (user_report records). The JSON lines are counted, not written.
// Output, one line: "events=N seconds=S events_per_s=X open=.. delta=..
// close=.. flows=F lines=L bytes=B allocs_per_event=A cpu_seconds=C
// events_per_cpu_s=Y", A counting every operator new in the timed part; C
// is the thread's CPU time over the timed part, the fairer figure when the
// machine is busy with other work.

#include "abi.hpp"
#include "aggregator.hpp"
#include "factory.hpp"
#include "names.hpp"
#include "wall_clock.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

// Every allocation of the process, to show the pipeline makes none per event.
static uint64_t g_allocs = 0;

void* operator new(std::size_t n) {
    ++g_allocs;
    if (void* p = std::malloc(n ? n : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

uint64_t arg_num(int argc, char** argv, const char* name, uint64_t def) {
    for (int i = 1; i + 1 < argc; i++) {
        if (std::strcmp(argv[i], name) != 0)
            continue;
        uint64_t v = 0;
        const char* s = argv[i + 1];
        auto [p, ec] = std::from_chars(s, s + std::strlen(s), v);
        if (ec != std::errc() || *p)
            throw std::runtime_error(std::string(name) + ": not a non-negative integer: '" + s + "'");
        return v;
    }
    return def;
}

// Fixed names: the benchmark measures the pipeline, not NSS.
bool fake_passwd(uint32_t uid, std::string& name) {
    name = "user" + std::to_string(uid);
    return true;
}

// What the JSON sink writes, counted: lines and octets, nothing kept.
struct Output {
    uint64_t lines = 0, bytes = 0;
    static ssize_t write(void* self, const char* buf, size_t n) {
        auto* o = static_cast<Output*>(self);
        o->bytes += n;
        for (const char* p = buf; (p = static_cast<const char*>(std::memchr(p, '\n', size_t(buf + n - p))));) {
            ++o->lines;
            ++p;
        }
        return static_cast<ssize_t>(n);
    }
};

struct SynthFlow {
    pdtt_flow_key key{};
    pdtt_flow flow{}; // as the kernel flow table holds it
    uint32_t age = 0; // sweeps since open
};

class Stream {
public:
    Stream(uint64_t flows, uint32_t deltas, uint32_t users, uint32_t v6_percent) :
        deltas_(deltas), users_(users), v6_percent_(v6_percent), flows_(flows) {
        for (size_t i = 0; i < flows_.size(); i++) {
            renew(flows_[i]);
            flows_[i].age = static_cast<uint32_t>(i % (deltas_ + 1)); // staggered lifetimes
        }
    }

    // One sweep's worth of ring records, appended to out.
    void sweep(std::vector<pdtt_event>& out, uint64_t now_ns) {
        now_ns_ = now_ns;
        for (auto& f : flows_) {
            if (f.age == 0) {
                out.push_back(event(f, PDTT_EV_FLOW_OPEN));
            }
            // Bulk flows move a lot, most move a little: vary the step.
            uint64_t step = 1448ull * (1 + (f.key.lport % 64));
            f.flow.cnt.tx_bytes += step;
            f.flow.cnt.rx_bytes += step / 8;
            f.flow.cnt.tx_packets += 1 + f.key.lport % 64;
            f.flow.cnt.rx_packets += 1 + f.key.lport % 16;
            if (++f.age > deltas_) {
                out.push_back(event(f, PDTT_EV_FLOW_CLOSE));
                renew(f);
            } else {
                out.push_back(event(f, PDTT_EV_FLOW_DELTA));
            }
        }
    }

private:
    void renew(SynthFlow& f) {
        uint64_t n = serial_++;
        f = SynthFlow{};
        bool v6 = n % 100 < v6_percent_;
        f.flow.id = n + 1; // the socket cookie: unique per flow
        f.flow.family = v6 ? AF_INET6 : AF_INET;
        if (v6) {
            inet_pton(AF_INET6, "fd00:201::1", f.key.laddr);
            inet_pton(AF_INET6, "fd00:201::2", f.key.raddr);
            f.key.raddr[14] = static_cast<uint8_t>(n >> 8);
            f.key.raddr[15] = static_cast<uint8_t>(n);
        } else {
            // IPv4-mapped, as the kernel stores it.
            f.key.laddr[10] = f.key.laddr[11] = 0xff;
            f.key.raddr[10] = f.key.raddr[11] = 0xff;
            uint32_t l = htonl(0x0ac90001), r = htonl(0x0ac90000 | (2 + n % 250));
            std::memcpy(f.key.laddr + 12, &l, 4);
            std::memcpy(f.key.raddr + 12, &r, 4);
        }
        f.key.netns = 4026531840u;
        f.key.lport = static_cast<uint16_t>(1024 + n % 64000);
        f.key.rport = static_cast<uint16_t>(n % 3 == 0 ? 443 : 22);
        f.key.proto = IPPROTO_TCP;
        // A few users own most flows, as on a login node.
        f.flow.uid = 1000 + static_cast<uint32_t>((n * 2654435761u) % users_);
        f.flow.direction = n % 4 == 0 ? PDTT_DIR_INBOUND : PDTT_DIR_OUTBOUND;
        f.flow.open_ns = now_ns_;
        f.flow.ifindex = 2;
        f.flow.pid = f.flow.direction == PDTT_DIR_OUTBOUND ? 4242 : 0;
        if (f.flow.pid)
            std::memcpy(f.flow.comm, "rsync", 6);
    }

    pdtt_event event(const SynthFlow& f, uint8_t type) const { return pdtt::make_event(type, now_ns_, f.key, f.flow); }

    uint32_t deltas_, users_, v6_percent_;
    uint64_t serial_ = 0;
    uint64_t now_ns_ = 1'000'000'000;
    std::vector<SynthFlow> flows_;
};

} // namespace

int main(int argc, char** argv) {
    try {
        for (int i = 1; i < argc; i++)
            if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
                std::printf("usage: bench-pipeline [--events N] [--flows F] [--deltas K] [--users U]\n"
                            "                      [--sweeps-per-report R] [--ipv6-percent P]\n"
                            "Prints events_per_s, the JSON lines and octets made, and allocs_per_event.\n");
                return 0;
            }
        uint64_t events = arg_num(argc, argv, "--events", 5'000'000);
        uint64_t flows = arg_num(argc, argv, "--flows", 10'000);
        uint32_t deltas = static_cast<uint32_t>(arg_num(argc, argv, "--deltas", 20));
        uint32_t users = static_cast<uint32_t>(arg_num(argc, argv, "--users", 50));
        uint64_t per_report = arg_num(argc, argv, "--sweeps-per-report", 10);
        uint32_t v6 = static_cast<uint32_t>(arg_num(argc, argv, "--ipv6-percent", 10));
        if (!flows || !users || !per_report || v6 > 100)
            throw std::runtime_error(
                "--flows, --users and --sweeps-per-report must be positive, --ipv6-percent 0..100");

        Output output;
        std::FILE* out = fopencookie(&output, "w", {nullptr, &Output::write, nullptr, nullptr});
        if (!out)
            throw std::runtime_error("fopencookie failed");
        pdtt::SinkList sinks;
        sinks.push_back(pdtt::make_json_sink(out));
        pdtt::UserNames names(std::chrono::seconds(600), fake_passwd, pdtt::UserNames::Threads::none);
        pdtt::WallClock clock;
        pdtt::Aggregator agg(
            sinks, names, [](uint32_t) { return std::string("veth0"); }, clock);

        Stream stream(flows, deltas, users, v6);
        std::vector<pdtt_event> batch;
        batch.reserve(flows * 2 + 16);
        // The ring hands out raw bytes; the agent copies each record out.
        std::vector<unsigned char> ring;
        uint64_t done = 0, by_type[4] = {}, sweeps = 0, now = 1'000'000'000;
        Clock::duration busy{};
        uint64_t allocs = 0;
        double cpu = 0;
        while (done < events) {
            batch.clear();
            stream.sweep(batch, now);
            now += 1'000'000'000;
            size_t n = std::min<uint64_t>(batch.size(), events - done);
            ring.resize(n * sizeof(pdtt_event));
            std::memcpy(ring.data(), batch.data(), ring.size());

            uint64_t allocs0 = g_allocs;
            double cpu0 = thread_cpu_seconds();
            auto t0 = Clock::now();
            for (size_t i = 0; i < n; i++) {
                pdtt_event e;
                std::memcpy(&e, ring.data() + i * sizeof(e), sizeof(e));
                agg.on_event(e);
            }
            agg.deltas_done();
            if (++sweeps % per_report == 0) {
                agg.report(clock.from_mono(now), static_cast<double>(per_report));
                for (auto& s : sinks)
                    s->interval_end();
            }
            busy += Clock::now() - t0;
            cpu += thread_cpu_seconds() - cpu0;
            allocs += g_allocs - allocs0;
            for (size_t i = 0; i < n; i++)
                by_type[batch[i].type & 3]++;
            done += n;
        }
        for (auto& s : sinks)
            s->flush();
        double secs = std::chrono::duration<double>(busy).count();
        sinks.clear();
        std::fclose(out);
        std::printf("events=%llu seconds=%.3f events_per_s=%.0f open=%llu delta=%llu close=%llu flows=%llu "
                    "lines=%llu bytes=%llu allocs_per_event=%.3f cpu_seconds=%.3f events_per_cpu_s=%.0f\n",
                    (unsigned long long)done, secs, secs > 0 ? done / secs : 0.0,
                    (unsigned long long)by_type[PDTT_EV_FLOW_OPEN], (unsigned long long)by_type[PDTT_EV_FLOW_DELTA],
                    (unsigned long long)by_type[PDTT_EV_FLOW_CLOSE], (unsigned long long)flows,
                    (unsigned long long)output.lines, (unsigned long long)output.bytes,
                    done ? double(allocs) / double(done) : 0.0, cpu, cpu > 0 ? done / cpu : 0.0);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-pipeline: %s\n", e.what());
        return 1;
    }
}
