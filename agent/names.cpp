#include "names.hpp"

#include "records.hpp"

#include <arpa/inet.h>
#include <pwd.h>
#include <unistd.h>

#include <cstring>
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

UserNames::UserNames(std::chrono::seconds ttl, Lookup lookup)
    : ttl_(ttl), lookup_(lookup ? lookup : &passwd_lookup) {}

const std::string& UserNames::name(int64_t uid) {
    auto now = std::chrono::steady_clock::now();
    auto it = cache_.find(uid);
    if (it != cache_.end() && it->second.expires > now)
        return it->second.name;
    std::string n;
    if (uid == kUnattributedUid)
        n = kUnattributedUser;
    else if (uid < 0 || !lookup_(static_cast<uint32_t>(uid), n))
        n = "uid-" + std::to_string(uid);
    auto& e = cache_[uid];
    e.name = std::move(n);
    e.expires = now + ttl_;
    return e.name;
}

bool is_v4_mapped(const uint8_t a[16]) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

std::string format_addr(const uint8_t a[16]) {
    char buf[INET6_ADDRSTRLEN];
    if (is_v4_mapped(a))
        ::inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
    else
        ::inet_ntop(AF_INET6, a, buf, sizeof(buf));
    return buf;
}

} // namespace pdtt
