#include "netlink.hpp"

#include "errors.hpp"
#include "log.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace pdtt {

LinkMonitor::LinkMonitor(boost::asio::io_context& io, Handler handler) :
    sock_(io), handler_(std::move(handler)), buf_(1 << 16) {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!fd)
        throw Error(kExitRuntime, std::string("netlink socket: ") + std::strerror(errno));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        throw Error(kExitRuntime, std::string("netlink bind: ") + std::strerror(errno));
    sock_.assign(fd.release());
}

void LinkMonitor::start() { arm(); }

void LinkMonitor::stop() {
    boost::system::error_code ec;
    sock_.cancel(ec);
}

void LinkMonitor::arm() {
    sock_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec)
            return;
        read_all();
        arm();
    });
}

void LinkMonitor::read_all() {
    for (;;) {
        ssize_t n = ::recv(sock_.native_handle(), buf_.data(), buf_.size(), 0);
        if (n < 0) {
            if (errno == ENOBUFS) // we fell behind; the next event still tells the truth
                log::warn("netlink: link events were lost");
            return;
        }
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.data()); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
                continue;
            auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
            LinkEvent ev;
            ev.removed = h->nlmsg_type == RTM_DELLINK;
            ev.ifindex = ifi->ifi_index;
            int len = static_cast<int>(IFLA_PAYLOAD(h));
            for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
                if (a->rta_type == IFLA_IFNAME)
                    ev.name.assign(static_cast<const char*>(RTA_DATA(a)),
                                   strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
            handler_(ev);
        }
    }
}

std::string vlan_parent(const std::string& ifname, const std::string& sysfs) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(sysfs) / ifname;
    std::ifstream uevent(dir / "uevent");
    bool vlan = false;
    for (std::string line; std::getline(uevent, line);)
        vlan |= line == "DEVTYPE=vlan";
    if (!vlan)
        return {};
    // A VLAN device's iflink is its parent's ifindex.
    std::string iflink;
    if (!std::getline(std::ifstream(dir / "iflink"), iflink))
        return {};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(sysfs, ec)) {
        std::string idx;
        if (std::getline(std::ifstream(e.path() / "ifindex"), idx) && idx == iflink)
            return e.path().filename().string();
    }
    return {};
}

} // namespace pdtt
