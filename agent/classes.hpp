// Traffic classes of remote addresses (--class; docs/records.md: classes):
// the most specific class whose CIDRs contain an address, else "other".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pdtt {

using ClassId = uint8_t;
inline constexpr ClassId kOtherClass = 0;
inline constexpr std::string_view kOtherClassName = "other";
inline constexpr size_t kMaxClasses = 64; // configured ones, "other" not counted

// Rules, each one an error (Error, kExitUsage) that names the value:
// - a name is [A-Za-z0-9_-]{1,32}, not "other", and not used twice (case aside);
// - a CIDR is ADDR/LEN or a bare ADDR (one host); host bits set is an error
//   ("10.0.0.1/8": the administrator meant 10.0.0.0/8, or a host, and is told);
// - a CIDR may appear only once over all classes;
// - IPv4 CIDRs match IPv4 addresses, which the agent holds IPv4-mapped
//   (::ffff:a.b.c.d); an IPv6 CIDR within ::ffff:0:0/96 is that IPv4 CIDR;
//   any other IPv6 CIDR matches IPv6 addresses only, so "::/0" is "all of
//   IPv6" and does not swallow IPv4 that no IPv4 class claims.
class TrafficClasses {
public:
    // One option value, "NAME=CIDR[,CIDR...]" (blanks around items allowed).
    // `where` starts messages: "--class", or the config layer's FILE:LINE: KEY.
    void add(std::string_view value, std::string_view where = "--class");

    // The class of a remote address: 16 bytes, network order, IPv4-mapped
    // for IPv4. O(log prefixes), no allocation.
    ClassId classify(const uint8_t addr[16]) const;

    bool empty() const { return names_.size() == 1; }
    // Indexed by ClassId: "other" first, then the classes in the order given.
    const std::vector<std::string>& names() const { return names_; }
    const std::string& name(ClassId id) const { return names_.at(id); }

private:
    struct Prefix {
        bool v4;
        unsigned __int128 lo; // host order; IPv4 in the low 32 bits
        uint8_t len;
        ClassId cls;
    };
    // Disjoint ranges: range i runs from starts[i] to starts[i + 1] - 1.
    template <typename K> struct Table {
        std::vector<K> starts;
        std::vector<ClassId> cls;
        ClassId find(K k) const;
    };
    void rebuild();

    std::vector<std::string> names_{std::string(kOtherClassName)};
    std::vector<Prefix> prefixes_;
    Table<uint32_t> v4_;
    Table<unsigned __int128> v6_;
};

} // namespace pdtt
