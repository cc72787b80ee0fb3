"""Render resolution that adapts to hold a frame rate (server render mode).

Rendering cost grows with the pixel count, so the image height moves by the square root of the ratio of the
frame budget to the measured frame time (smoothed), clamped per step so the picture never jumps: down when
frames are slow, up slowly when there is head-room, never above what the browser shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class AdaptiveResolution:
    target_fps: float = 30.0
    min_height: int = 96
    max_height: int = 1080
    height: int = 384
    smoothing: float = 0.3
    _frame_s: float | None = None

    def __post_init__(self) -> None:
        if not self.target_fps > 0:
            raise ValueError(f"target fps must be positive, got {self.target_fps}")
        if not 16 <= self.min_height <= self.max_height:
            raise ValueError(f"need 16 <= min_height <= max_height, got {self.min_height}, {self.max_height}")
        self.height = self._clamp(self.height)

    def _clamp(self, height: float | int) -> int:
        return int(min(max(round(height / 8) * 8, self.min_height), self.max_height))

    def size(self, aspect: float, display_height: int | None = None) -> tuple[int, int]:
        """(width, height) to render now for a view of ``aspect`` (width / height) shown ``display_height`` tall."""
        height = self.height if not display_height else min(self.height, max(display_height, self.min_height))
        height = self._clamp(height)
        return max(16, int(round(height * aspect))), height

    def update(self, frame_s: float) -> int:
        """Report how long the last frame took (render + encode + send); returns the next height."""
        self._frame_s = (
            frame_s if self._frame_s is None else (1 - self.smoothing) * self._frame_s + self.smoothing * frame_s
        )
        budget = 1.0 / self.target_fps
        ratio = budget / max(self._frame_s, 1e-6)
        if ratio < 0.9 or ratio > 1.6:  # dead band: no oscillation around the target
            factor = min(max(math.sqrt(ratio), 0.75), 1.1)
            self.height = self._clamp(self.height * factor)
        return self.height


@dataclass
class ProgressiveResolution:
    """Server-render resolution over time: while the camera or the avatar moves, the :class:`AdaptiveResolution`
    height (it targets a frame time); once still, refinement frames that double the height each step up to the
    full canvas (the browser's canvas height, capped by ``max_height``), then nothing until the next change.

    nerfstudio's viewer streams the same way: cheap frames during interaction, a sharp one when it stops. With
    the moving height ``h`` a still view reaches the canvas in ``ceil(log2(canvas / h))`` frames, each at most
    four times the pixels of the one before, so on the CPU renderer the full frame lands well within a second of
    stillness for the heights that hold the frame rate while moving.
    """

    adaptive: AdaptiveResolution
    still_after_s: float = 0.2
    """No change for this long counts as still."""
    _shown: int = 0

    def full_height(self, display_height: int | None) -> int:
        cap = self.adaptive.max_height
        return min(int(display_height), cap) if display_height else cap

    def moving_height(self, display_height: int | None) -> int:
        """The height of a frame while something moves (never above the canvas)."""
        return min(self.adaptive.size(1.0, display_height)[1], self.full_height(display_height))

    def refine_height(self, display_height: int | None) -> int | None:
        """The next refinement height of a still view, or None when the last frame sent was full size."""
        full = self.full_height(display_height)
        if self._shown >= full:
            return None
        step = max(self._shown * 2, self.adaptive.min_height)
        return full if step >= full else int(round(step / 8) * 8)

    def shown(self, height: int) -> None:
        """Record the height of the frame just sent."""
        self._shown = int(height)

    def invalidate(self) -> None:
        """The picture changed: the next still frames refine again from the moving height."""
        self._shown = 0


def frame_size(height: int, aspect: float, display: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of a frame ``height`` tall; exactly the canvas when ``height`` is the canvas height."""
    if display is not None and display[1] == height and display[0] > 0:
        return int(display[0]), int(height)
    return max(16, int(round(height * aspect))), int(height)
