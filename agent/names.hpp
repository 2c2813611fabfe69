// Names for numbers: uids to user names (cached: NSS can be slow, never per
// event) and kernel addresses to text.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace pdtt {

// getpwuid_r goes to sssd or LDAP on HPC hosts and can take seconds, so
// it runs on a worker thread and nothing here ever waits for it (but
// wait(), for the shutdown). A name once known is served from the cache at
// once, and when it expires it is looked up again in the background while
// the old one is served. A uid never seen before has no name until its
// first lookup answers: known() says so, and the caller decides whether to
// wait (reports do, bounded) or to say "uid-N" (name()).
class UserNames {
public:
    using Lookup = bool (*)(uint32_t uid, std::string& name);
    // Test only: PDTT_TEST_NAME_DELAY_MS=N in the environment makes every
    // lookup of the passwd database (lookup null) take N ms longer, as a
    // slow LDAP server does.
    // Threads::none: lookups run in the call, for a lookup that cannot
    // block (tests and benchmarks with a passwd of their own).
    enum class Threads { worker, none };
    explicit UserNames(std::chrono::seconds ttl = std::chrono::seconds(600), Lookup lookup = nullptr,
                       Threads threads = Threads::worker);
    ~UserNames();
    UserNames(const UserNames&) = delete;
    UserNames& operator=(const UserNames&) = delete;

    // "alice", "uid-1234" when the passwd database has no entry,
    // "unattributed" for uid -1; nothing while the first lookup is pending
    // (it is started). A copy: the worker may refresh the entry.
    std::optional<std::string> known(int64_t uid);
    // known(uid), or "uid-N" while it is pending (not cached: a later call
    // has the answer).
    std::string name(int64_t uid);
    // Waits until uid's first lookup has answered or `until`; true if it has.
    bool wait(int64_t uid, std::chrono::steady_clock::time_point until);

private:
    struct Shared; // with the worker, which may outlive this (a lookup stuck in NSS at exit)
    std::shared_ptr<Shared> s_;
};

// 16 bytes in network order, IPv4-mapped for IPv4 -> "10.0.0.1" or "fd00::1".
std::string format_addr(const uint8_t addr[16]);
bool is_v4_mapped(const uint8_t addr[16]);

} // namespace pdtt
