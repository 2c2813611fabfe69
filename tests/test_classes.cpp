// Traffic classes: --class parsing, its errors, and longest-prefix lookup
// over IPv4 (held IPv4-mapped) and IPv6 remote addresses.
#define BOOST_TEST_MODULE classes
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "classes.hpp"
#include "errors.hpp"

#include <arpa/inet.h>

#include <array>
#include <chrono>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

using namespace pdtt;

namespace {

using Addr = std::array<uint8_t, 16>;

// "10.0.0.1" -> ::ffff:10.0.0.1, "fd00::1" -> itself: as the agent stores them.
Addr addr(const char* s) {
    Addr a{};
    in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        a[10] = a[11] = 0xff;
        std::memcpy(a.data() + 12, &a4, 4);
    } else {
        BOOST_REQUIRE_MESSAGE(inet_pton(AF_INET6, s, a.data()) == 1, s);
    }
    return a;
}

std::string class_of(const TrafficClasses& c, const char* a) { return c.name(c.classify(addr(a).data())); }

TrafficClasses make(std::initializer_list<const char*> values) {
    TrafficClasses c;
    for (const char* v : values)
        c.add(v);
    return c;
}

} // namespace

BOOST_AUTO_TEST_CASE(no_classes_is_all_other) {
    TrafficClasses c;
    BOOST_TEST(c.empty());
    BOOST_TEST(c.names().size() == 1u);
    BOOST_TEST(class_of(c, "10.0.0.1") == "other");
    BOOST_TEST(class_of(c, "2001:db8::1") == "other");
    BOOST_TEST(c.classify(addr("10.0.0.1").data()) == kOtherClass);
}

BOOST_AUTO_TEST_CASE(spec_example_longest_prefix_wins) {
    TrafficClasses c = make({"wan=0.0.0.0/0,::/0", "storage=10.10.0.0/16"});
    BOOST_TEST(!c.empty());
    BOOST_TEST((c.names() == std::vector<std::string>{"other", "wan", "storage"}));
    BOOST_TEST(class_of(c, "10.10.3.4") == "storage");
    BOOST_TEST(class_of(c, "10.10.0.0") == "storage");
    BOOST_TEST(class_of(c, "10.10.255.255") == "storage");
    BOOST_TEST(class_of(c, "10.11.0.0") == "wan");
    BOOST_TEST(class_of(c, "10.9.255.255") == "wan");
    BOOST_TEST(class_of(c, "8.8.8.8") == "wan");
    BOOST_TEST(class_of(c, "0.0.0.0") == "wan");
    BOOST_TEST(class_of(c, "255.255.255.255") == "wan");
    BOOST_TEST(class_of(c, "2001:db8::1") == "wan");
    BOOST_TEST(class_of(c, "::") == "wan");
    BOOST_TEST(class_of(c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == "wan");
}

BOOST_AUTO_TEST_CASE(nested_and_adjacent_prefixes) {
    TrafficClasses c = make({"site=10.0.0.0/8", "lab=10.1.0.0/16,10.2.0.0/16", "gpu=10.1.2.0/24", "host=10.1.2.3",
                             "v6site=fd00::/8", "v6lab=fd00:1::/32", "v6host=fd00:1::5/128"});
    BOOST_TEST(class_of(c, "9.255.255.255") == "other");
    BOOST_TEST(class_of(c, "10.0.0.0") == "site");
    BOOST_TEST(class_of(c, "10.1.0.0") == "lab");
    BOOST_TEST(class_of(c, "10.1.2.2") == "gpu");
    BOOST_TEST(class_of(c, "10.1.2.3") == "host");
    BOOST_TEST(class_of(c, "10.1.2.4") == "gpu");
    BOOST_TEST(class_of(c, "10.1.3.0") == "lab");
    BOOST_TEST(class_of(c, "10.2.255.255") == "lab");
    BOOST_TEST(class_of(c, "10.3.0.0") == "site");
    BOOST_TEST(class_of(c, "10.255.255.255") == "site");
    BOOST_TEST(class_of(c, "11.0.0.0") == "other");
    BOOST_TEST(class_of(c, "fcff:ffff::1") == "other");
    BOOST_TEST(class_of(c, "fd00::1") == "v6site");
    BOOST_TEST(class_of(c, "fd00:1::4") == "v6lab");
    BOOST_TEST(class_of(c, "fd00:1::5") == "v6host");
    BOOST_TEST(class_of(c, "fd00:1::6") == "v6lab");
    BOOST_TEST(class_of(c, "fd00:2::") == "v6site");
    BOOST_TEST(class_of(c, "fe00::") == "other");
}

BOOST_AUTO_TEST_CASE(ipv4_and_ipv6_do_not_mix) {
    // ::/0 is all of IPv6: IPv4 (held as ::ffff:a.b.c.d) that no IPv4 class
    // claims stays "other", and an IPv4 /0 does not take IPv6.
    TrafficClasses c = make({"v6=::/0", "campus=192.0.2.0/24"});
    BOOST_TEST(class_of(c, "192.0.2.7") == "campus");
    BOOST_TEST(class_of(c, "198.51.100.1") == "other");
    BOOST_TEST(class_of(c, "2001:db8::1") == "v6");
    TrafficClasses d = make({"v4=0.0.0.0/0"});
    BOOST_TEST(class_of(d, "2001:db8::1") == "other");
    BOOST_TEST(class_of(d, "::1") == "other");
    BOOST_TEST(class_of(d, "1.2.3.4") == "v4");
}

BOOST_AUTO_TEST_CASE(mapped_ipv6_cidrs_are_ipv4) {
    TrafficClasses c = make({"nfs=::ffff:10.20.0.0/112", "all4=::ffff:0.0.0.0/96"});
    BOOST_TEST(class_of(c, "10.20.1.1") == "nfs");
    BOOST_TEST(class_of(c, "10.21.1.1") == "all4");
    BOOST_TEST(class_of(c, "2001:db8::1") == "other");
    // The same network written both ways is one CIDR.
    TrafficClasses d;
    d.add("a=10.20.0.0/16");
    BOOST_CHECK_THROW(d.add("b=::ffff:10.20.0.0/112"), Error);
}

BOOST_AUTO_TEST_CASE(blanks_and_bare_hosts) {
    TrafficClasses c = make({" dtn = 203.0.113.5 , 2001:db8::5 ,198.51.100.0/24"});
    BOOST_TEST(c.names().at(1) == "dtn");
    BOOST_TEST(class_of(c, "203.0.113.5") == "dtn");
    BOOST_TEST(class_of(c, "203.0.113.6") == "other");
    BOOST_TEST(class_of(c, "2001:db8::5") == "dtn");
    BOOST_TEST(class_of(c, "2001:db8::4") == "other");
    BOOST_TEST(class_of(c, "198.51.100.200") == "dtn");
}

namespace {

struct BadCase {
    const char* what;
    std::vector<std::string> before; // accepted first
    std::string value;
    std::string says; // part of the message
};

std::ostream& operator<<(std::ostream& o, const BadCase& c) { return o << c.what; }

const BadCase kBad[] = {
    {"no equals sign", {}, "wan", "NAME=CIDR"},
    {"empty name", {}, "=10.0.0.0/8", "class name"},
    {"name too long", {}, std::string(33, 'a') + "=10.0.0.0/8", "class name"},
    {"name with a dot", {}, "a.b=10.0.0.0/8", "class name"},
    {"name with a space inside", {}, "a b=10.0.0.0/8", "class name"},
    {"name with UTF-8", {}, "caf\xc3\xa9=10.0.0.0/8", "class name"},
    {"name with a quote", {}, "a\"=10.0.0.0/8", "class name"},
    {"other is reserved", {}, "other=10.0.0.0/8", "'other'"},
    {"Other is reserved too", {}, "Other=10.0.0.0/8", "'other'"},
    {"duplicate name", {"wan=0.0.0.0/0"}, "wan=::/0", "class 'wan' is already defined"},
    {"duplicate name in another case", {"wan=0.0.0.0/0"}, "WAN=::/0", "class 'wan' is already defined"},
    {"no CIDR", {}, "wan=", "no CIDR"},
    {"blank CIDR list", {}, "wan= ", "no CIDR"},
    {"empty item", {}, "wan=10.0.0.0/8,", "empty item"},
    {"empty item inside", {}, "wan=10.0.0.0/8,,::/0", "empty item"},
    {"IPv4 prefix too long", {}, "wan=10.0.0.0/33", "10.0.0.0/33: the prefix length must be 0 to 32"},
    {"IPv6 prefix too long", {}, "wan=fd00::/129", "fd00::/129: the prefix length must be 0 to 128"},
    {"negative prefix", {}, "wan=10.0.0.0/-1", "prefix length"},
    {"signed prefix", {}, "wan=10.0.0.0/+8", "prefix length"},
    {"empty prefix", {}, "wan=10.0.0.0/", "prefix length"},
    {"prefix with junk", {}, "wan=10.0.0.0/8x", "prefix length"},
    {"two slashes", {}, "wan=10.0.0.0/8/8", "prefix length"},
    {"host bits set", {}, "wan=10.0.0.1/8", "10.0.0.1/8 has host bits set: the network is 10.0.0.0/8"},
    {"IPv6 host bits set", {}, "wan=fd00::1/64", "the network is fd00::/64"},
    {"mapped host bits set", {}, "wan=::ffff:10.0.0.1/104", "the network is 10.0.0.0/8"},
    {"not an address", {}, "wan=example.org", "example.org is not an IPv4 or IPv6 address"},
    {"short IPv4", {}, "wan=10/8", "is not an IPv4 or IPv6 address"},
    {"IPv4 out of range", {}, "wan=10.0.0.256", "is not an IPv4 or IPv6 address"},
    {"zone id", {}, "wan=fe80::1%eth0", "is not an IPv4 or IPv6 address"},
    {"control byte", {}, std::string("wan=10.0.0.0/8\n"), "prefix length"},
    {"same CIDR in one class", {}, "wan=10.0.0.0/8,10.0.0.0/8", "10.0.0.0/8 is listed twice"},
    {"same CIDR in two classes", {"a=10.0.0.0/8"}, "b=10.0.0.0/8", "10.0.0.0/8 is already in class 'a'"},
    {"same IPv6 CIDR spelt otherwise", {"a=fd00:0::/16"}, "b=FD00::/16", "is already in class 'a'"},
};

} // namespace

BOOST_DATA_TEST_CASE(bad_values_are_usage_errors_naming_the_value, boost::unit_test::data::make(kBad), c) {
    TrafficClasses t;
    for (const std::string& v : c.before)
        t.add(v);
    size_t before = t.names().size();
    try {
        t.add(c.value, "FILE:3: class");
        BOOST_ERROR(c.what << ": accepted");
    } catch (const Error& e) {
        std::string msg = e.what();
        BOOST_TEST(e.exit_code() == kExitUsage, c.what);
        BOOST_TEST(msg.rfind("FILE:3: class '", 0) == 0, c.what << ": " << msg);
        if (c.value.find('\n') == std::string::npos)
            BOOST_TEST(msg.find("'" + c.value + "': ") != std::string::npos, c.what << ": " << msg);
        BOOST_TEST(msg.find(c.says) != std::string::npos, c.what << ": " << msg);
    }
    // A refused value leaves the classes as they were.
    BOOST_TEST(t.names().size() == before);
}

BOOST_AUTO_TEST_CASE(the_default_where_is_the_option) {
    TrafficClasses t;
    BOOST_CHECK_EXCEPTION(t.add("x=1.2.3.4/40"), Error, [](const Error& e) {
        return std::string(e.what()).rfind("--class 'x=1.2.3.4/40': ", 0) == 0;
    });
}

BOOST_AUTO_TEST_CASE(messages_stay_one_line) {
    TrafficClasses t;
    try {
        t.add("wan=10.0.0.0/8\n\x1b[2J");
        BOOST_ERROR("accepted");
    } catch (const Error& e) {
        std::string msg = e.what();
        BOOST_TEST(msg.find('\n') == std::string::npos);
        BOOST_TEST(msg.find('\x1b') == std::string::npos);
        BOOST_TEST(msg.find("10.0.0.0/8\\x0a\\x1b[2J") != std::string::npos, msg);
    }
}

BOOST_AUTO_TEST_CASE(class_count_is_bounded) {
    TrafficClasses t;
    for (size_t i = 0; i < kMaxClasses; ++i)
        t.add("c" + std::to_string(i) + "=10." + std::to_string(i) + ".0.0/16");
    BOOST_TEST(t.names().size() == kMaxClasses + 1);
    BOOST_CHECK_THROW(t.add("one_more=192.0.2.0/24"), Error);
    BOOST_TEST(t.name(ClassId(kMaxClasses)) == "c" + std::to_string(kMaxClasses - 1));
}

namespace {

// Random nested CIDRs, checked against a brute-force longest match.
struct Ref {
    bool v4;
    Addr net;
    unsigned len; // in the 128-bit space, IPv4 as 96 + len
    ClassId cls;
};

bool contains(const Ref& r, const Addr& a) {
    for (unsigned bit = 0; bit < r.len; ++bit) {
        unsigned byte = bit / 8, mask = 0x80u >> (bit % 8);
        if ((r.net[byte] & mask) != (a[byte] & mask))
            return false;
    }
    return true;
}

std::string text(const Ref& r) {
    char buf[INET6_ADDRSTRLEN];
    if (r.v4)
        inet_ntop(AF_INET, r.net.data() + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, r.net.data(), buf, sizeof(buf));
    return std::string(buf) + "/" + std::to_string(r.v4 ? r.len - 96 : r.len);
}

} // namespace

BOOST_AUTO_TEST_CASE(lookup_matches_a_brute_force_longest_prefix) {
    std::mt19937_64 rng(12);
    // Few distinct leading bytes, so prefixes nest and touch often.
    auto random_addr = [&](bool v4) {
        Addr a{};
        if (v4) {
            a[10] = a[11] = 0xff;
            a[12] = uint8_t(10 + rng() % 3);
            for (int i = 13; i < 16; ++i)
                a[i] = uint8_t(rng() % 4 == 0 ? rng() : rng() % 3);
        } else {
            a[0] = 0xfd;
            a[1] = uint8_t(rng() % 3);
            for (int i = 2; i < 16; ++i)
                a[i] = uint8_t(rng() % 4 == 0 ? rng() : rng() % 3);
        }
        return a;
    };
    std::vector<Ref> refs;
    TrafficClasses c;
    for (int k = 1; k <= 40; ++k) {
        std::string value = "c" + std::to_string(k) + "=";
        int added = 0;
        for (int n = 0; n < 12; ++n) {
            bool v4 = rng() % 2;
            Ref r{v4, random_addr(v4), unsigned(v4 ? 96 + 8 + rng() % 25 : 8 + rng() % 121), ClassId(k)};
            for (unsigned bit = r.len; bit < 128; ++bit)
                r.net[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
            bool dup = false;
            for (const Ref& q : refs)
                dup |= q.len == r.len && q.net == r.net;
            if (dup)
                continue;
            value += (added++ ? "," : "") + text(r);
            refs.push_back(r);
        }
        if (added)
            c.add(value);
    }
    int checked = 0;
    for (int i = 0; i < 100000; ++i) {
        Addr a = random_addr(rng() % 2);
        // Half the probes sit on a prefix's first or last address, or just outside.
        if (i % 2 && !refs.empty()) {
            const Ref& r = refs[rng() % refs.size()];
            a = r.net;
            if (rng() % 2)
                for (unsigned bit = r.len; bit < 128; ++bit)
                    a[bit / 8] |= uint8_t(0x80u >> (bit % 8));
            int carry = rng() % 3 - 1; // -1, 0, +1 on the last byte, wrapping
            a[15] = uint8_t(a[15] + carry);
        }
        const Ref* best = nullptr;
        for (const Ref& r : refs)
            if (contains(r, a) && (!best || r.len > best->len))
                best = &r;
        ClassId want = best ? best->cls : kOtherClass;
        ClassId got = c.classify(a.data());
        if (got != want) {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, a.data(), buf, sizeof(buf));
            BOOST_ERROR(buf << ": got " << c.name(got) << ", want " << c.name(want));
            break;
        }
        ++checked;
    }
    BOOST_TEST(checked == 100000);
    BOOST_TEST_MESSAGE(refs.size() << " prefixes in " << c.names().size() - 1 << " classes agree with brute force");
}

BOOST_AUTO_TEST_CASE(lookup_speed_for_information) {
    TrafficClasses c;
    for (int k = 0; k < 32; ++k) {
        std::string v = "c" + std::to_string(k) + "=";
        for (int n = 0; n < 32; ++n)
            v += (n ? "," : "") + std::to_string(k + 1) + "." + std::to_string(n * 8) + ".0.0/13";
        c.add(v);
    }
    c.add("v6=2001:db8::/32,fd00::/8");
    std::mt19937 rng(7);
    std::vector<Addr> probes(4096);
    for (size_t i = 0; i < probes.size(); ++i) {
        Addr& a = probes[i];
        if (i % 4 == 0) {
            for (auto& b : a)
                b = uint8_t(rng());
        } else {
            a[10] = a[11] = 0xff;
            uint32_t v = rng();
            std::memcpy(a.data() + 12, &v, 4);
        }
    }
    unsigned sum = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000000; ++i)
        sum += c.classify(probes[size_t(i) & 4095].data());
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST_MESSAGE("1M lookups over 1026 prefixes: " << ns / 1000000 << " ms, " << double(ns) / 1e6
                                                         << " ns each (checksum " << sum << ")");
    BOOST_TEST(sum > 0u);
}
