"""The CLI's CPU thread policy (anchorsplat/threads.py)."""

from __future__ import annotations

import pytest
import torch

from anchorsplat.threads import apply_thread_policy, available_cpus, default_threads


def test_default_threads_leave_the_cpus_other_processes_keep_busy():
    assert default_threads(cpus=2, load=0.0) == 2  # an idle machine: every CPU
    assert default_threads(cpus=2, load=0.4) == 2
    assert default_threads(cpus=2, load=1.0) == 1
    assert default_threads(cpus=2, load=9.0) == 1  # never below one
    assert default_threads(cpus=16, load=5.2) == 11
    assert 1 <= available_cpus() <= (torch.get_num_threads() + 64)


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
