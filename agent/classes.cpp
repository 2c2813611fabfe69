#include "classes.hpp"

#include "errors.hpp"
#include "names.hpp"

#include <arpa/inet.h>
#include <endian.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pdtt {

namespace {

using u128 = unsigned __int128;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

bool valid_name(std::string_view n) {
    return !n.empty() && n.size() <= 32 && std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

u128 load128(const uint8_t a[16]) {
    uint64_t hi, lo;
    std::memcpy(&hi, a, 8);
    std::memcpy(&lo, a + 8, 8);
    return (u128(be64toh(hi)) << 64) | be64toh(lo);
}

void store128(u128 v, uint8_t a[16]) {
    uint64_t hi = htobe64(uint64_t(v >> 64)), lo = htobe64(uint64_t(v));
    std::memcpy(a, &hi, 8);
    std::memcpy(a + 8, &lo, 8);
}

// All ones below the top `len` of `width` bits.
u128 host_mask(unsigned width, unsigned len) {
    u128 all = width == 128 ? ~u128(0) : (u128(1) << width) - 1;
    return len >= width ? 0 : all >> len;
}

std::string format_net(bool v4, u128 lo, unsigned len) {
    char buf[INET6_ADDRSTRLEN];
    if (v4) {
        uint32_t n = htonl(uint32_t(lo));
        ::inet_ntop(AF_INET, &n, buf, sizeof(buf));
    } else {
        uint8_t a[16];
        store128(lo, a);
        ::inet_ntop(AF_INET6, a, buf, sizeof(buf));
    }
    return std::string(buf) + "/" + std::to_string(len);
}

// The config layer's message shape, WHERE 'VALUE': PROBLEM, on one line
// whatever bytes the value holds.
[[noreturn]] void bad_class(std::string_view where, std::string_view value, const std::string& problem) {
    std::string raw = std::string(where) + " '" + std::string(value) + "': " + problem, msg;
    for (unsigned char c : raw) {
        if (c < 0x20 || c == 0x7f) {
            char esc[5];
            std::snprintf(esc, sizeof(esc), "\\x%02x", c);
            msg += esc;
        } else {
            msg += char(c);
        }
    }
    throw Error(kExitUsage, msg);
}

// ::ffff:0:0/96, the IPv4-mapped block, as the top 96 bits of an address.
constexpr u128 kMappedPrefix = u128(0xffff) << 32;

} // namespace

template <typename K> ClassId TrafficClasses::Table<K>::find(K k) const {
    auto it = std::upper_bound(starts.begin(), starts.end(), k);
    return it == starts.begin() ? kOtherClass : cls[size_t(it - starts.begin()) - 1];
}

void TrafficClasses::add(std::string_view value, std::string_view where) {
    auto fail = [&](const std::string& problem) { bad_class(where, value, problem); };
    size_t eq = value.find('=');
    if (eq == std::string_view::npos)
        fail("must be NAME=CIDR[,CIDR...]");
    std::string_view name = trim(value.substr(0, eq));
    if (!valid_name(name))
        fail("a class name is 1 to 32 letters, digits, '_' or '-'");
    if (iequals(name, kOtherClassName))
        fail("'other' is what addresses in no class are called; choose another name");
    for (const std::string& n : names_)
        if (iequals(n, name))
            fail("class '" + n + "' is already defined");
    if (names_.size() > kMaxClasses)
        fail("at most " + std::to_string(kMaxClasses) + " classes");
    std::string_view list = value.substr(eq + 1);
    if (trim(list).empty())
        fail("no CIDR given");

    ClassId id = ClassId(names_.size());
    std::vector<Prefix> mine;
    for (size_t pos = 0; pos <= list.size();) {
        size_t comma = std::min(list.find(',', pos), list.size());
        std::string_view cidr = trim(list.substr(pos, comma - pos));
        pos = comma + 1;
        if (cidr.empty())
            fail("an empty item in the CIDR list");

        std::string text(cidr);
        size_t slash = text.find('/');
        std::string addr = text.substr(0, slash);
        Prefix p{};
        p.cls = id;
        unsigned width;
        in_addr a4;
        uint8_t a6[16];
        if (::inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
            p.v4 = true;
            p.lo = ntohl(a4.s_addr);
            width = 32;
        } else if (::inet_pton(AF_INET6, addr.c_str(), a6) == 1) {
            p.v4 = false;
            p.lo = load128(a6);
            width = 128;
        } else {
            bad_class(where, value, text + " is not an IPv4 or IPv6 address or network");
        }
        unsigned len = width;
        if (slash != std::string::npos) {
            std::string l = text.substr(slash + 1);
            bool digits = std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (l.empty() || l.size() > 3 || !digits || std::stoul(l) > width)
                fail(text + ": the prefix length must be 0 to " + std::to_string(width));
            len = unsigned(std::stoul(l));
        }
        if (!p.v4 && len >= 96 && (p.lo >> 32) == kMappedPrefix >> 32) {
            // An IPv4-mapped network is the IPv4 network it maps.
            p.v4 = true;
            p.lo = uint32_t(p.lo);
            len -= 96;
            width = 32;
        }
        if (p.lo & host_mask(width, len)) {
            std::string msg = text;
            msg += " has host bits set: the network is ";
            msg += format_net(p.v4, p.lo & ~host_mask(width, len), len);
            msg += " (a single host is ";
            msg += addr;
            msg += ")";
            fail(msg);
        }
        p.len = uint8_t(len);

        for (const Prefix& q : mine)
            if (q.v4 == p.v4 && q.lo == p.lo && q.len == p.len)
                fail(text + " is listed twice");
        for (const Prefix& q : prefixes_)
            if (q.v4 == p.v4 && q.lo == p.lo && q.len == p.len)
                fail(text + " is already in class '" + names_[q.cls] + "'");
        mine.push_back(p);
    }
    names_.emplace_back(name);
    prefixes_.insert(prefixes_.end(), mine.begin(), mine.end());
    rebuild();
}

namespace {

// CIDRs either nest or are disjoint, so one sweep in address order, with the
// enclosing prefixes on a stack, cuts the space into ranges that each have
// one most specific class.
template <typename K>
void flatten(std::vector<std::pair<K, K>> ranges_lo_hi, const std::vector<ClassId>& classes, std::vector<K>& starts,
             std::vector<ClassId>& cls) {
    struct R {
        K lo, hi;
        ClassId c;
    };
    std::vector<R> rs;
    for (size_t i = 0; i < ranges_lo_hi.size(); ++i)
        rs.push_back({ranges_lo_hi[i].first, ranges_lo_hi[i].second, classes[i]});
    // Same start: the wider (larger hi) first, so the narrower overrides it.
    std::sort(rs.begin(), rs.end(), [](const R& a, const R& b) { return a.lo != b.lo ? a.lo < b.lo : a.hi > b.hi; });

    starts.clear();
    cls.clear();
    auto emit = [&](K s, ClassId c) {
        if (!starts.empty() && starts.back() == s)
            cls.back() = c;
        else {
            starts.push_back(s);
            cls.push_back(c);
        }
    };
    std::vector<R> open;
    auto close = [&](bool all, K lo) {
        while (!open.empty() && (all || open.back().hi < lo)) {
            K end = open.back().hi;
            open.pop_back();
            if (end != K(~K(0))) // numeric_limits knows no __int128 in strict C++
                emit(K(end + 1), open.empty() ? kOtherClass : open.back().c);
        }
    };
    emit(0, kOtherClass);
    for (const R& r : rs) {
        close(false, r.lo);
        emit(r.lo, r.c);
        open.push_back(r);
    }
    close(true, 0);

    // Neighbours of one class are one range.
    size_t w = 0;
    for (size_t i = 0; i < starts.size(); ++i) {
        if (w > 0 && cls[w - 1] == cls[i])
            continue;
        starts[w] = starts[i];
        cls[w] = cls[i];
        ++w;
    }
    starts.resize(w);
    cls.resize(w);
}

} // namespace

void TrafficClasses::rebuild() {
    std::vector<std::pair<uint32_t, uint32_t>> r4;
    std::vector<std::pair<u128, u128>> r6;
    std::vector<ClassId> c4, c6;
    for (const Prefix& p : prefixes_) {
        if (p.v4) {
            r4.emplace_back(uint32_t(p.lo), uint32_t(p.lo | host_mask(32, p.len)));
            c4.push_back(p.cls);
        } else {
            r6.emplace_back(p.lo, p.lo | host_mask(128, p.len));
            c6.push_back(p.cls);
        }
    }
    flatten(std::move(r4), c4, v4_.starts, v4_.cls);
    flatten(std::move(r6), c6, v6_.starts, v6_.cls);
}

ClassId TrafficClasses::classify(const uint8_t addr[16]) const {
    if (is_v4_mapped(addr)) {
        uint32_t v;
        std::memcpy(&v, addr + 12, 4);
        return v4_.find(ntohl(v));
    }
    return v6_.find(load128(addr));
}

} // namespace pdtt
