"""Tabs are isolated and bounded: a cap on concurrent tabs with a clear message, and closed tabs give memory back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("viser")

try:
    from anchorsplat.viewer.wire import ScriptedClient
except ImportError:  # moved next to the tests
    from wire import ScriptedClient


def test_tab_cap_refuses_one_more_with_a_message(avatar, front_view):
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    app = ViewerApp(avatar, ViewerSettings(port=0, model="baseline", max_resolution=96, fps=10.0, max_tabs=2))
    clients = []
    try:
        for _ in range(3):
            clients.append(ScriptedClient(app.url))
            clients[-1].send_camera(*front_view, width=64, height=96)

        def refused_tabs() -> list[ScriptedClient]:
            return [c for c in clients if any("Viewer full" in str(m) for m in c.of_type("NotificationShowMessage"))]

        # the server counts the refusal before its message reaches that tab: wait for both
        assert clients[0].wait_for(lambda _: app.refused == 1 and len(app.sessions) == 2 and len(refused_tabs()) == 1)
        refused = refused_tabs()
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
    probe = Path(__file__).with_name("rss_probe.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    rss = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))  # viser prints too
    print(f"RSS MiB: {rss}")
    assert rss["nine_tabs"] > rss["one_tab"] + 20, "eight more tabs should cost memory (else this measures nothing)"
    assert rss["closed"] <= 1.10 * rss["one_tab"], f"RSS after the tabs closed vs one tab: {rss}"
