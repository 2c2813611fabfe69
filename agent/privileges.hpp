// Least privilege once the kernel side is attached: the
// agent keeps only the capabilities it still uses, and no_new_privs.
#pragma once

#include <string>

namespace pdtt {

struct PrivilegeNeeds {
    // The cgroup resolver opens cgroups by file handle (cgroups.hpp).
    bool file_handles = false;
};

// Drops every other capability from the effective, permitted, inheritable,
// ambient and bounding sets and sets no_new_privs. Returns the names of the
// capabilities kept, for the log. A kernel that refuses is a warning, not
// an error: the agent still counts, with more privilege than it needs.
std::string drop_privileges(const PrivilegeNeeds& needs);

} // namespace pdtt
