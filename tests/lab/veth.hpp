// veth pairs between test namespaces, named pdt<pid hex>-<n hex>a / ...b
// (see cleanup.hpp).
//
// Addresses: veth pair s gets 10.200.s.1/24 + fd00:200:s::1/64 on side a and
// .2 / ::2 on side b. They exist only inside the test's namespaces.
#pragma once

#include "netns.hpp"
#include "shell.hpp"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace pdtt::test {

// Interface index of dev inside ns (nullptr: the current namespace).
inline int ifindex_of(const Netns* ns, const std::string& dev) {
    std::string out = capture(std::string("ip ") + (ns ? "-n " + ns->name() + " " : "") + "-o link show dev " + dev);
    return std::stoi(out);
}

// A veth pair between two namespaces (nullptr: the test's own namespace),
// addressed from test range s (1..254), IPv6 without DAD so it is usable
// at once. Deleting one end deletes both; deleting a namespace deletes the
// end inside it, so a crash leaves nothing behind in other namespaces.
class VethPair {
public:
    VethPair(const Netns* a, const Netns* b, int subnet) : a_(a), b_(b), subnet_(subnet) {
        if (subnet < 1 || subnet > 254)
            throw std::invalid_argument("VethPair subnet must be 1..254");
        char na[16], nb[16];
        int id = detail::next_id();
        std::snprintf(na, sizeof(na), "pdt%x-%xa", static_cast<unsigned>(::getpid()), id);
        std::snprintf(nb, sizeof(nb), "pdt%x-%xb", static_cast<unsigned>(::getpid()), id);
        name_a_ = na;
        name_b_ = nb;
        run_ok("ip link add " + name_a_ + netns_arg(a_) + " type veth peer name " + name_b_ + netns_arg(b_));
        try {
            setup(a_, name_a_, 1);
            setup(b_, name_b_, 2);
        } catch (...) {
            run(ip(a_) + "link del " + name_a_ + " 2>/dev/null");
            throw;
        }
    }
    ~VethPair() { run(ip(a_) + "link del " + name_a_ + " 2>/dev/null"); }
    VethPair(const VethPair&) = delete;
    VethPair& operator=(const VethPair&) = delete;

    const std::string& a_name() const { return name_a_; }
    const std::string& b_name() const { return name_b_; }
    std::string a_ip4() const { return "10.200." + std::to_string(subnet_) + ".1"; }
    std::string b_ip4() const { return "10.200." + std::to_string(subnet_) + ".2"; }
    std::string a_ip6() const { return "fd00:200:" + std::to_string(subnet_) + "::1"; }
    std::string b_ip6() const { return "fd00:200:" + std::to_string(subnet_) + "::2"; }
    int a_ifindex() const { return ifindex_of(a_, name_a_); }
    int b_ifindex() const { return ifindex_of(b_, name_b_); }

private:
    static std::string netns_arg(const Netns* ns) { return ns ? " netns " + ns->name() : ""; }
    static std::string ip(const Netns* ns) { return ns ? "ip -n " + ns->name() + " " : "ip "; }
    void setup(const Netns* ns, const std::string& dev, int host) {
        std::string s = std::to_string(subnet_), h = std::to_string(host);
        run_ok(ip(ns) + "addr add 10.200." + s + "." + h + "/24 dev " + dev);
        run_ok(ip(ns) + "addr add fd00:200:" + s + "::" + h + "/64 dev " + dev + " nodad");
        run_ok(ip(ns) + "link set " + dev + " up");
    }

    const Netns *a_, *b_;
    int subnet_;
    std::string name_a_, name_b_;
};

} // namespace pdtt::test
