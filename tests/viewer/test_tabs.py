"""Tabs are isolated and bounded: a cap on concurrent tabs with a clear message, and closed tabs give memory back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anchorsplat.gaussians.assets import asset_path

pytest.importorskip("viser")

try:
    from wire import ScriptedClient
except ImportError:  # moved next to the tests
    from wire import ScriptedClient

BODY = asset_path("body.anchorsplat")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_tab_cap_refuses_one_more_with_a_message(avatar, front_view):
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    app = ViewerApp(avatar, ViewerSettings(port=0, model="baseline", max_resolution=96, fps=10.0, max_tabs=2))
    clients = []
    try:
        for _ in range(3):
            clients.append(ScriptedClient(app.url))
            clients[-1].send_camera(*front_view, width=64, height=96)
        assert clients[0].wait_for(lambda _: app.refused == 1 and len(app.sessions) == 2)
        refused = [c for c in clients if any("Viewer full" in str(m) for m in c.of_type("NotificationShowMessage"))]
        assert len(refused) == 1 and "--max-tabs" in str(refused[0].of_type("NotificationShowMessage"))
        served = next(c for c in clients if c is not refused[0])
        served.close()  # a slot frees up: the next tab is served
        assert clients[0].wait_for(lambda _: len(app.sessions) == 1)
        again = ScriptedClient(app.url)
        clients.append(again)
        again.send_camera(*front_view, width=64, height=96)
        assert again.wait_for(lambda c: len(c.frames) >= 1 and len(app.sessions) == 2)
    finally:
        for c in clients:
            c.close()
        app.stop()
    with pytest.raises(ValueError, match="max tabs"):
        ViewerSettings(max_tabs=0)


def test_max_tabs_cli_error_is_one_line(tmp_path, avatar, capsys):
    from anchorsplat.cli import main
    from anchorsplat.gaussians.io import save_avatar

    path = save_avatar(tmp_path / "tiny.anchorsplat", avatar)
    with pytest.raises(SystemExit) as exit_info:
        main(["view", str(path), "--port", "0", "--max-tabs", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "anchorsplat: error: max tabs 0 is out of range: pass --max-tabs between 1 and 256"
    ]


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="reads Linux /proc")
def test_eight_tabs_open_and_close_and_memory_comes_back():
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    app = ViewerApp(BODY, ViewerSettings(port=0, model="baseline", max_resolution=128, fps=10.0, max_tabs=9))
    target, distance = app.avatar.target, app.avatar.distance

    def open_tab(width: int) -> ScriptedClient:
        client = ScriptedClient(app.url)
        client.send_camera((target[0], target[1], target[2] + distance), tuple(target), width=width, height=128)
        assert client.wait_for(lambda c: len(c.frames) >= 1, timeout=60.0)
        return client

    first = open_tab(96)
    try:
        time.sleep(1.0)
        one_tab = _rss_mib()
        tabs = [open_tab(90 + i) for i in range(8)]
        many = _rss_mib()
        for tab in tabs:
            tab.close()
        assert first.wait_for(lambda _: len(app.sessions) == 1, timeout=30.0)
        time.sleep(1.0)
        after = _rss_mib()
        print(f"RSS MiB: 1 tab {one_tab:.0f}, 9 tabs {many:.0f}, back to 1 tab {after:.0f}")
        assert many > one_tab + 20, "eight more tabs should have cost memory (else this test measures nothing)"
        assert after <= 1.10 * one_tab, f"RSS {after:.0f} MiB after the tabs closed, {one_tab:.0f} MiB with one tab"
    finally:
        first.close()
        app.stop()
