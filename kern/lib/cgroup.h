/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The cgroup a byte's owner is in: the v2 one, or, where Slurm runs on
 * cgroup v1, the task's cgroup in the v1 hierarchy the agent chose.
 */
#ifndef PDTT_LIB_CGROUP_H
#define PDTT_LIB_CGROUP_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* libbpf before 1.2 has no such macro; the same test of a weak symbol. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/* 0: cgroup v2. Else the v1 hierarchy id (/proc/cgroups); the agent sets
 * it only where the kfunc below exists. */
const volatile __u32 cgroup1_hierarchy = 0;

/* Linux 6.8+. Weak: the program still loads on older kernels. */
extern struct cgroup *bpf_task_get_cgroup1(struct task_struct *task,
					   int hierarchy_id) __ksym __weak;
extern void bpf_cgroup_release(struct cgroup *cgrp) __ksym __weak;

/* The id is the kernfs node id, the inode number of the cgroup's
 * directory, in v1 as in v2. 0 when the task is in no such hierarchy. */
static __always_inline __u64 owner_cgroup_id(struct task_struct *task)
{
	struct cgroup *cg;
	__u64 id;

	if (!cgroup1_hierarchy || !bpf_ksym_exists(bpf_task_get_cgroup1))
		return bpf_get_current_cgroup_id();
	cg = bpf_task_get_cgroup1(task, cgroup1_hierarchy);
	if (!cg)
		return 0;
	id = BPF_CORE_READ(cg, kn, id);
	bpf_cgroup_release(cg);
	return id;
}

#endif /* PDTT_LIB_CGROUP_H */
