"""Progressive server rendering: low resolution while the camera moves, the full canvas once it rests."""

from __future__ import annotations

import time

import numpy as np
import pytest

from anchorsplat.viewer.resolution import AdaptiveResolution, ProgressiveResolution, frame_size


def test_refinement_doubles_up_to_the_canvas_then_stops():
    progressive = ProgressiveResolution(AdaptiveResolution(target_fps=30.0, max_height=720, height=96))
    assert progressive.moving_height(500) == 96
    progressive.shown(96)
    steps = []
    while (height := progressive.refine_height(500)) is not None:
        steps.append(height)
        progressive.shown(height)
    assert steps == [192, 384, 500]
    assert progressive.full_height(None) == 720 and progressive.full_height(2000) == 720  # capped
    progressive.shown(96)  # something moved again: refine again
    assert progressive.refine_height(500) == 192
    # the moving height never exceeds the canvas
    assert ProgressiveResolution(AdaptiveResolution(max_height=720, height=384)).moving_height(200) == 200


def test_frame_size_is_the_canvas_exactly_at_full_height():
    assert frame_size(240, 0.75, (181, 240)) == (181, 240)
    assert frame_size(120, 0.75, (181, 240)) == (90, 120)


def test_still_view_after_a_drag_streams_the_full_canvas(avatar):
    pytest.importorskip("viser")
    try:
        from wire import ScriptedClient, decode_jpeg
    except ImportError:  # moved next to the tests
        from wire import ScriptedClient, decode_jpeg
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    # 120 fps is out of reach of the CPU renderer at this canvas: frames during the drag drop resolution
    app = ViewerApp(avatar, ViewerSettings(port=0, model="baseline", max_resolution=720, fps=120.0))
    client = ScriptedClient(app.url)
    try:
        target, distance = np.asarray(app.avatar.target, float), app.avatar.distance
        canvas = (300, 400)  # width, height
        for step in range(40):  # a scripted orbit drag, 40 camera updates over ~1 s
            yaw = np.radians(2.0 * step)
            eye = target + distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
            client.send_camera(tuple(eye), tuple(target), width=canvas[0], height=canvas[1])
            time.sleep(0.025)
        drag_end = time.perf_counter()
        assert client.wait_for(lambda c: len(c.frames) >= 1)
        time.sleep(2.0)
        during = [decode_jpeg(f["rgb_data"]).shape[:2] for f in client.frames if f["time"] <= drag_end]
        assert min(h for h, _ in during) < canvas[1], "the drag should have streamed lower-resolution frames"
        final = decode_jpeg(client.frames[-1]["rgb_data"])
        assert final.shape[:2] == (canvas[1], canvas[0]), f"still view at {final.shape[:2]}, canvas is {canvas}"
        count = len(client.frames)
        time.sleep(0.6)
        assert len(client.frames) == count, "a still, refined view should stop streaming"
    finally:
        client.close()
        app.stop()
