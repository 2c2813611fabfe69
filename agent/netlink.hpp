// Link events from rtnetlink on the agent's Asio loop: an interface that is
// deleted and comes back is re-attached without polling.
#pragma once

#include "fd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <string>
#include <vector>

namespace pdtt {

struct LinkEvent {
    bool removed = false; // RTM_DELLINK
    int ifindex = 0;
    std::string name;
};

class LinkMonitor {
public:
    using Handler = std::function<void(const LinkEvent&)>;
    // Throws Error when the netlink socket cannot be opened.
    LinkMonitor(boost::asio::io_context& io, Handler handler);
    void start();
    void stop();

private:
    void arm();
    void read_all();

    boost::asio::posix::stream_descriptor sock_;
    Handler handler_;
    std::vector<char> buf_;
};

// The VLAN device's parent ("eth0" for "eth0.100"), or "" when ifname is not
// a VLAN device. sysfs is a parameter so tests can hand in a fake tree.
std::string vlan_parent(const std::string& ifname, const std::string& sysfs = "/sys/class/net");

} // namespace pdtt
