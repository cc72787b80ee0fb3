"""Live viewer under talking tabs: microphone-chunk-to-motion-sent latency, frame rate, RSS and CPU; ONE JSON line.

    python bench/viewer_talk.py --threads 1                                  # 1 tab, 10 s of talk
    python bench/viewer_talk.py --tabs 8 --seconds 600 --orbit --threads 1   # the soak: 8 tabs x 10 min

A viewer runs in this process on the shipped demo avatar; each tab is a scripted websocket client (viser's wire
protocol) that presses "talk" and then streams the sample speech (looped) as a browser's talk script does:
16-bit 16 kHz chunks of ``--chunk-ms`` at real-time pace, with the tab's token. ``--orbit`` also moves every tab's
camera ten times a second (a user dragging). Reported:

- ``mic_to_motion_sent_ms`` (p50, p95, max over all tabs): a chunk arriving on the server -> the face frame it
  completes queued to the tab's websocket (causal audio-to-motion, 0 look-ahead); the browser adds the network
  and its own poll (the Chromium test prints its end-to-end figure);
- reference, same run: ``push_ms`` (p50), the same chunks through a bare ``AudioToMotion`` (no viewer);
- ``fps`` per tab (frames sent per second), ``dropped`` chunks, and RSS (MiB) / CPU (% of one core) sampled
  every ``--sample-s`` (start, peak, end, mean) and, with ``--tabs`` > 1, RSS after all tabs closed.

On a CPU that other processes keep busy pass ``--threads 1`` (torch's intra-op pool thrashes on shared cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import psutil
import torch

from anchorsplat.gaussians.assets import assets_dir
from anchorsplat.gaussians.conventions import matrix_to_quat
from anchorsplat.runtime.audio import SAMPLE_RATE, load_audio
from anchorsplat.runtime.motion import AudioToMotion, load_face_model

ASSETS = assets_dir()


def camera(eye: np.ndarray, target: np.ndarray, width: int, height: int) -> dict:
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross([0.0, -1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    return {
        "type": "ViewerCameraMessage", "wxyz": matrix_to_quat(torch.from_numpy(R)).tolist(),
        "position": eye.tolist(), "fov": 0.55, "near": 0.01, "far": 1000.0, "image_height": height,
        "image_width": width, "look_at": target.tolist(), "up_direction": [0.0, 1.0, 0.0],
    }  # fmt: skip


class Tab:
    """A scripted browser tab: websocket, camera, a receiver thread that drains what the server sends."""

    def __init__(self, url: str):
        import viser
        from websockets.sync.client import connect

        self.ws = connect(url.replace("http", "ws", 1), subprotocols=[f"viser-v{viser.__version__}"], max_size=None)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while not self.stop.is_set():
            try:
                self.ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - closed
                return

    def send(self, message: dict) -> None:
        with self.lock:
            self.ws.send(msgspec.msgpack.encode(message))

    def close(self) -> None:
        self.stop.set()
        self.ws.close()
        self.thread.join(timeout=2.0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--avatar", type=Path, default=ASSETS / "body.anchorsplat")
    parser.add_argument("--tabs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-ms", type=float, default=16.0)
    parser.add_argument("--orbit", action="store_true")
    parser.add_argument("--mode", choices=("server render", "client splats"), default="server render")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--max-resolution", type=int, default=256)
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--sample-s", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    chunk = int(round(args.chunk_ms * SAMPLE_RATE / 1000))
    speech = load_audio(ASSETS / "sample_speech.flac").samples.astype(np.float32)
    pcm = (np.clip(speech, -1, 1) * 32767).round().astype("<i2")

    # reference: the same chunks through a bare causal stream
    bare = AudioToMotion(load_face_model(args.model), fps=args.fps)
    push_ms = []
    for i in range(0, min(len(speech), 5 * SAMPLE_RATE) - chunk + 1, chunk):
        start = time.perf_counter()
        bare.push(speech[i : i + chunk])
        push_ms.append(1000 * (time.perf_counter() - start))

    process = psutil.Process()
    settings = ViewerSettings(
        port=0, model=args.model, mode=args.mode, fps=args.fps, max_resolution=args.max_resolution,
        max_tabs=max(8, args.tabs),
    )  # fmt: skip
    app = ViewerApp(args.avatar, settings)
    target, distance = np.asarray(app.avatar.target, float), app.avatar.distance
    tabs, sessions = [], []
    for i in range(args.tabs):
        tab = Tab(app.url)
        known = set(app.sessions)
        tab.send(camera(target + [0.0, 0.0, distance], target, 320 + 8 * i, 240))
        deadline = time.perf_counter() + 60
        while not (new := [s for cid, s in list(app.sessions.items()) if cid not in known]):
            assert time.perf_counter() < deadline, "a tab got no session"
            time.sleep(0.05)
        session = new[0]
        tab.send({"type": "GuiUpdateMessage", "uuid": session.gui.talk_button._impl.uuid, "updates": {"value": True}})
        while session.talk is None:
            time.sleep(0.02)
        tabs.append(tab)
        sessions.append(session)
    frames_before = [s.frames_sent for s in sessions]

    rss, cpu = [process.memory_info().rss / 2**20], []
    cpu_last, wall_last = sum(process.cpu_times()[:2]), time.perf_counter()
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < args.seconds:
        offset = (n * chunk) % (len(pcm) - chunk)
        for tab, session in zip(tabs, sessions, strict=True):
            tab.send({
                "type": "AnchorsplatMicChunk", "token": session.talk.token, "seq": n, "sample_rate": SAMPLE_RATE,
                "format": "s16le", "samples": pcm[offset : offset + chunk].tobytes(), "sent_ms": 1000 * now,
            })  # fmt: skip
            if args.orbit and n % max(1, int(0.1 * SAMPLE_RATE / chunk)) == 0:
                yaw = 0.5 * (now - start)
                eye = target + distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
                tab.send(camera(eye, target, 320, 240))
        if now - wall_last >= args.sample_s:
            used = sum(process.cpu_times()[:2])
            cpu.append(100 * (used - cpu_last) / (now - wall_last))
            rss.append(process.memory_info().rss / 2**20)
            cpu_last, wall_last = used, now
        n += 1
        time.sleep(max(0.0, start + n * chunk / SAMPLE_RATE - time.perf_counter()))
    elapsed = time.perf_counter() - start
    time.sleep(0.5)
    latencies = [v for s in sessions for v in s.talk.latencies_ms]
    fps = [(s.frames_sent - f0) / elapsed for s, f0 in zip(sessions, frames_before, strict=True)]
    dropped = sum(s.talk.mic.dropped for s in sessions)
    for tab in tabs:
        tab.close()
    deadline = time.perf_counter() + 60
    while app.sessions and time.perf_counter() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    rss_closed = process.memory_info().rss / 2**20
    app.stop()

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values else None

    result = {
        "bench": "viewer_talk", "tabs": args.tabs, "seconds": round(elapsed, 1), "orbit": args.orbit,
        "mode": args.mode, "model": app.model_name, "chunk_ms": 1000 * chunk / SAMPLE_RATE,
        "gaussians": len(app.avatar.avatar.gaussians),
        "mic_to_motion_sent_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "max": pct(latencies, 100)},
        "reference_push_ms": {"p50": pct(push_ms, 50), "p95": pct(push_ms, 95)},
        "latency_over_push_p50": round(pct(latencies, 50) / max(pct(push_ms, 50), 1e-3), 2) if latencies else None,
        "fps_per_tab": {"min": round(min(fps), 1), "mean": round(statistics.mean(fps), 1)},
        "chunks_dropped": dropped,
        "rss_mib": {
            "start": round(rss[0]), "peak": round(max(rss)), "end": round(rss[-1]), "closed": round(rss_closed),
        },
        "cpu_percent": {
            "mean": round(statistics.mean(cpu), 1) if cpu else None, "max": round(max(cpu), 1) if cpu else None,
        },
        "threads": args.threads or torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(), "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
