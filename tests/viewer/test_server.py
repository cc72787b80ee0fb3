"""The running viewer, driven over its websocket by a scripted client (viser's own wire protocol)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

pytest.importorskip("viser")

from wire import ScriptedClient, decode_jpeg  # noqa: E402

from anchorsplat.gaussians.assets import asset_path


def _session(app, timeout: float = 10.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if app.sessions:
            return next(iter(app.sessions.values()))
        time.sleep(0.02)
    raise AssertionError("no session was created for the client")


def _avatar_pixels(frame: dict) -> np.ndarray:
    image = decode_jpeg(frame["rgb_data"]).astype(np.int32)
    return np.abs(image - 255).sum(-1) > 60  # differs clearly from the white background


def test_server_starts_on_a_free_port_and_stops(avatar):
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    app = ViewerApp(avatar, ViewerSettings(port=0, model="baseline"))
    port = app.port
    assert app.url == f"http://127.0.0.1:{port}"
    with socket.create_connection(("127.0.0.1", port), timeout=2.0):
        pass
    with pytest.raises(ValueError, match="in use"):
        ViewerApp(avatar, ViewerSettings(port=port, model="baseline"))
    app.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()


def test_client_gets_frames_and_gui_changes_the_avatar(app, front_view):
    client = ScriptedClient(app.url)
    try:
        client.send_camera(*front_view, width=160, height=240)
        assert client.wait_for(lambda c: len(c.frames) >= 1), "no frame arrived"
        first = client.frames[-1]
        image = decode_jpeg(first["rgb_data"])
        h, w = image.shape[:2]
        assert image.shape[2] == 3 and 16 <= h <= 240 and w / h == pytest.approx(160 / 240, abs=0.02)
        mask = _avatar_pixels(first)
        h, w = mask.shape
        assert mask[h // 3 : 2 * h // 3, w // 2 - 3 : w // 2 + 3].mean() > 0.8, "the torso is not in the middle"
        assert mask[:, : w // 10].mean() < 0.05, "the border should be background"
        assert first["depth_data"] is not None

        session = _session(app)
        assert session.last_motion is not None
        count = len(client.frames)
        client.set_gui_value(session.gui.jaw._impl.uuid, 1.0)  # what the browser sends when the slider moves
        assert client.wait_for(lambda c: len(c.frames) > count and session.controls.jaw == 1.0)
        motion = session.last_motion
        assert float(motion.expression[0, list(motion.expression_names).index("jawOpen")]) == pytest.approx(1.0)

        count = len(client.frames)
        client.set_gui_value(session.gui.body._impl.uuid, "arms down")
        assert client.wait_for(lambda c: len(c.frames) > count and session.controls.body == "arms down")
        time.sleep(0.3)
        arms_down = _avatar_pixels(client.frames[-1])
        # the T-pose arms reach the image sides at shoulder height; lowered, they do not
        row = slice(int(0.2 * h), int(0.35 * h))
        assert mask[row, : w // 4].sum() > arms_down[row, : w // 4].sum()
    finally:
        client.close()


def test_tabs_have_their_own_camera_and_a_closed_tab_frees_its_session(app, front_view):
    a, b = ScriptedClient(app.url), ScriptedClient(app.url)
    try:
        a.send_camera(*front_view, width=120, height=160)
        (x, y, z), target = front_view
        b.send_camera((target[0] + (z - target[2]), y, target[2]), target, width=200, height=160)  # from the side
        assert a.wait_for(lambda c: len(c.frames) >= 1) and b.wait_for(lambda c: len(c.frames) >= 1)
        assert len(app.sessions) == 2
        wa = decode_jpeg(a.frames[-1]["rgb_data"]).shape[1]
        wb = decode_jpeg(b.frames[-1]["rgb_data"]).shape[1]
        assert wa < wb  # each tab's own aspect
        front, side = _avatar_pixels(a.frames[-1]), _avatar_pixels(b.frames[-1])
        # same height, same distance: the T-posed body seen from the front covers more pixels than its profile
        assert front.sum() > 1.3 * side.sum()
        sessions = dict(app.sessions)
        b.close()
        assert a.wait_for(lambda _: len(app.sessions) == 1, timeout=10.0)
        closed = next(s for s in sessions.values() if s.client.client_id not in app.sessions)
        # the session's loop may be finishing a frame when the tab closes: it must stop soon after
        assert a.wait_for(
            lambda _: closed.closed and not closed._thread.is_alive() and closed.face is None, timeout=15.0
        )
        count = len(a.frames)
        a.send_camera(*front_view, width=130, height=160)
        assert a.wait_for(lambda c: len(c.frames) > count), "the other tab stopped working"
    finally:
        a.close()
        b.close()


def test_client_splats_mode_and_bad_uploads(app, front_view, speech_path):
    client = ScriptedClient(app.url)
    try:
        client.send_camera(*front_view, width=160, height=120)
        assert client.wait_for(lambda c: len(c.frames) >= 1)
        session = _session(app)
        client.set_gui_value(session.gui.mode._impl.uuid, "client splats")
        # the browser's player gets the avatar once (800 Gaussians), then poses only
        assert client.wait_for(
            lambda c: any('"count": 800' in m["updates"].get("content", "") for m in c.of_type("GuiUpdateMessage"))
        )

        uuid = session.gui.audio_upload._impl.uuid
        client.upload(uuid, "notes.txt", b"not a recording at all" * 50)
        assert client.wait_for(
            lambda c: any(
                "not audio" in n.get("props", {}).get("body", "") for n in c.of_type("NotificationShowMessage")
            )
        )
        client.upload(uuid, "big.wav", b"\0" * 100, mime_type="audio/wav")
        assert client.wait_for(lambda c: len(c.of_type("NotificationShowMessage")) >= 2)
        assert session.face is None and not session.closed

        client.upload(uuid, speech_path.name, speech_path.read_bytes(), mime_type="audio/flac")
        assert client.wait_for(lambda _: session.face is not None, timeout=20.0)
        count = len(client.of_type("LocalStorageSetItemMessage"))
        client.send(
            {"type": "GuiUpdateMessage", "uuid": session.gui.play_button._impl.uuid, "updates": {"value": True}}
        )
        assert client.wait_for(lambda _: session.clock.playing, timeout=5.0)
        assert client.wait_for(lambda _: session.frames_sent > 5, timeout=30.0)  # frames keep coming while playing
        html = [m for m in client.of_type("GuiUpdateMessage") if "content" in m["updates"]]
        assert any(
            "<audio" in m["updates"]["content"] and "data:audio/wav;base64," in m["updates"]["content"] for m in html
        )
        assert session.frames_sent > 5 and session.stats.latency_ms is not None  # its figure: bench/play.py
        # poses keep streaming while playing (waited for, not timed: the machine may be loaded)
        assert client.wait_for(lambda c: len(c.of_type("LocalStorageSetItemMessage")) > count + 5, timeout=30.0)
    finally:
        client.close()


def test_default_anny_avatar_gets_arkit_sliders_and_a_frame():

    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    path = asset_path("body.anchorsplat")
    assert path.is_file(), f"{path} is missing (the demo avatar ships with the repository)"
    app = ViewerApp(path, ViewerSettings(port=0, model="baseline", max_resolution=128, fps=10.0))
    client = ScriptedClient(app.url)
    try:
        target, distance = app.avatar.target, app.avatar.distance
        client.send_camera((target[0], target[1], target[2] + distance), tuple(target), width=96, height=128)
        assert client.wait_for(lambda c: len(c.frames) >= 1, timeout=60.0)
        session = _session(app)
        assert len(session.gui.expression_sliders) == 52 and "jawOpen" in session.gui.expression_sliders
        assert _avatar_pixels(client.frames[-1]).mean() > 0.02
        count = len(client.frames)
        client.set_gui_value(session.gui.expression_sliders["eyeBlinkLeft"]._impl.uuid, 1.0)
        assert client.wait_for(lambda c: len(c.frames) > count, timeout=60.0)
        motion = session.last_motion
        assert float(motion.expression[0, list(motion.expression_names).index("eyeBlinkLeft")]) == 1.0
    finally:
        client.close()
        app.stop()
