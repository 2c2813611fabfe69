// Names for numbers: uids to user names (cached: NSS can be slow, never per
// event) and kernel addresses to text.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace pdtt {

class UserNames {
public:
    using Lookup = bool (*)(uint32_t uid, std::string& name);
    explicit UserNames(std::chrono::seconds ttl = std::chrono::seconds(600), Lookup lookup = nullptr);

    // "alice", "uid-1234" when the passwd database has no entry,
    // "unattributed" for uid -1.
    const std::string& name(int64_t uid);

private:
    struct Entry {
        std::string name;
        std::chrono::steady_clock::time_point expires;
    };
    std::chrono::seconds ttl_;
    Lookup lookup_;
    std::unordered_map<int64_t, Entry> cache_;
};

// 16 bytes in network order, IPv4-mapped for IPv4 -> "10.0.0.1" or "fd00::1".
std::string format_addr(const uint8_t addr[16]);
bool is_v4_mapped(const uint8_t addr[16]);

} // namespace pdtt
