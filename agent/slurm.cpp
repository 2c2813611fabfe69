#include "slurm.hpp"

#include <cstdint>
#include <vector>

namespace pdtt {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Slurm prints ids with %u: decimal, no sign, no leading zero, 32 bits.
bool is_u32(std::string_view s) {
    if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + uint64_t(c - '0');
    }
    return v <= UINT32_MAX;
}

bool is_job_id(std::string_view s) { return is_u32(s) && s != "0"; }

// A step as Slurm names its cgroup: a number, a heterogeneous job's
// "STEP+COMPONENT", or one of the named steps.
bool is_step_id(std::string_view s) {
    if (s == "batch" || s == "extern" || s == "interactive")
        return true;
    size_t plus = s.find('+');
    if (plus == std::string_view::npos)
        return is_u32(s);
    return is_u32(s.substr(0, plus)) && is_u32(s.substr(plus + 1));
}

// "job_<ID>" -> "<ID>", or empty.
std::string_view job_of(std::string_view c) {
    if (!starts_with(c, "job_") || !is_job_id(c.substr(4)))
        return {};
    return c.substr(4);
}

bool is_v2_anchor(std::string_view c) {
    return c == "slurmstepd.scope" || (ends_with(c, "_slurmstepd.scope") && c.size() > 17);
}

bool is_v1_anchor(std::string_view c) { return c == "slurm" || (starts_with(c, "slurm_") && c.size() > 6); }

bool is_v1_uid(std::string_view c) { return starts_with(c, "uid_") && is_u32(c.substr(4)); }

// systemd's per-user manager: its subtree is delegated to that user.
bool is_user_manager(std::string_view c) { return starts_with(c, "user@") && ends_with(c, ".service"); }

} // namespace

std::optional<SlurmJob> parse_slurm_path(std::string_view path) {
    if (path.empty() || path[0] != '/')
        return std::nullopt;
    std::vector<std::string_view> parts;
    for (size_t pos = 0; pos < path.size();) {
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos)
            end = path.size();
        std::string_view c = path.substr(pos, end - pos);
        if (c == "." || c == "..")
            return std::nullopt;
        if (!c.empty())
            parts.push_back(c);
        pos = end + 1;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
        if (is_user_manager(parts[i]))
            return std::nullopt;
        size_t job_at = 0;
        if (is_v2_anchor(parts[i]) && i + 1 < parts.size())
            job_at = i + 1;
        else if (is_v1_anchor(parts[i]) && i + 2 < parts.size() && is_v1_uid(parts[i + 1]))
            job_at = i + 2;
        if (job_at == 0)
            continue;
        std::string_view job = job_of(parts[job_at]);
        if (job.empty())
            continue;
        SlurmJob r{job, {}};
        if (job_at + 1 < parts.size() && starts_with(parts[job_at + 1], "step_") &&
            is_step_id(parts[job_at + 1].substr(5)))
            r.step = parts[job_at + 1].substr(5);
        return r;
    }
    return std::nullopt;
}

} // namespace pdtt
