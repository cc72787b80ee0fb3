"""The CLI's CPU thread policy: how many threads torch uses, chosen for a CPU that other work may share.

torch's default (one intra-op thread per core, OpenMP threads spinning while they wait for work) is the
fastest on an idle machine and collapses on a busy one: spinning threads compete with the other processes
for the same cores and every parallel region waits for its slowest thread (bench/threads.py measures it).
The policy: waiting OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, set before torch starts OpenMP), and
the thread count is the CPUs this process may actually use (affinity mask and cgroup quota) less what other
processes keep busy (the 1-minute load average), at least 1. ``ANCHORSPLAT_THREADS=N`` or a command's
``--threads N`` overrides the count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota when one is set."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_threads(cpus: int | None = None, load: float | None = None) -> int:
    """The CPUs left over by the other processes' load, rounded down, at least 1 and at most ``cpus``."""
    cpus = available_cpus() if cpus is None else cpus
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cpus, math.floor(cpus - load + 0.5)))


def apply_thread_policy(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (and, before torch is imported, the passive OpenMP wait policy)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no effect once OpenMP has started; harmless then
    if threads is None and os.environ.get("ANCHORSPLAT_THREADS"):
        value = os.environ["ANCHORSPLAT_THREADS"]
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"ANCHORSPLAT_THREADS={value}: must be a whole number of threads, at least 1")
        threads = int(value)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads} must be at least 1")
    import torch

    count = threads if threads is not None else default_threads()
    torch.set_num_threads(count)
    return count
