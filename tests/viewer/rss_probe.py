"""Run by test_tabs.py in a fresh process (its RSS is then the viewer's alone, not the test session's): a viewer
on the demo avatar, one tab, eight more that open and close; prints the RSS (MiB) at each stage as JSON."""

from __future__ import annotations

import json
import time

try:
    from anchorsplat.viewer.wire import ScriptedClient
except ImportError:  # moved next to the tests
    from wire import ScriptedClient

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.viewer.app import ViewerApp, ViewerSettings


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    settings = ViewerSettings(port=0, model="baseline", max_resolution=128, fps=10.0, max_tabs=9)
    app = ViewerApp(asset_path("body.anchorsplat"), settings)
    target, distance = app.avatar.target, app.avatar.distance

    def open_tab(width: int) -> ScriptedClient:
        client = ScriptedClient(app.url)
        client.send_camera((target[0], target[1], target[2] + distance), tuple(target), width=width, height=128)
        assert client.wait_for(lambda c: len(c.frames) >= 1, timeout=60.0), "a tab got no frame"
        return client

    first = open_tab(96)
    try:
        time.sleep(1.0)
        one = rss_mib()
        tabs = [open_tab(90 + i) for i in range(8)]
        many = rss_mib()
        for tab in tabs:
            tab.close()
        assert first.wait_for(lambda _: len(app.sessions) == 1, timeout=30.0), "closed tabs kept their sessions"
        time.sleep(1.0)
        print(json.dumps({"one_tab": one, "nine_tabs": many, "closed": rss_mib()}), flush=True)
    finally:
        first.close()
        app.stop()


if __name__ == "__main__":
    main()
