// RAII helpers for root integration tests: throwaway network namespaces,
// veth pairs, test users and child processes, all removed again on every
// exit path (destructors) and, for leftovers of a crashed run, by
// cleanup_stale() at start-up.
//
// Naming, so that leftovers are recognisable and never someone else's:
//   namespaces  pdtt-t-<pid>-<n>
//   veth ends   pdt<pid hex>-<n hex>a / ...b   (IFNAMSIZ leaves 15 chars)
// <pid> is the test process; cleanup_stale() removes only names whose
// process is gone, so test binaries running side by side do not collide.
//
// Addresses: veth pair s gets 10.200.s.1/24 + fd00:200:s::1/64 on side a and
// .2 / ::2 on side b. They exist only inside the test's namespaces.
//
// Declare objects in dependency order (users, namespaces, veths, then
// processes): destructors run in reverse, so processes die first.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace pdtt::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- shell commands ----

// Exit status of a shell command (-1 when it could not run or was killed).
inline int run(const std::string &cmd)
{
	int st = std::system(cmd.c_str());
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

inline void run_ok(const std::string &cmd)
{
	if (int rc = run(cmd); rc != 0)
		throw std::runtime_error("command failed (exit " + std::to_string(rc) + "): " + cmd);
}

// stdout of a shell command; throws when it exits non-zero.
inline std::string capture(const std::string &cmd)
{
	std::string out;
	FILE *p = ::popen(cmd.c_str(), "r");
	if (!p)
		throw std::runtime_error("popen failed: " + cmd);
	std::array<char, 4096> buf;
	std::size_t n;
	while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
		out.append(buf.data(), n);
	int st = ::pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		throw std::runtime_error("command failed: " + cmd);
	return out;
}

// Polls pred until it holds or timeout passes; true when it held.
inline bool wait_until(const std::function<bool()> &pred, std::chrono::milliseconds timeout,
		       std::chrono::milliseconds step = 5ms)
{
	auto deadline = Clock::now() + timeout;
	for (;;) {
		if (pred())
			return true;
		if (Clock::now() >= deadline)
			return false;
		std::this_thread::sleep_for(step);
	}
}

namespace detail {

inline bool pid_alive(long pid)
{
	return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

inline int next_id()
{
	static std::atomic<int> n{0};
	return ++n;
}

} // namespace detail

// Removes namespaces and root-namespace veth ends left by test processes
// that no longer exist (a crashed or killed run). Call once at start-up.
inline void cleanup_stale()
{
	static const std::regex ns_re(R"(^pdtt-t-(\d+)-\d+$)");
	static const std::regex link_re(R"(^pdt([0-9a-f]+)-[0-9a-f]+[ab]$)");
	std::istringstream nss(capture("ip netns list 2>/dev/null || true"));
	for (std::string line; std::getline(nss, line);) {
		std::string name = line.substr(0, line.find(' '));
		std::smatch m;
		if (std::regex_match(name, m, ns_re) && !detail::pid_alive(std::stol(m[1])))
			run("ip netns del " + name + " 2>/dev/null");
	}
	std::istringstream ls(capture("ip -o link show 2>/dev/null || true"));
	for (std::string line; std::getline(ls, line);) {
		// "7: pdt1a2b-1a@if6: <...>"
		auto c1 = line.find(": ");
		if (c1 == std::string::npos)
			continue;
		std::string name = line.substr(c1 + 2);
		name = name.substr(0, name.find_first_of("@:"));
		std::smatch m;
		if (std::regex_match(name, m, link_re) &&
		    !detail::pid_alive(std::stol(m[1], nullptr, 16)))
			run("ip link del " + name + " 2>/dev/null");
	}
}

// ---- namespaces ----

// A named network namespace (ip netns add) with lo up; deleted on destruction.
class Netns {
public:
	Netns() : name_("pdtt-t-" + std::to_string(::getpid()) + "-" + std::to_string(detail::next_id()))
	{
		run_ok("ip netns add " + name_);
		try {
			run_ok("ip -n " + name_ + " link set lo up");
		} catch (...) {
			run("ip netns del " + name_);
			throw;
		}
	}
	~Netns() { run("ip netns del " + name_ + " 2>/dev/null"); }
	Netns(const Netns &) = delete;
	Netns &operator=(const Netns &) = delete;

	const std::string &name() const { return name_; }
	std::string path() const { return "/run/netns/" + name_; }
	// The namespace's inode number: what the kernel calls its ns.inum.
	unsigned long inode() const
	{
		struct stat st{};
		if (::stat(path().c_str(), &st) != 0)
			throw std::runtime_error("stat " + path() + ": " + std::strerror(errno));
		return st.st_ino;
	}
	// Prefix that runs a shell command inside the namespace.
	std::string exec(const std::string &cmd) const { return "ip netns exec " + name_ + " " + cmd; }

private:
	std::string name_;
};

// Moves the calling thread into a namespace; moves it back on destruction.
class EnterNetns {
public:
	explicit EnterNetns(const Netns &ns) : EnterNetns(ns.path()) {}
	explicit EnterNetns(const std::string &path)
	{
		orig_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
		if (orig_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
			std::string err = std::strerror(errno);
			if (fd >= 0)
				::close(fd);
			if (orig_ >= 0)
				::close(orig_);
			throw std::runtime_error("cannot enter netns " + path + ": " + err);
		}
		::close(fd);
	}
	~EnterNetns()
	{
		if (::setns(orig_, CLONE_NEWNET) != 0)
			std::fprintf(stderr, "netns.hpp: cannot return to the original netns: %s\n",
				     std::strerror(errno));
		::close(orig_);
	}
	EnterNetns(const EnterNetns &) = delete;
	EnterNetns &operator=(const EnterNetns &) = delete;

private:
	int orig_ = -1;
};

// Interface index of dev inside ns (nullptr: the current namespace).
inline int ifindex_of(const Netns *ns, const std::string &dev)
{
	std::string out = capture(std::string("ip ") + (ns ? "-n " + ns->name() + " " : "") +
				  "-o link show dev " + dev);
	return std::stoi(out);
}

// A veth pair between two namespaces (nullptr: the test's own namespace),
// addressed from test range s (1..254), IPv6 without DAD so it is usable
// at once. Deleting one end deletes both; deleting a namespace deletes the
// end inside it, so a crash leaves nothing behind in other namespaces.
class VethPair {
public:
	VethPair(const Netns *a, const Netns *b, int subnet)
		: a_(a), b_(b), subnet_(subnet)
	{
		if (subnet < 1 || subnet > 254)
			throw std::invalid_argument("VethPair subnet must be 1..254");
		char na[16], nb[16];
		int id = detail::next_id();
		std::snprintf(na, sizeof(na), "pdt%x-%xa", static_cast<unsigned>(::getpid()), id);
		std::snprintf(nb, sizeof(nb), "pdt%x-%xb", static_cast<unsigned>(::getpid()), id);
		name_a_ = na;
		name_b_ = nb;
		run_ok("ip link add " + name_a_ + netns_arg(a_) + " type veth peer name " + name_b_ +
		       netns_arg(b_));
		try {
			setup(a_, name_a_, 1);
			setup(b_, name_b_, 2);
		} catch (...) {
			run(ip(a_) + "link del " + name_a_ + " 2>/dev/null");
			throw;
		}
	}
	~VethPair() { run(ip(a_) + "link del " + name_a_ + " 2>/dev/null"); }
	VethPair(const VethPair &) = delete;
	VethPair &operator=(const VethPair &) = delete;

	const std::string &a_name() const { return name_a_; }
	const std::string &b_name() const { return name_b_; }
	std::string a_ip4() const { return "10.200." + std::to_string(subnet_) + ".1"; }
	std::string b_ip4() const { return "10.200." + std::to_string(subnet_) + ".2"; }
	std::string a_ip6() const { return "fd00:200:" + std::to_string(subnet_) + "::1"; }
	std::string b_ip6() const { return "fd00:200:" + std::to_string(subnet_) + "::2"; }
	int a_ifindex() const { return ifindex_of(a_, name_a_); }
	int b_ifindex() const { return ifindex_of(b_, name_b_); }

private:
	static std::string netns_arg(const Netns *ns) { return ns ? " netns " + ns->name() : ""; }
	static std::string ip(const Netns *ns) { return ns ? "ip -n " + ns->name() + " " : "ip "; }
	void setup(const Netns *ns, const std::string &dev, int host)
	{
		std::string s = std::to_string(subnet_), h = std::to_string(host);
		run_ok(ip(ns) + "addr add 10.200." + s + "." + h + "/24 dev " + dev);
		run_ok(ip(ns) + "addr add fd00:200:" + s + "::" + h + "/64 dev " + dev + " nodad");
		run_ok(ip(ns) + "link set " + dev + " up");
	}

	const Netns *a_, *b_;
	int subnet_;
	std::string name_a_, name_b_;
};

// ---- users ----

// A system user for ownership tests (pdtt-test1, pdtt-test2, ...), created
// when missing. It is removed again when the last TestUser of that name in
// this process goes away, but only if it carries our marker comment, so a
// real account is never deleted; a user left behind by a crashed run
// carries the marker and is adopted and removed by the next run. Tests
// sharing these names must not run concurrently (CTest: RUN_SERIAL).
class TestUser {
public:
	static constexpr const char *kMarker = "pdtt test user";

	explicit TestUser(std::string name) : name_(std::move(name))
	{
		std::lock_guard lk(mu());
		if (refs()[name_]++ == 0 && !::getpwnam(name_.c_str()))
			// A group of that name may outlive a failed userdel: join it.
			run_ok("useradd --system --no-create-home --shell /usr/sbin/nologin "
			       "--comment '" + std::string(kMarker) + "' " +
			       (::getgrnam(name_.c_str()) ? "--gid " + name_ + " " : "") + name_ +
			       " >/dev/null");
		passwd *pw = ::getpwnam(name_.c_str());
		if (!pw) {
			refs()[name_]--;
			throw std::runtime_error("test user " + name_ + " does not exist");
		}
		uid_ = pw->pw_uid;
		gid_ = pw->pw_gid;
	}
	~TestUser()
	{
		std::lock_guard lk(mu());
		if (--refs()[name_] != 0)
			return;
		passwd *pw = ::getpwnam(name_.c_str());
		if (pw && pw->pw_gecos && std::string_view(pw->pw_gecos) == kMarker &&
		    run("userdel " + name_ + " 2>/dev/null") != 0)
			std::fprintf(stderr, "netns.hpp: cannot remove test user %s (still in use?)\n",
				     name_.c_str());
	}
	TestUser(const TestUser &) = delete;
	TestUser &operator=(const TestUser &) = delete;

	const std::string &name() const { return name_; }
	uid_t uid() const { return uid_; }
	gid_t gid() const { return gid_; }

private:
	static std::mutex &mu()
	{
		static std::mutex m;
		return m;
	}
	static std::map<std::string, int> &refs()
	{
		static std::map<std::string, int> r;
		return r;
	}

	std::string name_;
	uid_t uid_ = 0;
	gid_t gid_ = 0;
};

// ---- processes ----

// A child process (fork + exec of argv, optionally inside a namespace via
// `ip netns exec`), in its own process group, with stdout and stderr
// captured by a reader thread. It gets SIGKILL when the test process dies
// (PR_SET_PDEATHSIG), and the destructor kills and reaps it if still running.
class Process {
public:
	explicit Process(std::vector<std::string> argv, const std::string &netns = {})
	{
		if (!netns.empty())
			argv.insert(argv.begin(), {"ip", "netns", "exec", netns});
		if (argv.empty())
			throw std::invalid_argument("Process: empty argv");
		cmdline_ = argv[0];
		for (std::size_t i = 1; i < argv.size(); i++)
			cmdline_ += " " + argv[i];
		std::vector<char *> cargv;
		for (auto &a : argv)
			cargv.push_back(a.data());
		cargv.push_back(nullptr);

		int out[2] = {-1, -1}, err[2] = {-1, -1};
		auto close_all = [&] {
			for (int fd : {out[0], out[1], err[0], err[1], stop_[0], stop_[1]})
				if (fd >= 0)
					::close(fd);
		};
		if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
		    ::pipe2(stop_, O_CLOEXEC) != 0) {
			std::string e = std::strerror(errno);
			close_all();
			throw std::runtime_error("pipe: " + e);
		}
		pid_t parent = ::getpid();
		pid_ = ::fork();
		if (pid_ < 0) {
			std::string e = std::strerror(errno);
			close_all();
			throw std::runtime_error("fork: " + e);
		}
		if (pid_ == 0) {
			// Only async-signal-safe calls until exec.
			::setpgid(0, 0);
			::prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (::getppid() != parent)
				::_exit(127);
			::dup2(out[1], 1);
			::dup2(err[1], 2);
			::execvp(cargv[0], cargv.data());
			const char msg[] = "netns.hpp: exec failed\n";
			(void)!::write(2, msg, sizeof(msg) - 1);
			::_exit(127);
		}
		::setpgid(pid_, pid_);	// also here: no race with kill(-pid)
		::close(out[1]);
		::close(err[1]);
		reader_ = std::thread([this, o = out[0], e = err[0]] { read_loop(o, e); });
	}
	~Process()
	{
		if (!status_) {
			::kill(-pid_, SIGKILL);
			::kill(pid_, SIGKILL);
			int st;
			while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
			}
		}
		(void)!::write(stop_[1], "x", 1);
		reader_.join();
		::close(stop_[0]);
		::close(stop_[1]);
	}
	Process(const Process &) = delete;
	Process &operator=(const Process &) = delete;

	pid_t pid() const { return pid_; }
	const std::string &cmdline() const { return cmdline_; }

	// Sends sig to the child's process group.
	void signal(int sig) const
	{
		if (!status_)
			::kill(-pid_, sig);
	}

	// Exit status (128 + signal when killed), or nullopt on timeout.
	std::optional<int> wait(std::chrono::milliseconds timeout)
	{
		wait_until([this] { return poll_exit(); }, timeout, 2ms);
		return status_;
	}
	bool running() { return !poll_exit(); }

	// The first stdout line containing needle, waiting up to timeout.
	std::optional<std::string> wait_for_line(std::string_view needle,
						 std::chrono::milliseconds timeout)
	{
		std::unique_lock lk(mu_);
		std::optional<std::string> found;
		cv_.wait_for(lk, timeout, [&] {
			std::size_t start = 0;
			for (std::size_t nl; (nl = out_.find('\n', start)) != std::string::npos;
			     start = nl + 1) {
				std::string_view line(out_.data() + start, nl - start);
				if (line.find(needle) != std::string_view::npos) {
					found = std::string(line);
					return true;
				}
			}
			return out_eof_;
		});
		return found;
	}

	std::string out() const
	{
		std::lock_guard lk(mu_);
		return out_;
	}
	std::string err() const
	{
		std::lock_guard lk(mu_);
		return err_;
	}

private:
	bool poll_exit()
	{
		if (status_)
			return true;
		int st;
		pid_t r = ::waitpid(pid_, &st, WNOHANG);
		if (r == pid_)
			status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		return status_.has_value();
	}

	// Reads both pipes until EOF or stop (a grandchild may hold them open).
	void read_loop(int o, int e)
	{
		pollfd fds[3] = {{o, POLLIN, 0}, {e, POLLIN, 0}, {stop_[0], POLLIN, 0}};
		int open = 2;
		char buf[4096];
		while (open > 0 && ::poll(fds, 3, -1) >= 0 && !(fds[2].revents & POLLIN)) {
			for (int i = 0; i < 2; i++) {
				if (!fds[i].revents)
					continue;
				ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
				std::lock_guard lk(mu_);
				if (n > 0) {
					(i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
				} else {
					fds[i].fd = -1;
					open--;
					if (i == 0)
						out_eof_ = true;
				}
				cv_.notify_all();
			}
		}
		{
			std::lock_guard lk(mu_);
			out_eof_ = true;
		}
		cv_.notify_all();
		::close(o);
		::close(e);
	}

	pid_t pid_ = -1;
	std::string cmdline_;
	std::optional<int> status_;
	int stop_[2] = {-1, -1};
	std::thread reader_;
	mutable std::mutex mu_;
	std::condition_variable cv_;
	std::string out_, err_;
	bool out_eof_ = false;
};

} // namespace pdtt::test
