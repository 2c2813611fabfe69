// The lab with a real OpenSSH server in the agent's namespace: Debian's
// sshd with a config, host key and authorized key of its own in the lab
// directory, listening on the host's veth addresses, and a client key for
// root in the peer namespace. alice gets a real shell so that she can log
// in; rsync and scp then run as her on the host, behind root's sshd.
#pragma once

#include "agent_lab.hpp"

#include <sys/stat.h>

#include <fstream>

namespace pdtt::test {

inline constexpr const char* kSshPort = "2222";

struct SshLab : Lab {
    fs::path ssh_dir = dir / "ssh"; // keys, config, pid file
    fs::path home = dir / "home";   // alice's files, hers to write
    fs::path client_key = ssh_dir / "client_ed25519";
    std::unique_ptr<Process> sshd;

    SshLab() {
        // sshd reads the authorized keys as alice: she must reach them.
        fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        fs::create_directories(ssh_dir);
        fs::create_directories(home);
        BOOST_REQUIRE(::chown(home.c_str(), alice.uid(), alice.gid()) == 0);
        // A password of '!' (locked) would be refused; no home is a warning on every login.
        run_ok("usermod -s /bin/sh -p '*' -d " + home.string() + " " + alice.name());
        fs::create_directories("/run/sshd"); // privilege separation directory
        run_ok("ssh-keygen -q -t ed25519 -N '' -C pdtt-test-host -f " + (ssh_dir / "host_ed25519").string());
        run_ok("ssh-keygen -q -t ed25519 -N '' -C pdtt-test-client -f " + client_key.string());
        fs::copy_file(client_key.string() + ".pub", ssh_dir / "authorized_keys");
        std::ofstream(ssh_dir / "sshd_config")
            << "Port " << kSshPort << "\n"
            << "ListenAddress " << link.a_ip4() << "\n"
            << "ListenAddress " << link.a_ip6() << "\n"
            << "HostKey " << (ssh_dir / "host_ed25519").string() << "\n"
            << "PidFile " << pid_file().string() << "\n"
            << "AuthorizedKeysFile " << (ssh_dir / "authorized_keys").string() << "\n"
            << "AllowUsers " << alice.name() << "\n"
            << "UsePAM no\n"
            << "StrictModes no\n"
            << "PasswordAuthentication no\n"
            << "KbdInteractiveAuthentication no\n"
            << "PermitRootLogin no\n"
            << "UseDNS no\n"
            << "PrintMotd no\n"
            << "PrintLastLog no\n"
            << "Subsystem sftp internal-sftp\n";
        run_ok("/usr/sbin/sshd -t -f " + (ssh_dir / "sshd_config").string());
        sshd = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", (ssh_dir / "sshd_config").string()},
            host.name());
        auto listening = [&] {
            std::string e = sshd->err();
            return (e.find("listening on " + link.a_ip4()) != std::string::npos &&
                    e.find("listening on " + link.a_ip6()) != std::string::npos) ||
                   !sshd->running();
        };
        BOOST_REQUIRE_MESSAGE(wait_until(listening, 10s) && sshd->running(), "sshd did not start: " << sshd->err());
    }

    ~SshLab() {
        // By its pid file, then whatever of its process group is left; a
        // session of alice's ends with its connection, but is waited for so
        // that her account can be removed.
        std::ifstream pf(pid_file());
        if (long pid = 0; pf >> pid && pid > 1)
            ::kill(static_cast<pid_t>(pid), SIGTERM);
        if (sshd)
            sshd->wait(2s);
        sshd.reset();
        if (!wait_until([&] { return pids_of(alice.uid()).empty(); }, 3s))
            for (pid_t p : pids_of(alice.uid()))
                ::kill(p, SIGKILL);
    }

    fs::path pid_file() const { return ssh_dir / "sshd.pid"; }

    // Processes whose real uid is uid.
    static std::vector<pid_t> pids_of(uid_t uid) {
        std::vector<pid_t> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator("/proc", ec)) {
            std::string name = e.path().filename();
            if (name.find_first_not_of("0123456789") != std::string::npos)
                continue;
            std::ifstream st(e.path() / "status");
            for (std::string line; std::getline(st, line);)
                if (line.rfind("Uid:", 0) == 0) {
                    if (std::stoul(line.substr(4)) == uid)
                        out.push_back(static_cast<pid_t>(std::stol(name)));
                    break;
                }
        }
        return out;
    }

    // Who moves bytes on an ssh connection in turn: root's sshd (banners),
    // OpenSSH's privilege separation user while it authenticates, alice.
    std::vector<int64_t> owners_of_a_login() const {
        std::vector<int64_t> uids{0};
        if (passwd* pw = ::getpwnam("sshd"))
            uids.push_back(pw->pw_uid);
        uids.push_back(alice.uid());
        return uids;
    }

    // "alice@10.200.7.1" or "alice@[fd00:200:7::1]", as rsync and scp take it.
    std::string login(bool v6) const { return alice.name() + "@" + (v6 ? "[" + link.a_ip6() + "]" : link.a_ip4()); }

    std::vector<std::string> ssh_options() const {
        return {"-i", client_key.string(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes",     "-o", "LogLevel=ERROR",           "-o", "ConnectTimeout=10"};
    }

    // rsync (over ssh) or scp from the peer namespace as root; true when it
    // exited 0 within the timeout. from/to are local paths or login():path.
    void copy(const std::string& tool, const std::string& from, const std::string& to) {
        std::vector<std::string> argv{tool};
        if (tool == "rsync") {
            std::string e = "ssh -p " + std::string(kSshPort);
            for (const auto& o : ssh_options())
                e += " " + o;
            argv.insert(argv.end(), {"--whole-file", "-e", e});
        } else {
            argv.insert(argv.end(), {"-q", "-P", kSshPort});
            auto o = ssh_options();
            argv.insert(argv.end(), o.begin(), o.end());
        }
        argv.insert(argv.end(), {from, to});
        Process p(argv, peer.name());
        auto st = p.wait(60s);
        BOOST_REQUIRE_MESSAGE(st && *st == 0, p.cmdline() << ": " << (st ? "exit " + std::to_string(*st) : "timed out")
                                                          << "; " << p.err() << "; sshd: " << sshd->err());
    }
};

// A file of n random bytes.
inline void random_file(const fs::path& p, uint64_t n) {
    run_ok("head -c " + std::to_string(n) + " /dev/urandom > " + p.string());
}

} // namespace pdtt::test
