"""How many CPUs the pod may use, and how many middleware workers that buys (docs/operations.md).

Kubernetes turns a container's `resources.limits.cpu` into a CFS quota on its cgroup: cgroup v2 writes
`<quota> <period>` (or `max <period>` without a limit) to `cpu.max`; cgroup v1 writes `cpu.cfs_quota_us`
(-1 without a limit) and `cpu.cfs_period_us`. The quota is enforced however many cores the node shows, so
`os.cpu_count()` overstates a limited pod; CPUs the process may not be scheduled on (cpusets, `taskset`)
cannot be used either, so the smaller of the two counts.

Pure but for `pod_cpus()`, whose only side effect is reading the files under a root given as a parameter.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where cgroup v1 mounts the cpu controller, by distribution.
V1_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
CPUS_PER_WORKER = 4
MAX_WORKERS = 8


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    """CPUs a CFS quota grants; None when it grants no limit (or cannot be read)."""
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cgroup_cpus(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU limit of the cgroup mounted at `root`, in CPUs (fractions kept); None: unlimited or unknown."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else _ratio(quota, period or "100000")
    for folder in (root / name for name in V1_DIRS):
        v1_quota, v1_period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if v1_quota is not None and v1_period is not None:
            return _ratio(v1_quota, v1_period)
    return None


def schedulable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), which a cpuset or `taskset` can make fewer than the node's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pod_cpus(root: Path = CGROUP_ROOT, schedulable: int | None = None) -> float:
    """The CPUs the pod can use: its cgroup quota, capped by the CPUs it may be scheduled on."""
    available = schedulable_cpus() if schedulable is None else schedulable
    limit = cgroup_cpus(root)
    return min(limit, float(available)) if limit is not None else float(available)


def default_workers(cpus: float | None) -> int:
    """One middleware worker per CPUS_PER_WORKER CPUs of the pod, at least 1, at most MAX_WORKERS.
    None (the CPU count was not looked up: tests, `translate()` called as a library) means one worker."""
    if cpus is None:
        return 1
    return max(1, min(MAX_WORKERS, math.floor(cpus / CPUS_PER_WORKER)))
