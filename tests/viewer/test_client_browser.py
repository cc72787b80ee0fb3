"""Client mode in Chromium: the page's own player draws the avatar and animates it from streamed poses while the
sample speech plays (joint transforms change over time, frame times stay short)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("viser")

from browser_tools import CHROMIUM, Chromium, wait_until  # noqa: E402

CLICK_PLAY = (
    "(() => { const b = Array.from(document.querySelectorAll('button')).find(e => e.textContent.trim() === 'Play');"
    " if (!b) return false; b.click(); return true; })()"
)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_client_mode_animates_in_the_browser(avatar, speech_path):
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    settings = ViewerSettings(port=0, model="baseline", fps=20.0, mode="client splats", audio=speech_path)
    app = ViewerApp(avatar, settings)
    with tempfile.TemporaryDirectory(prefix="anchorsplat-client-") as folder:
        browser = Chromium(Path(folder) / "profile")
        try:
            page = browser.page(app.url)
            wait_until(
                lambda: page.evaluate("!!(window.anchorsplatClient && anchorsplatClient.frames.length > 5)"),
                60,
                "the page's player to draw",
            )
            session = next(iter(app.sessions.values()))
            still = json.loads(page.evaluate("JSON.stringify(anchorsplatClient.frames.slice(-5))"))
            wait_until(lambda: page.evaluate(CLICK_PLAY), 30, "the Play button")
            wait_until(lambda: session.clock.playing, 10, "playback")
            time.sleep(5.0)
            frames = json.loads(page.evaluate("JSON.stringify(anchorsplatClient.frames)"))
            title = page.evaluate("document.title")
            pose_bytes = session._poses.last_bytes
        finally:
            browser.close()
            app.stop()
    playing = [f for f in frames if f[0] > frames[-1][0] - 4500]  # [timeMs, frameMs, motion n, sum(A)]
    assert len({round(f[3], 4) for f in still}) == 1, "before Play the pose should hold still"
    # software WebGL on a loaded CPU draws few frames a second here; a GPU browser draws at the display rate
    assert len(playing) >= 3, f"only {len(playing)} frames drawn in 4.5 s"
    assert playing[-1][2] - playing[0][2] >= 10, "poses stopped arriving while playing"
    assert len({round(f[3], 4) for f in playing}) >= 3, "the joint transforms do not change while playing"
    frame_ms = np.array([f[1] for f in playing])
    print(json.dumps({"browser_frame_ms_p50": float(np.median(frame_ms)), "pose_bytes": pose_bytes}))
    assert np.median(frame_ms) < 50, f"browser frame time {np.median(frame_ms):.0f} ms"
    assert pose_bytes < 8192, "a pose message should be a few KB"
    assert title == "avatar · anchorsplat"
