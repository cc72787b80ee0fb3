"""Headless Chromium opens the viewer page; a screenshot shows the avatar (driven over the DevTools protocol,
so the page runs in real time with its websocket)."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("viser")

from browser_tools import DevTools  # noqa: E402  (next to this test)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader", "--window-size=900,600",
    "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0",
)  # fmt: skip


def _open_chromium(profile: Path) -> tuple[subprocess.Popen, DevTools]:
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    port_file = profile / "DevToolsActivePort"
    deadline = time.perf_counter() + 30
    while not port_file.is_file() or len(port_file.read_text().split()) < 2:
        assert process.poll() is None, "chromium exited at start"
        assert time.perf_counter() < deadline, "chromium did not open its DevTools port"
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        pages = [t for t in json.load(response) if t["type"] == "page"]
    return process, DevTools(pages[0]["webSocketDebuggerUrl"])


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_chromium_shows_the_avatar(app):
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="anchorsplat-chromium-") as folder:
        process, devtools = _open_chromium(Path(folder) / "profile")
        try:
            devtools.call("Page.enable")
            devtools.call("Page.navigate", url=app.url)
            deadline = time.perf_counter() + 40
            while not any(s.frames_sent for s in app.sessions.values()):
                assert time.perf_counter() < deadline, "the page never connected and received a frame"
                time.sleep(0.1)
            session = next(iter(app.sessions.values()))
            # progressive rendering: wait for the still view's full-size frame, then for the browser to draw it
            while session.resolution.refine_height(session.client.camera.image_height) is not None:
                assert time.perf_counter() < deadline + 60, "the still view never reached the full canvas"
                time.sleep(0.1)
            time.sleep(2.0)
            # viser fades its canvas in from 5% opacity over its first rendered frames (slow with software GL)
            opaque = "Array.from(document.querySelectorAll('canvas')).every(c => getComputedStyle(c).opacity === '1')"
            while not devtools.call("Runtime.evaluate", expression=opaque, returnByValue=True)["result"]["value"]:
                assert time.perf_counter() < deadline + 120, "viser's canvas never faded in"
                time.sleep(0.2)
            time.sleep(0.5)
            shot = devtools.call("Page.captureScreenshot", format="png")["data"]
        finally:
            devtools.close()
            process.terminate()
            process.wait(timeout=10)
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB")).astype(np.int32)
    Image.fromarray(image.astype(np.uint8)).save(Path(tempfile.gettempdir()) / "anchorsplat_viewer_chromium.png")
    h, w, _ = image.shape
    # The avatar's skin colour (0.72, 0.6, 0.52), shaded: reddish and clearly darker than the white background.
    skin = (image[..., 0] > image[..., 2] + 15) & (image.sum(-1) < 650)
    # the default camera frames the body in the middle of the canvas left of the control panel (at the right)
    from anchorsplat.viewer.session import PANEL_PX

    free = (w - PANEL_PX) / w
    centre = skin[int(0.3 * h) : int(0.7 * h), int((free / 2 - 0.03) * w) : int((free / 2 + 0.03) * w)]
    assert centre.mean() > 0.3, f"no avatar in the middle of the free canvas ({centre.mean():.2f} skin pixels)"
    assert skin[:, int(free * w) + 10 :].mean() < 0.01, "the control panel covers part of the avatar"
    # left border between viser's notification (top left) and its axes widget (bottom left): background
    assert skin[int(0.35 * h) : int(0.8 * h), : int(0.05 * w)].mean() < 0.01, "the left border should be background"
    assert session.stats.size[1] > 0
