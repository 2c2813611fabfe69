// Slurm job and step from a cgroup path (docs/records.md: job, step). Pure text, no kernel.
#pragma once

#include <optional>
#include <string_view>

namespace pdtt {

// Views into the path handed to parse_slurm_path: copy them if the path dies.
struct SlurmJob {
    std::string_view job;  // decimal job id, "4242"
    std::string_view step; // "0", "0+1", "batch", "extern", "interactive"; empty: the path names no step
};

// The job a cgroup path below the hierarchy root belongs to, or nothing.
// Layouts:
//   v2: .../[NODE_]slurmstepd.scope/job_<ID>[/step_<STEP>[/...]]
//   v1: .../slurm[_NODE]/uid_<UID>/job_<ID>[/step_<STEP>[/...]]
// The job component must sit under Slurm's own directory, so a user cannot
// name a job by creating "job_1" in a subtree delegated to them; for the same
// reason a match below a systemd user manager (user@UID.service) is ignored,
// and the outermost match wins over any job-like name nested below it.
// A path with "." or ".." components is not a kernel cgroup path: nothing.
std::optional<SlurmJob> parse_slurm_path(std::string_view path);

} // namespace pdtt
