// pdtt-tunpipe: a point-to-point link of two tun devices (IFF_TUN, no
// packet info) in two network namespaces, packets copied between their fds.
// For the tests of layer-3 devices (no link header), which veth cannot be.
//
//   pdtt-tunpipe NETNS_A DEV_A NETNS_B DEV_B
//
// NETNS_* are names under /run/netns. Prints "ready" once both devices
// exist; runs until killed. The devices go with it (they are not persistent).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "pdtt-tunpipe: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// A tun device named dev in the namespace netns; the calling thread stays there.
int open_tun(const std::string& netns, const std::string& dev) {
    int ns = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0)
        die("setns " + netns);
    ::close(ns);
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("/dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    dev.copy(ifr.ifr_name, IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0)
        die("TUNSETIFF " + dev);
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: pdtt-tunpipe NETNS_A DEV_A NETNS_B DEV_B\n");
        return 2;
    }
    int fds[2] = {open_tun(argv[1], argv[2]), open_tun(argv[3], argv[4])};
    std::printf("ready\n");
    std::fflush(stdout);
    static char buf[65536];
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    for (;;) {
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            ssize_t n = ::read(fds[i], buf, sizeof(buf));
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("read");
            // A full queue on the other side drops the packet, as a wire would.
            if (n > 0 && ::write(fds[1 - i], buf, static_cast<size_t>(n)) < 0 && errno != ENOBUFS && errno != EAGAIN &&
                errno != EIO)
                die("write");
        }
    }
}
