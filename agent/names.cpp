#include "names.hpp"

#include "log.hpp"
#include "records.hpp"

#include <arpa/inet.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pdtt {

namespace {

bool passwd_lookup(uint32_t uid, std::string& name) {
    long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 4096);
    for (;;) {
        passwd pw{};
        passwd* res = nullptr;
        int rc = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res);
        if (rc == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (rc != 0 || !res)
            return false;
        name = pw.pw_name;
        return true;
    }
}

} // namespace

struct UserNames::Shared {
    struct Entry {
        std::string name;
        std::chrono::steady_clock::time_point expires;
        bool known = false;   // a lookup has answered
        bool pending = false; // a lookup is queued or running
    };
    std::chrono::seconds ttl;
    Lookup lookup;
    std::mutex mu;
    std::condition_variable wake, answered;
    std::unordered_map<int64_t, Entry> cache;
    std::deque<int64_t> queue;
    bool stop = false;
    std::chrono::milliseconds test_delay{0}; // PDTT_TEST_NAME_DELAY_MS
    bool worker = true;                      // else lookups run in request()

    Entry& entry(int64_t uid);

    void answer(int64_t uid, std::string n) { // under mu
        Entry& e = cache[uid];
        e.name = std::move(n);
        e.expires = std::chrono::steady_clock::now() + ttl;
        e.known = true;
        e.pending = false;
        answered.notify_all();
    }

    std::string ask(int64_t uid) const {
        std::string n;
        if (!lookup(static_cast<uint32_t>(uid), n))
            n = "uid-" + std::to_string(uid);
        return n;
    }

    void request(int64_t uid, Entry& e) { // under mu
        if (!worker)
            return answer(uid, ask(uid));
        if (e.pending)
            return;
        e.pending = true;
        queue.push_back(uid);
        wake.notify_one();
    }

    static void work(const std::shared_ptr<Shared>& s) {
        std::unique_lock lk(s->mu);
        for (;;) {
            s->wake.wait(lk, [&] { return s->stop || !s->queue.empty(); });
            if (s->stop)
                return;
            int64_t uid = s->queue.front();
            s->queue.pop_front();
            lk.unlock();
            std::this_thread::sleep_for(s->test_delay);
            std::string n = s->ask(uid);
            lk.lock();
            s->answer(uid, std::move(n));
        }
    }
};

UserNames::UserNames(std::chrono::seconds ttl, Lookup lookup, Threads threads) : s_(std::make_shared<Shared>()) {
    s_->ttl = ttl;
    s_->lookup = lookup ? lookup : &passwd_lookup;
    s_->worker = threads == Threads::worker;
    if (!s_->worker)
        return;
    if (const char* delay = lookup ? nullptr : std::getenv("PDTT_TEST_NAME_DELAY_MS")) {
        s_->test_delay = std::chrono::milliseconds(std::strtoul(delay, nullptr, 10));
        log::warn("PDTT_TEST_NAME_DELAY_MS=" + std::string(delay) + ": every name lookup made slower for a test");
    }
    std::thread([s = s_] { Shared::work(s); }).detach();
}

UserNames::~UserNames() {
    {
        std::lock_guard lk(s_->mu);
        s_->stop = true;
    }
    s_->wake.notify_all();
}

// Under mu: the entry of uid, answered at once for uids no lookup can know.
UserNames::Shared::Entry& UserNames::Shared::entry(int64_t uid) {
    Entry& e = cache[uid];
    if (!e.known && (uid < 0 || uid > UINT32_MAX))
        e = {uid == kUnattributedUid ? std::string(kUnattributedUser) : "uid-" + std::to_string(uid),
             std::chrono::steady_clock::time_point::max(), true, false};
    return e;
}

std::optional<std::string> UserNames::known(int64_t uid) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lk(s_->mu);
    Shared::Entry& e = s_->entry(uid);
    if (e.known) {
        if (e.expires <= now)
            s_->request(uid, e); // served stale meanwhile
        return e.name;
    }
    s_->request(uid, e);
    if (e.known) // Threads::none
        return e.name;
    return std::nullopt;
}

std::string UserNames::name(int64_t uid) {
    if (auto n = known(uid))
        return *n;
    return "uid-" + std::to_string(uid);
}

bool UserNames::wait(int64_t uid, std::chrono::steady_clock::time_point until) {
    std::unique_lock lk(s_->mu);
    Shared::Entry& e = s_->entry(uid);
    if (!e.known)
        s_->request(uid, e);
    // References into an unordered_map stay valid while other keys are added.
    return s_->answered.wait_until(lk, until, [&] { return e.known; });
}

bool is_v4_mapped(const uint8_t a[16]) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

namespace {

char* format_v4(char* p, char* end, const uint8_t a[4]) {
    for (int i = 0; i < 4; i++) {
        if (i > 0)
            *p++ = '.';
        p = std::to_chars(p, end, a[i]).ptr;
    }
    return p;
}

// glibc's inet_ntop6 (RFC 5952): the first longest run of two or more zero
// groups is "::", groups in lowercase hex without leading zeros, and the
// last 32 bits dotted after six zero groups or five and ffff.
char* format_v6(char* p, char* end, const uint8_t a[16]) {
    uint16_t w[8];
    for (size_t i = 0; i < 8; i++)
        w[i] = uint16_t(a[2 * i] << 8 | a[2 * i + 1]);
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && !w[j])
            ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best = -1;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best)
                *p++ = ':';
            continue;
        }
        if (i)
            *p++ = ':';
        if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
            return format_v4(p, end, a + 12);
        p = std::to_chars(p, end, w[i], 16).ptr;
    }
    if (best >= 0 && best + best_len == 8)
        *p++ = ':';
    return p;
}

} // namespace

// Every flow record formats its two addresses: inet_ntop's text without
// its printf, which took a third of the event pipeline.
std::string format_addr(const uint8_t a[16]) {
    char buf[INET6_ADDRSTRLEN];
    char* end = is_v4_mapped(a) ? format_v4(buf, buf + sizeof(buf), a + 12) : format_v6(buf, buf + sizeof(buf), a);
    return std::string(buf, end);
}

} // namespace pdtt
