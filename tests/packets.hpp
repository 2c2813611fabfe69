// Synthetic Ethernet frames for the data-path tests.
//
// Layers are appended outside in; build() fills in the IP and UDP lengths,
// then applies the field overrides and the cut or padding, so a malformed
// frame differs from a good one in exactly the field a case names.
// No checksums: neither program looks at them.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pkt {

using Bytes = std::vector<std::uint8_t>;
using Addr = std::array<std::uint8_t, 16>; // network order, IPv4 as ::ffff:a.b.c.d

inline constexpr std::size_t kEth = 14;
inline constexpr std::size_t kVlan = 4;
inline constexpr std::size_t kIp4 = 20;
inline constexpr std::size_t kIp6 = 40;
inline constexpr std::size_t kTcp = 20;
inline constexpr std::size_t kUdp = 8;
inline constexpr std::uint16_t kMoreFragments = 0x2000;

inline Addr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return Addr{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

inline Addr v6(const char* text) {
    Addr a{};
    if (inet_pton(AF_INET6, text, a.data()) != 1)
        throw std::invalid_argument(std::string("bad IPv6 address: ") + text);
    return a;
}

class Frame {
public:
    // Default addresses and ports for ipv4()/ipv6()/tcp()/udp().
    Frame(const Addr& src, const Addr& dst, std::uint16_t sport, std::uint16_t dport) :
        src_(src), dst_(dst), sport_(sport), dport_(dport) {}

    // types[0] is the Ethernet type; every further type follows a VLAN tag.
    Frame& eth(std::initializer_list<std::uint16_t> types) {
        static const std::uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
        b_.insert(b_.end(), macs, macs + sizeof(macs));
        bool first = true;
        for (auto t : types) {
            if (!first)
                put16(0x0064); // TCI: VLAN 100
            put16(t);
            first = false;
        }
        return *this;
    }

    Frame& ipv4(std::uint8_t proto, const Bytes& options = {}, std::uint16_t frag_off = 0) {
        ip4_ = b_.size();
        put8(0x40 | static_cast<std::uint8_t>((20 + options.size()) / 4));
        put8(0);
        put16(0); // tot_len: build()
        put16(0x1234);
        put16(frag_off);
        put8(64);
        put8(proto);
        put16(0);
        b_.insert(b_.end(), src_.begin() + 12, src_.end());
        b_.insert(b_.end(), dst_.begin() + 12, dst_.end());
        b_.insert(b_.end(), options.begin(), options.end());
        return *this;
    }

    Frame& ipv6(std::uint8_t nexthdr) {
        ip6_ = b_.size();
        put16(0x6000);
        put16(0);
        put16(0); // payload_len: build()
        put8(nexthdr);
        put8(64);
        b_.insert(b_.end(), src_.begin(), src_.end());
        b_.insert(b_.end(), dst_.begin(), dst_.end());
        return *this;
    }

    // Hop-by-hop, routing or destination options: (len8 + 1) * 8 bytes.
    Frame& ext6(std::uint8_t next, std::uint8_t len8) {
        put8(next);
        put8(len8);
        b_.insert(b_.end(), (len8 + 1) * 8 - 2, 0);
        return *this;
    }

    // Authentication header: (len4 + 2) * 4 bytes.
    Frame& ah6(std::uint8_t next, std::uint8_t len4) {
        put8(next);
        put8(len4);
        b_.insert(b_.end(), (len4 + 2) * 4 - 2, 0);
        return *this;
    }

    Frame& frag6(std::uint8_t next, std::uint16_t offset8, bool more) {
        put8(next);
        put8(0);
        put16(static_cast<std::uint16_t>(offset8 << 3 | (more ? 1 : 0)));
        put16(0xbeef);
        put16(0x0001);
        return *this;
    }

    Frame& tcp(const Bytes& options = {}) {
        tcp_ = b_.size();
        put16(sport_);
        put16(dport_);
        put16(0x0102); // seq
        put16(0x0304);
        put16(0); // ack
        put16(0);
        put8(static_cast<std::uint8_t>((20 + options.size()) / 4 << 4));
        put8(0x18); // PSH|ACK
        put16(65535);
        put16(0);
        put16(0);
        b_.insert(b_.end(), options.begin(), options.end());
        return *this;
    }

    Frame& udp() {
        udp_ = b_.size();
        put16(sport_);
        put16(dport_);
        put16(0); // len: build()
        put16(0);
        return *this;
    }

    Frame& icmp_echo(std::uint8_t type = 8) // ICMPv6 echo request is 128
    {
        b_.insert(b_.end(), {type, 0, 0, 0, 0, 1, 0, 1});
        return *this;
    }

    Frame& payload(std::size_t n) {
        for (std::size_t i = 0; i < n; i++)
            b_.push_back(static_cast<std::uint8_t>('a' + i % 26));
        return *this;
    }

    Frame& raw(const Bytes& bytes) {
        b_.insert(b_.end(), bytes.begin(), bytes.end());
        return *this;
    }

    // Overrides of what build() would write.
    Frame& ihl(std::uint8_t words) {
        ihl_ = words;
        return *this;
    }
    Frame& tot_len(std::uint16_t v) {
        tot_len_ = v;
        return *this;
    }
    Frame& payload_len(std::uint16_t v) {
        payload_len_ = v;
        return *this;
    }
    Frame& doff(std::uint8_t words) {
        doff_ = words;
        return *this;
    }
    Frame& version(std::uint8_t v) {
        version_ = v;
        return *this;
    }

    Frame& cut(std::size_t n) {
        cut_ = n;
        return *this;
    } // keep the first n bytes
    Frame& pad_to(std::size_t n) {
        pad_ = n;
        return *this;
    } // Ethernet minimum-size padding

    Bytes build() const {
        Bytes b = b_;
        if (ip4_) {
            set16(b, *ip4_ + 2, tot_len_.value_or(static_cast<std::uint16_t>(b.size() - *ip4_)));
            if (ihl_)
                b[*ip4_] = static_cast<std::uint8_t>((b[*ip4_] & 0xf0) | *ihl_);
            if (version_)
                b[*ip4_] = static_cast<std::uint8_t>((b[*ip4_] & 0x0f) | *version_ << 4);
        }
        if (ip6_) {
            std::size_t plen = b.size() - *ip6_ - kIp6;
            set16(b, *ip6_ + 4, payload_len_.value_or(static_cast<std::uint16_t>(plen)));
            if (version_)
                b[*ip6_] = static_cast<std::uint8_t>((b[*ip6_] & 0x0f) | *version_ << 4);
        }
        if (udp_)
            set16(b, *udp_ + 4, static_cast<std::uint16_t>(b.size() - *udp_));
        if (tcp_ && doff_)
            b[*tcp_ + 12] = static_cast<std::uint8_t>(*doff_ << 4);
        if (cut_ && *cut_ < b.size())
            b.resize(*cut_);
        if (pad_ && *pad_ > b.size())
            b.resize(*pad_, 0);
        return b;
    }

private:
    void put8(std::uint8_t v) { b_.push_back(v); }
    void put16(std::uint16_t v) {
        b_.push_back(static_cast<std::uint8_t>(v >> 8));
        b_.push_back(static_cast<std::uint8_t>(v));
    }
    static void set16(Bytes& b, std::size_t off, std::uint16_t v) {
        b.at(off) = static_cast<std::uint8_t>(v >> 8);
        b.at(off + 1) = static_cast<std::uint8_t>(v);
    }

    Bytes b_;
    Addr src_, dst_;
    std::uint16_t sport_, dport_;
    std::optional<std::size_t> ip4_, ip6_, tcp_, udp_;
    std::optional<std::uint8_t> ihl_, doff_, version_;
    std::optional<std::uint16_t> tot_len_, payload_len_;
    std::optional<std::size_t> cut_, pad_;
};

} // namespace pkt
