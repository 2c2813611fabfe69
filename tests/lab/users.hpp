// Test users that exist for as long as a test needs them.
#pragma once

#include "shell.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace pdtt::test {

// A system user for ownership tests (pdtt-test1, pdtt-test2, ...), created
// when missing. It is removed again when the last TestUser of that name in
// this process goes away, but only if it carries our marker comment, so a
// real account is never deleted; a user left behind by a crashed run
// carries the marker and is adopted and removed by the next run. Tests
// sharing these names must not run concurrently (CTest: RUN_SERIAL).
class TestUser {
public:
    static constexpr const char* kMarker = "pdtt test user";

    explicit TestUser(std::string name) : name_(std::move(name)) {
        std::lock_guard lk(mu());
        if (refs()[name_]++ == 0 && !::getpwnam(name_.c_str()))
            // A group of that name may outlive a failed userdel: join it.
            run_ok("useradd --system --no-create-home --shell /usr/sbin/nologin "
                   "--comment '" +
                   std::string(kMarker) + "' " + (::getgrnam(name_.c_str()) ? "--gid " + name_ + " " : "") + name_ +
                   " >/dev/null");
        passwd* pw = ::getpwnam(name_.c_str());
        if (!pw) {
            refs()[name_]--;
            throw std::runtime_error("test user " + name_ + " does not exist");
        }
        uid_ = pw->pw_uid;
        gid_ = pw->pw_gid;
    }
    ~TestUser() {
        std::lock_guard lk(mu());
        if (--refs()[name_] != 0)
            return;
        passwd* pw = ::getpwnam(name_.c_str());
        if (pw && pw->pw_gecos && std::string_view(pw->pw_gecos) == kMarker &&
            run("userdel " + name_ + " 2>/dev/null") != 0)
            std::fprintf(stderr, "lab/users.hpp: cannot remove test user %s (still in use?)\n", name_.c_str());
    }
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;

    const std::string& name() const { return name_; }
    uid_t uid() const { return uid_; }
    gid_t gid() const { return gid_; }

private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::map<std::string, int>& refs() {
        static std::map<std::string, int> r;
        return r;
    }

    std::string name_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
};

} // namespace pdtt::test
