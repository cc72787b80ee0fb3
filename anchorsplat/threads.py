"""The CLI's CPU thread policy: how many threads torch uses, chosen for a CPU that other work may share.

torch's default (one intra-op thread per core, OpenMP threads spinning while they wait for work) is the
fastest on an idle machine and collapses on a busy one: spinning threads compete with the other processes
for the same cores and every parallel region waits for its slowest thread (bench/threads.py measures it).
The policy: the thread count is the CPUs this process may actually use (affinity mask and cgroup quota) less
the CPUs other processes keep busy right now, at least 1. "Busy right now" is measured, not guessed from the
load average: the CLI samples the kernel's CPU counters (``/proc/stat``) for a fraction of a second while it
does nothing itself (niced processes count too: with the kernel's autogroup scheduling, the default on desktop
Linux, a process niced in another session does not yield to us). The 1-minute load average is only the
fallback where ``/proc/stat`` does not exist: it lags by a minute, so it still counts a bake or a test run
that just ended, and it made a bake on an idle 2-core machine run on one thread. With one thread, OpenMP's
threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, set before torch starts OpenMP); with more, they spin
for :data:`SPIN_COUNT` before sleeping: the fit's many small parallel regions gained nothing from a second
thread that sleeps between them (150 preview fit steps alone: 1 thread 55 s, 2 passive threads 57 s, 2
spinning threads 39-41 s). While a command runs, :class:`ThreadGovernor` re-chooses the count every 2 s.
``ANCHORSPLAT_THREADS=N`` or a command's ``--threads N`` overrides the count.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
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


def _cpu_counters(stat: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``'s first line: idle, I/O wait and time the hypervisor
    gave other machines (steal) are not busy here."""
    fields = [int(x) for x in stat.splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait


def busy_cpus(seconds: float = 0.15, stat_path: str = "/proc/stat") -> float:
    """How many CPUs other processes keep busy now: the kernel's counters over ``seconds``
    while this process sleeps; the 1-minute load average where the counters cannot be read."""
    try:
        busy0, total0 = _cpu_counters(Path(stat_path).read_text())
        time.sleep(seconds)
        busy1, total1 = _cpu_counters(Path(stat_path).read_text())
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cpus = os.cpu_count() or 1
    return cpus * (busy1 - busy0) / max(total1 - total0, 1)


def default_threads(cpus: int | None = None, busy: float | None = None) -> int:
    """The CPUs left over by the other processes' work, rounded, at least 1 and at most ``cpus``."""
    cpus = available_cpus() if cpus is None else cpus
    busy = busy_cpus() if busy is None else busy
    return max(1, min(cpus, math.floor(cpus - busy + 0.5)))


SPIN_COUNT = "10000000"
"""libgomp's spin count before a waiting OpenMP thread sleeps, when more than one thread runs: long enough
for the gaps between the fit's parallel regions (alone on 2 cores it matches ``OMP_WAIT_POLICY=ACTIVE``, 3.8
against 3.8 steps/s, where OpenMP's default spin gives 3.1 and passive waiting 2.8), short enough that a
thread the governor leaves idle soon sleeps."""


def apply_thread_policy(threads: int | None = None) -> int:
    """Set torch's intra-op thread count and (before torch starts OpenMP) how OpenMP's threads wait."""
    if threads is None and os.environ.get("ANCHORSPLAT_THREADS"):
        value = os.environ["ANCHORSPLAT_THREADS"]
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"ANCHORSPLAT_THREADS={value}: must be a whole number of threads, at least 1")
        threads = int(value)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads} must be at least 1")
    count = threads if threads is not None else default_threads()
    # no effect once OpenMP has started; harmless then. One thread for good: sleep while waiting; else spin a while
    if threads == 1 or available_cpus() == 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    else:
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    import torch

    torch.set_num_threads(count)
    return count


class ThreadGovernor:
    """Re-choose torch's thread count while a long command runs: every ``every`` seconds, the CPUs the other
    processes kept busy since the last look (the kernel's counters less this process's own CPU time) decide
    it again, between 1 and ``cpus``. A bake that starts alone and is joined by a test run drops to one
    thread instead of waiting on a descheduled second one at every parallel region (bench/threads.py,
    ``competitor_arrives``); it takes the CPUs back when the other work ends.

    :meth:`tick` must run on the thread that runs torch (OpenMP's thread count is per calling thread):
    :func:`governed` calls it from a ``SIGALRM`` handler, which Python runs on the main thread between two
    bytecodes, so never inside a torch operation."""

    def __init__(self, cpus: int | None = None, stat_path: str = "/proc/stat") -> None:
        self.cpus = available_cpus() if cpus is None else cpus
        self.stat_path = stat_path
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._sample()
        self.history: list[tuple[float, int]] = []  # (others' busy CPUs, chosen threads) per tick

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            busy, _ = _cpu_counters(Path(self.stat_path).read_text())
        except (OSError, ValueError, IndexError):
            return None
        t = os.times()
        return time.monotonic(), busy / self.hz, t.user + t.system

    def tick(self) -> int | None:
        """Look again; set and return the new thread count (None when the counters cannot be read)."""
        now = self._sample()
        if now is None or self.last is None or now[0] - self.last[0] < 0.2:
            return None
        wall, busy, own = (a - b for a, b in zip(now, self.last, strict=True))
        self.last = now
        others = max(0.0, (busy - own) / wall)
        count = default_threads(self.cpus, others)
        import torch

        if count != torch.get_num_threads():
            torch.set_num_threads(count)
        self.history.append((others, count))
        return count


@contextlib.contextmanager
def governed(manual: bool = False, every: float = 2.0):
    """Run the block under a :class:`ThreadGovernor` ticking every ``every`` seconds (main thread, POSIX only;
    elsewhere, or when the thread count was set by hand (``manual``), the block runs as it is)."""
    manual = manual or bool(os.environ.get("ANCHORSPLAT_THREADS"))
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if manual or not usable or available_cpus() < 2:
        yield None
        return
    governor = ThreadGovernor()
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: governor.tick())
    signal.siginterrupt(signal.SIGALRM, False)  # system calls the alarm interrupts restart (SA_RESTART)
    signal.setitimer(signal.ITIMER_REAL, every, every)
    try:
        yield governor
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
