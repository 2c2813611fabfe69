#include "privileges.hpp"

#include "log.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace pdtt {

namespace {

// What is kept, and why: each is used after start-up, when an interface
// comes back (Agent::on_link) or a report is written.
// - CAP_NET_ADMIN: attaching XDP and tc/TCX programs to a device.
// - CAP_BPF: bpf() for the new links, and map reads and updates.
// - CAP_PERFMON: with CAP_BPF, what the kernel asks of programs that read
//   kernel memory, as ours do. Whether a re-attach alone needs it is not
//   tested: kept rather than risk a returning NIC left uncounted.
// - CAP_SYS_ADMIN: only on a kernel without CAP_BPF (before 5.8), where it
//   stands for CAP_BPF and CAP_PERFMON.
// - CAP_DAC_READ_SEARCH: only when the cgroup resolver uses file handles
//   (open_by_handle_at() demands it).
// - CAP_CHOWN: only when the agent is not in group adm, to give new log
//   files group adm (docs/operations.md); the shipped unit has SupplementaryGroups=adm.
struct Kept {
    int cap;
    const char* name;
};

int last_cap() {
    int last = CAP_LAST_CAP;
    std::ifstream("/proc/sys/kernel/cap_last_cap") >> last;
    return std::clamp(last, 0, 63);
}

bool in_group(gid_t gid) {
    if (getegid() == gid)
        return true;
    std::vector<gid_t> groups(static_cast<size_t>(std::max(getgroups(0, nullptr), 0)));
    int n = getgroups(static_cast<int>(groups.size()), groups.data());
    return n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

bool adm_needs_chown() {
    struct group gr {};
    struct group* found = nullptr;
    std::string buf(16384, '\0');
    return getgrnam_r("adm", &gr, buf.data(), buf.size(), &found) == 0 && found && !in_group(found->gr_gid);
}

} // namespace

std::string drop_privileges(const PrivilegeNeeds& needs) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0) {
        log::warn(std::string("capget: ") + std::strerror(errno) + "; capabilities not dropped");
        return {};
    }
    auto has = [&](int cap) { return (data[cap / 32].permitted >> (cap % 32)) & 1u; };

    std::vector<Kept> want{{CAP_NET_ADMIN, "cap_net_admin"}, {CAP_BPF, "cap_bpf"}, {CAP_PERFMON, "cap_perfmon"}};
    if (!has(CAP_BPF))
        want.push_back({CAP_SYS_ADMIN, "cap_sys_admin"});
    if (needs.file_handles)
        want.push_back({CAP_DAC_READ_SEARCH, "cap_dac_read_search"});
    if (adm_needs_chown())
        want.push_back({CAP_CHOWN, "cap_chown"});

    uint64_t keep = 0;
    std::string names;
    for (const Kept& k : want)
        if (has(k.cap)) {
            keep |= uint64_t{1} << k.cap;
            names += (names.empty() ? "" : ", ") + std::string(k.name);
        }

    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    for (int cap = 0; cap <= last_cap(); cap++)
        if (!((keep >> cap) & 1) && ::prctl(PR_CAPBSET_READ, cap) == 1 && ::prctl(PR_CAPBSET_DROP, cap) != 0) {
            log::debug("PR_CAPBSET_DROP " + std::to_string(cap) + ": " + std::strerror(errno));
            break; // no CAP_SETPCAP: the set below still limits what we hold
        }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

    __user_cap_data_struct next[2]{};
    for (int i = 0; i < 2; i++) {
        next[i].effective = next[i].permitted = static_cast<uint32_t>(keep >> (32 * i)) & data[i].permitted;
        next[i].inheritable = 0;
    }
    if (::syscall(SYS_capset, &hdr, next) != 0)
        log::warn(std::string("capset: ") + std::strerror(errno) + "; capabilities not dropped");
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        log::warn(std::string("no_new_privs: ") + std::strerror(errno));
    return names.empty() ? "none" : names;
}

} // namespace pdtt
