"""A small glTF binary (``.glb``) builder: one binary buffer, one tightly packed buffer view per accessor."""

from __future__ import annotations

import json
import struct

import numpy as np

# glTF enums
FLOAT, UBYTE, USHORT, UINT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
POINTS, TRIANGLES = 0, 4
TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_GLB_MAGIC, _CHUNK_JSON, _CHUNK_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


class GlbBuilder:
    def __init__(self) -> None:
        self.json: dict = {"buffers": [], "bufferViews": [], "accessors": []}
        self._chunks: list[bytes] = []
        self._offset = 0

    def view(self, data: np.ndarray, target: int | None = None) -> int:
        raw = np.ascontiguousarray(data).tobytes()
        pad = (-self._offset) % 4
        if pad:
            self._chunks.append(b"\0" * pad)
            self._offset += pad
        entry = {"buffer": 0, "byteOffset": self._offset, "byteLength": len(raw)}
        if target is not None:
            entry["target"] = target
        self._chunks.append(raw)
        self._offset += len(raw)
        self.json["bufferViews"].append(entry)
        return len(self.json["bufferViews"]) - 1

    def accessor(
        self, data: np.ndarray, *, target: int | None = None, bounds: bool = False, normalized: bool = False
    ) -> int:
        """An accessor over ``data`` (N or N x C, dtype float32 / uint8 / uint16 / uint32)."""
        data = np.ascontiguousarray(data)
        width = 1 if data.ndim == 1 else int(np.prod(data.shape[1:]))
        entry = {
            "bufferView": self.view(data, target),
            "componentType": component_type(data.dtype),
            "count": int(data.shape[0]),
            "type": TYPES[width],
        }
        if normalized:
            entry["normalized"] = True
        if bounds:
            entry.update(bounds_of(data.reshape(data.shape[0], width)))
        return self._add_accessor(entry)

    def sparse_accessor(self, data: np.ndarray, *, bounds: bool = True) -> int:
        """A float accessor stored sparsely (zeros + the non-zero rows): morph targets move few vertices."""
        data = np.ascontiguousarray(data, dtype=np.float32)
        rows = np.nonzero(np.any(data != 0, axis=1))[0]
        if len(rows) * 2 > len(data):  # dense is smaller than indices + values
            return self.accessor(data, bounds=bounds)
        entry = {"componentType": FLOAT, "count": int(data.shape[0]), "type": TYPES[data.shape[1]]}
        if bounds:
            entry.update(bounds_of(data))
        if len(rows):
            index_dtype = np.uint16 if data.shape[0] <= 65535 else np.uint32
            entry["sparse"] = {
                "count": int(len(rows)),
                "indices": {
                    "bufferView": self.view(rows.astype(index_dtype)),
                    "componentType": component_type(index_dtype),
                },
                "values": {"bufferView": self.view(data[rows])},
            }
        return self._add_accessor(entry)

    def _add_accessor(self, entry: dict) -> int:
        self.json["accessors"].append(entry)
        return len(self.json["accessors"]) - 1

    def to_bytes(self) -> bytes:
        binary = b"".join(self._chunks)
        binary += b"\0" * ((-len(binary)) % 4)
        self.json["buffers"] = [{"byteLength": len(binary)}]
        text = json.dumps(self.json, separators=(",", ":")).encode()
        text += b" " * ((-len(text)) % 4)
        total = 12 + 8 + len(text) + 8 + len(binary)
        return b"".join(
            [
                struct.pack("<III", _GLB_MAGIC, 2, total),
                struct.pack("<II", len(text), _CHUNK_JSON),
                text,
                struct.pack("<II", len(binary), _CHUNK_BIN),
                binary,
            ]
        )


def component_type(dtype) -> int:
    table = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UBYTE, np.dtype(np.uint16): USHORT,
             np.dtype(np.uint32): UINT}  # fmt: skip
    if np.dtype(dtype) not in table:
        raise TypeError(f"no glTF component type for {dtype}")
    return table[np.dtype(dtype)]


def bounds_of(data2d: np.ndarray) -> dict:
    if len(data2d) == 0:
        return {"min": [0.0] * data2d.shape[1], "max": [0.0] * data2d.shape[1]}
    return {"min": data2d.min(0).tolist(), "max": data2d.max(0).tolist()}
