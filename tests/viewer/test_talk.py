"""Live microphone ("talk"): chunks over a tab's websocket drive that tab's face, and only that tab's."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("viser")

try:
    from wire import ScriptedClient
except ImportError:  # moved next to the tests
    from wire import ScriptedClient

from anchorsplat.viewer.mic import MicStream, decode_chunk  # noqa: E402


class Chunk:
    def __init__(self, seq, samples, sample_rate=16000, fmt="s16le"):
        self.seq, self.sample_rate, self.format, self.sent_ms = seq, sample_rate, fmt, float(seq)
        self.samples = samples if isinstance(samples, bytes) else (np.asarray(samples) * 32767).astype("<i2").tobytes()


def _speech(path, seconds: float) -> np.ndarray:
    from anchorsplat.runtime.audio import load_audio

    return load_audio(path).samples[: int(seconds * 16000)].astype(np.float32)


def _chunk_message(token: str, seq: int, samples: np.ndarray, sample_rate: int = 16000) -> dict:
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2").tobytes()
    return {
        "type": "AnchorsplatMicChunk", "token": token, "seq": seq, "sample_rate": sample_rate, "format": "s16le",
        "samples": pcm, "sent_ms": float(seq),
    }  # fmt: skip


def _notifications(client) -> list[str]:
    return [m.get("props", {}).get("body", "") for m in client.of_type("NotificationShowMessage")]


def _session_of(app, before: set, timeout: float = 10.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        new = [s for cid, s in list(app.sessions.items()) if cid not in before]
        if new:
            return new[0]
        time.sleep(0.02)
    raise AssertionError("no session for the new client")


def test_decode_chunk_refuses_bad_audio():
    assert decode_chunk(Chunk(0, np.full(256, 0.5))).shape == (256,)
    assert decode_chunk(Chunk(0, np.ones(4, "<f4").tobytes(), fmt="f32le")).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="44100 Hz; talk needs 16000 Hz"):
        decode_chunk(Chunk(0, np.zeros(256), sample_rate=44100))
    with pytest.raises(ValueError, match="format 'mp3'"):
        decode_chunk(Chunk(0, b"\0" * 512, fmt="mp3"))
    with pytest.raises(ValueError, match="holds 400 samples"):
        decode_chunk(Chunk(0, np.zeros(400)))
    with pytest.raises(ValueError, match="not whole"):
        decode_chunk(Chunk(0, b"\0" * 511))


def test_mic_stream_refuses_faster_than_real_time_and_stops():
    from anchorsplat.runtime.motion import load_face_model

    frames, errors = [], []
    now = [0.0]
    stream = MicStream(
        load_face_model("baseline"), fps=30.0, on_frame=frames.append, on_error=errors.append, clock=lambda: now[0]
    )
    try:
        for seq in range(100):  # 1.6 s of audio in no time at all
            stream.receive(Chunk(seq, np.zeros(256)))
        # the first 0.5 s (SLACK_S) pass, the rest is refused, with one message
        assert stream.chunks == 31 and stream.dropped == 69
        assert errors == ["the microphone stream arrives faster than real time: extra audio was dropped"]
        now[0] = 1.0  # a second later, more audio is welcome again
        for seq in range(100, 130):
            stream.receive(Chunk(seq, np.zeros(256)))
        assert stream.chunks == 31 + 30 and len(errors) == 1
    finally:
        stream.stop()
    assert not stream.thread.is_alive()


def test_talk_drives_only_its_own_tab(app, front_view, speech_path):
    speech = _speech(speech_path, 4.0)
    a = ScriptedClient(app.url)
    a.send_camera(*front_view, width=96, height=128)
    talker = _session_of(app, set())
    b = ScriptedClient(app.url)
    b.send_camera(*front_view, width=96, height=128)
    other = _session_of(app, {talker.client.client_id})
    try:
        assert a.wait_for(lambda c: len(c.frames) >= 1) and b.wait_for(lambda c: len(c.frames) >= 1)
        a.send({"type": "GuiUpdateMessage", "uuid": talker.gui.talk_button._impl.uuid, "updates": {"value": True}})
        assert a.wait_for(lambda _: talker.talking)
        assert a.wait_for(
            lambda c: any(
                "AnchorsplatMicChunk" in m["updates"].get("content", "") and "getUserMedia" in m["updates"]["content"]
                for m in c.of_type("GuiUpdateMessage")
            )
        ), "no talk script sent"

        start, n, token = time.perf_counter(), 256, talker.talk.token
        for seq in range(len(speech) // n):  # real time, like a microphone
            a.send(_chunk_message(token, seq, speech[seq * n : (seq + 1) * n]))
            b.send(_chunk_message("not-a-token", seq, speech[seq * n : (seq + 1) * n]))  # nobody's
            time.sleep(max(0.0, start + (seq + 1) * n / 16000 - time.perf_counter()))
        key = talker.talk.motion_key
        assert a.wait_for(
            lambda _: talker.talk.mic.chunks == len(speech) // n and talker.talk.mic.processed == len(speech) // n
        )
        assert talker.talk.mic.chunks == len(speech) // n and talker.talk.mic.dropped == 0
        assert app.context.mic_router.unrouted >= len(speech) // n  # the other tab's chunks had no valid token
        sent = [json.loads(m["value"]) for m in a.of_type("LocalStorageSetItemMessage") if m["key"].startswith(key)]
        frames = dict(f for update in sent for f in update["frames"])  # frame index -> jawOpen
        fps = app.settings.fps
        assert sorted(frames) == list(range(int(len(speech) / 16000 * fps))), "frames missing on the page"
        # frame k shows the audio up to k / fps: its jaw follows the loudness of the 100 ms before that
        ends = [int(k / fps * 16000) for k in frames]
        jaw = np.array(list(frames.values()))
        loud = np.array([np.sqrt(np.mean(speech[max(0, e - 1600) : e] ** 2)) if e else 0.0 for e in ends])
        r = np.corrcoef(jaw, loud)[0, 1]
        assert r >= 0.6, f"jaw vs loudness r = {r:.2f}"
        assert talker.stats.mic_ms is not None and talker.talk.server_latency_ms is not None
        # the other tab heard nothing and moved nothing
        assert other.state.live_face is None and not any(
            m["key"].startswith("anchorsplat.talk") for m in b.of_type("LocalStorageSetItemMessage")
        )
        names = list(other.last_motion.expression_names)
        assert "jawOpen" not in names or float(other.last_motion.expression[0, names.index("jawOpen")]) == 0.0
        assert not _notifications(a) and not _notifications(b)

        # bad input reaches the user as one notification, the stream keeps running
        a.send(_chunk_message(token, 10_000, speech[:256], sample_rate=44100))
        assert a.wait_for(lambda c: any("44100 Hz" in t for t in _notifications(c)))

        # the tab closes mid-utterance: its microphone worker and frame loop stop
        mic = talker.talk.mic
        for seq in range(20):
            a.send(_chunk_message(token, 20_000 + seq, speech[seq * n : (seq + 1) * n]))
        a.close()
        assert b.wait_for(lambda _: talker.closed and not mic.thread.is_alive() and not talker._thread.is_alive())
        assert talker.talk is None and talker.state.live_face is None
    finally:
        a.close()
        b.close()
