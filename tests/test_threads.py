"""The CLI's CPU thread policy (anchorsplat/threads.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from anchorsplat.threads import (
    ThreadGovernor,
    _cpu_counters,
    apply_thread_policy,
    available_cpus,
    busy_cpus,
    default_threads,
    governed,
)


def test_default_threads_leave_the_cpus_other_processes_keep_busy():
    assert default_threads(cpus=2, busy=0.0) == 2  # an idle machine: every CPU
    assert default_threads(cpus=2, busy=0.4) == 2
    assert default_threads(cpus=2, busy=1.0) == 1
    assert default_threads(cpus=2, busy=9.0) == 1  # never below one
    assert default_threads(cpus=16, busy=5.2) == 11
    assert 1 <= available_cpus() <= (torch.get_num_threads() + 64)


def test_cpu_counters_count_everything_but_idle_io_wait_and_steal():
    line = "cpu  100 50 20 800 10 3 2 1 0 0\ncpu0 1 2 3 4\n"
    assert _cpu_counters(line) == (100 + 50 + 20 + 3 + 2, 100 + 50 + 20 + 3 + 2 + 800 + 10)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_busy_cpus_sees_a_process_that_is_busy_now():
    """The 1-minute load average lags (it still counts a bake that just ended); the counters see what runs now."""
    before = busy_cpus(seconds=0.5)
    if before > os.cpu_count() - 1:
        pytest.skip(f"no idle CPU to see a new busy process on ({before:.1f} CPUs busy)")
    code = "import time\nend = time.time() + 20\nwhile time.time() < end: pass\n"
    spinner = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)  # let it start spinning
        during = busy_cpus(seconds=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert during - before > 0.6, (before, during)
    assert busy_cpus(stat_path="/nonexistent/stat") == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_overrides_and_bad_values(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("ANCHORSPLAT_THREADS", "1")
        assert apply_thread_policy() == 1 and torch.get_num_threads() == 1
        assert apply_thread_policy(2) == 2 and torch.get_num_threads() == 2  # --threads wins over the variable
        monkeypatch.setenv("ANCHORSPLAT_THREADS", "two")
        with pytest.raises(ValueError, match="ANCHORSPLAT_THREADS=two: must be a whole number"):
            apply_thread_policy()
    finally:
        torch.set_num_threads(before)


def test_the_cli_reports_a_bad_thread_setting_in_one_line(monkeypatch, capsys, tmp_path):
    from anchorsplat.cli import main

    monkeypatch.setenv("ANCHORSPLAT_THREADS", "0")
    before = torch.get_num_threads()
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(tmp_path / "missing.anchorsplat")])
    torch.set_num_threads(before)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["anchorsplat: error: ANCHORSPLAT_THREADS=0: must be a whole number of threads, at least 1"]


def _stat_file(path: Path, busy_jiffies: int) -> None:
    path.write_text(f"cpu  {busy_jiffies} 0 0 1000000 0 0 0 0 0 0\ncpu0 0 0 0 0\n")


def test_the_governor_gives_a_thread_back_while_others_are_busy_and_takes_it_again(tmp_path):
    stat, hz = tmp_path / "stat", os.sysconf("SC_CLK_TCK")
    _stat_file(stat, 0)
    before = torch.get_num_threads()
    try:
        governor = ThreadGovernor(cpus=2, stat_path=str(stat))
        start = time.monotonic()
        time.sleep(0.4)
        _stat_file(stat, int(1.9 * (time.monotonic() - start) * hz))  # others kept 1.9 CPUs busy meanwhile
        assert governor.tick() == 1 and torch.get_num_threads() == 1
        time.sleep(0.4)  # and then nothing ran
        assert governor.tick() == 2 and torch.get_num_threads() == 2
        assert [n for _, n in governor.history] == [1, 2] and governor.history[0][0] > 1.5
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_governed_ticks_during_the_block_and_restores_the_alarm_handler(monkeypatch):
    monkeypatch.delenv("ANCHORSPLAT_THREADS", raising=False)  # tests/conftest.py fixes the count for CLI runs
    before_threads, before_handler = torch.get_num_threads(), signal.getsignal(signal.SIGALRM)
    try:
        with governed(every=0.1) as governor:
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                torch.ones(64, 64) @ torch.ones(64, 64)  # torch work between the alarms
        if available_cpus() >= 2:
            assert governor is not None and len(governor.history) >= 3
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) == before_handler
        with governed(manual=True) as manual:
            assert manual is None  # --threads N: the count stays what the user chose
    finally:
        torch.set_num_threads(before_threads)
