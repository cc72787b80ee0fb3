"""A scripted viser client speaking the websocket protocol directly (for tests and the FPS bench).

Wire format (viser 1.1, ``viser/infra/_infra.py``): the subprotocol is ``viser-v{version}``. Server -> client: one
binary message per window of messages: ``[u64 decompressed size][u64 compressed size][zstd(msgpack)]`` then raw
binary buffers, each 8-byte aligned, referenced from the msgpack as ``{"__binary_index": i, "dtype": ...}``; the
msgpack holds ``{"messages": [...], "binaryBufferLengths": [...]}`` and every message dict has a ``"type"``.
Client -> server: one msgpack dict per message (a ``"type"`` plus the message's fields).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from anchorsplat.gaussians.conventions import matrix_to_quat


def decode_window(raw: bytes) -> list[dict]:
    """One server -> client websocket message -> its list of message dicts, binary buffers resolved to bytes."""
    import msgspec
    import zstandard

    inner_size = int.from_bytes(raw[0:8], "little")
    compressed_size = int.from_bytes(raw[8:16], "little")
    inner = zstandard.ZstdDecompressor().decompress(raw[16 : 16 + compressed_size], max_output_size=inner_size)
    payload = msgspec.msgpack.decode(inner)
    buffers, offset = [], 16 + compressed_size
    for length in payload.get("binaryBufferLengths", ()):
        offset += (8 - offset % 8) % 8
        buffers.append(raw[offset : offset + length])
        offset += length

    def resolve(value):
        if isinstance(value, dict):
            if "__binary_index" in value and "dtype" in value:
                return buffers[value["__binary_index"]]
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return [resolve(m) for m in payload["messages"]]


def camera_message(
    position: tuple[float, float, float],
    look_at: tuple[float, float, float],
    *,
    width: int = 320,
    height: int = 240,
    fov_y_rad: float = 0.6,
) -> dict:
    """A ``ViewerCameraMessage`` for an OpenCV camera at ``position`` looking at ``look_at`` with +Y up."""
    eye, target = np.asarray(position, float), np.asarray(look_at, float)
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(-np.array([0.0, 1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)  # R_world_cam
    wxyz = matrix_to_quat(torch.from_numpy(R)).tolist()
    return {
        "type": "ViewerCameraMessage", "wxyz": [float(v) for v in wxyz], "position": [float(v) for v in eye],
        "fov": fov_y_rad, "near": 0.01, "far": 1000.0, "image_height": height, "image_width": width,
        "look_at": [float(v) for v in target], "up_direction": [0.0, 1.0, 0.0],
    }  # fmt: skip


@dataclass
class ScriptedClient:
    """Connects, sends a camera, and records what the server sends (in a background thread)."""

    url: str
    messages: list[dict] = field(default_factory=list)
    frames: list[dict] = field(default_factory=list)
    """``BackgroundImageMessage`` s received, with ``time`` (perf_counter) added."""

    def __post_init__(self) -> None:
        import viser
        from websockets.sync.client import connect

        self._ws = connect(
            self.url.replace("http", "ws", 1), subprotocols=[f"viser-v{viser.__version__}"], max_size=None
        )
        self._lock = threading.RLock()  # predicates passed to wait_for may call of_type
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self._ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - connection closed
                return
            if not isinstance(raw, bytes):
                continue
            now = time.perf_counter()
            for message in decode_window(raw):
                with self._lock:
                    self.messages.append(message)
                    if message.get("type") == "BackgroundImageMessage" and message.get("rgb_data"):
                        self.frames.append({**message, "time": now})

    def send(self, message: dict) -> None:
        import msgspec

        self._ws.send(msgspec.msgpack.encode(message))

    def send_camera(self, position, look_at, **kwargs) -> None:
        self.send(camera_message(position, look_at, **kwargs))

    def set_gui_value(self, uuid: str, value) -> None:
        """What the browser sends when a slider / dropdown / checkbox changes."""
        self.send({"type": "GuiUpdateMessage", "uuid": uuid, "updates": {"value": value}})

    def upload(self, uuid: str, filename: str, content: bytes, mime_type: str = "application/octet-stream") -> None:
        """What the browser sends for a file dropped on an upload button (parts of at most 512 KiB)."""
        import uuid as uuid_module

        transfer, part = str(uuid_module.uuid4()), 512 * 1024
        parts = [content[i : i + part] for i in range(0, len(content), part)]
        self.send({
            "type": "FileTransferStartUpload", "source_component_uuid": uuid, "transfer_uuid": transfer,
            "filename": filename, "mime_type": mime_type, "part_count": len(parts), "size_bytes": len(content),
        })  # fmt: skip
        for index, chunk in enumerate(parts):
            self.send({
                "type": "FileTransferPart", "source_component_uuid": uuid, "transfer_uuid": transfer,
                "part_index": index, "content": chunk,
            })  # fmt: skip

    def wait_for(self, predicate: Callable[[ScriptedClient], bool], timeout: float | int = 20.0) -> bool:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        return False

    def of_type(self, name: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m.get("type") == name]

    def close(self) -> None:
        self._stop.set()
        try:
            self._ws.close()
        finally:
            self._thread.join(timeout=2.0)


def decode_jpeg(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
