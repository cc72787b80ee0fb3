"""Chromium's fake microphone plays the sample speech; "talk" in one tab moves that tab's mouth with the loudness,
while a second tab stays still. The page's own state is read over the DevTools protocol."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("viser")

from browser_tools import CHROMIUM, Chromium, fake_microphone_flags, wait_until  # noqa: E402

PRESS_TALK = (
    "(() => { const b = Array.from(document.querySelectorAll('button')).find(e => e.textContent.trim() === 'Talk');"
    " if (!b) return false; b.click(); return true; })()"
)
PAGE_STATE = (
    "JSON.stringify(window.anchorsplatTalk ? {chunks: anchorsplatTalk.chunks, motion: anchorsplatTalk.motion,"
    " error: anchorsplatTalk.error, running: anchorsplatTalk.running} : null)"
)


def _speech_wav(speech_path: Path, out: Path) -> Path:
    import soundfile

    from anchorsplat.runtime.audio import load_audio

    soundfile.write(out, load_audio(speech_path).samples, 16000, subtype="PCM_16")
    return out


def _new_session(app, known: set, timeout: float = 60.0):
    return wait_until(
        lambda: next((s for cid, s in list(app.sessions.items()) if cid not in known and s.frames_sent), None),
        timeout,
        "the page to connect and get a frame",
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_fake_microphone_moves_the_talking_tab_only(app, speech_path):
    with tempfile.TemporaryDirectory(prefix="anchorsplat-talk-") as folder:
        wav = _speech_wav(speech_path, Path(folder) / "speech.wav")
        browser = Chromium(Path(folder) / "profile", fake_microphone_flags(wav))
        try:
            talking_page = browser.page(app.url)
            talker = _new_session(app, set())
            quiet_page = browser.page(app.url)
            quiet = _new_session(app, {talker.client.client_id})
            wait_until(lambda: talking_page.evaluate(PRESS_TALK), 30, "the Talk button")
            wait_until(lambda: talker.talking and talker.talk.mic.chunks > 0, 30, "microphone chunks on the server")
            time.sleep(6.0)
            state = json.loads(talking_page.evaluate(PAGE_STATE))
            server_ms = talker.talk.server_latency_ms
            quiet_talking, quiet_face, quiet_motion = quiet.talking, quiet.state.live_face, quiet.last_motion
            quiet_state = json.loads(quiet_page.evaluate(PAGE_STATE))
        finally:
            browser.close()
    assert state["error"] is None and state["running"], state["error"]
    fps = app.settings.fps
    sent = [c for c in state["chunks"] if c[3]]  # [seq, sentMs, rms, wasSent]: chunks the socket took
    assert len(sent) >= 100, f"only {len(sent)} microphone chunks were sent"
    first, rms = sent[0][0], {seq: r for seq, _, r, _ in sent}
    sent_ms = {seq: t for seq, t, _, _ in sent}
    frames = {}  # frame index -> (jawOpen, seen on the page (ms))
    for seen, index, jaw, *_ in state["motion"]:
        frames.setdefault(index, (jaw, seen))
    assert len(frames) >= 3 * fps, f"only {len(frames)} face frames reached the page"
    # frame k shows the audio up to k / fps after the first chunk: the chunk holding that instant completed it
    done = {k: first + int(k / fps * 16000) // 256 for k in frames}
    usable = [k for k in frames if all(s in rms for s in range(done[k] - 5, done[k] + 1))]
    loud = [np.sqrt(np.mean([rms[s] ** 2 for s in range(done[k] - 5, done[k] + 1)])) for k in usable]
    r = float(np.corrcoef([frames[k][0] for k in usable], loud)[0, 1])
    latency = [frames[k][1] - sent_ms[done[k]] for k in usable]
    print(
        json.dumps({
            "frames": len(usable), "jaw_loudness_r": round(r, 3),
            "browser_chunk_to_motion_ms_p50": round(float(np.median(latency)), 1),
            "server_chunk_to_motion_sent_ms_p50": round(server_ms, 1),
        })
    )  # fmt: skip
    assert r >= 0.6, f"mouth opening vs loudness r = {r:.2f}"
    # the second tab: no microphone, no live face, a still mouth
    assert quiet_state is None and not quiet_talking and quiet_face is None
    names = list(quiet_motion.expression_names)
    assert "jawOpen" not in names or float(quiet_motion.expression[0, names.index("jawOpen")]) == 0.0
