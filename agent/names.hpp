// Names for numbers: uids to user names (cached: NSS can be slow, never per
// event) and kernel addresses to text.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace pdtt {

// getpwuid_r goes to sssd or LDAP on HPC hosts and can take seconds, so
// it runs on a worker thread. A name once known is served from the cache
// at once, and when it expires it is looked up again in the background
// while the old one is served. Only a uid never seen before waits for its
// lookup, and for at most max_wait; it is then "uid-N" for that call
// only, never cached, so the next call has the real name.
class UserNames {
public:
    using Lookup = bool (*)(uint32_t uid, std::string& name);
    explicit UserNames(std::chrono::seconds ttl = std::chrono::seconds(600), Lookup lookup = nullptr,
                       std::chrono::milliseconds max_wait = std::chrono::milliseconds(2000));
    ~UserNames();
    UserNames(const UserNames&) = delete;
    UserNames& operator=(const UserNames&) = delete;

    // "alice", "uid-1234" when the passwd database has no entry,
    // "unattributed" for uid -1. A copy: the worker may refresh the entry.
    std::string name(int64_t uid);

private:
    struct Shared; // with the worker, which may outlive this (a lookup stuck in NSS at exit)
    std::shared_ptr<Shared> s_;
    std::chrono::milliseconds max_wait_;
};

// 16 bytes in network order, IPv4-mapped for IPv4 -> "10.0.0.1" or "fd00::1".
std::string format_addr(const uint8_t addr[16]);
bool is_v4_mapped(const uint8_t addr[16]);

} // namespace pdtt
