"""Where anchors sit in RoPE space ("Gloria"'s "RoPE as weak condition", the lookahead anchor of "Lookahead Anchoring").

Every anchor type has its own temporal RoPE index *outside* the generated window: content anchors at negative
indices (global, then one slot per viewpoint, one per expression), the lookahead anchor D latent frames beyond
the window's last frame. The window's own frames are at 0..F-1 in every chunk, so the same layout holds for
every chunk and the anchors are re-attached unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor

from .model import AnchorTokens

VIEWPOINTS = ("front", "back", "left", "right")
EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "angry", "disgust", "fear", "contempt")


@dataclass(frozen=True)
class AnchorLayout:
    global_t: float = -8.0
    """Temporal RoPE index of the global anchor (the photo)."""
    viewpoint_t: float = -16.0
    """Base index of the viewpoint anchors; front/back/left/right take base + 0..3."""
    expression_t: float = -32.0
    """Base index of the expression anchors; the named expressions take base + 0..7, others follow."""
    w_shift: float = 0.0
    """Spatial RoPE shift (in tokens) of content anchors, "AnyAvatar"'s anti copy-paste shift (0 = none)."""
    max_expressions: int = 16

    def viewpoint_position(self, name: str) -> float:
        if name not in VIEWPOINTS:
            raise ValueError(f"viewpoint anchor {name!r}: use one of {', '.join(VIEWPOINTS)}")
        return self.viewpoint_t + VIEWPOINTS.index(name)

    def expression_position(self, name: str) -> float:
        if name in EXPRESSIONS:
            return self.expression_t + EXPRESSIONS.index(name)
        slot = len(EXPRESSIONS) + sum(map(ord, name)) % (self.max_expressions - len(EXPRESSIONS))
        return self.expression_t + slot


@dataclass(frozen=True, eq=False)
class AnchorLatents:
    """Encoded anchors (each ``1 C 1 h w``); any subset may be present."""

    global_latent: Float[Tensor, "1 C 1 h w"] | None = None
    viewpoints: dict[str, Tensor] | None = None
    expressions: dict[str, Tensor] | None = None
    keyframe: Float[Tensor, "1 C 1 h w"] | None = None
    """Lookahead keyframe; None means self-keyframing with the global anchor."""


def window_anchors(
    latents: AnchorLatents,
    layout: AnchorLayout,
    window_frames: int,
    lookahead: int | None,
    content: bool = True,
) -> list[AnchorTokens]:
    """Anchor tokens for a window of ``window_frames`` latent frames.

    Args:
        latents: encoded anchors.
        layout: RoPE placement.
        window_frames: latent frames of the window (positions 0..window_frames-1).
        lookahead: distance D in latent frames beyond the window's last frame, or None for no lookahead anchor.
        content: attach the content anchors (global / viewpoint / expression).
    """
    out: list[AnchorTokens] = []
    if content:
        if latents.global_latent is not None:
            out.append(AnchorTokens(latents.global_latent, layout.global_t, 0.0, layout.w_shift))
        for name, lat in (latents.viewpoints or {}).items():
            out.append(AnchorTokens(lat, layout.viewpoint_position(name), 0.0, layout.w_shift))
        for name, lat in (latents.expressions or {}).items():
            out.append(AnchorTokens(lat, layout.expression_position(name), 0.0, layout.w_shift))
    if lookahead is not None:
        if lookahead < 1:
            raise ValueError(f"lookahead distance must be >= 1 latent frame, got {lookahead}")
        key = latents.keyframe if latents.keyframe is not None else latents.global_latent
        if key is not None:
            out.append(AnchorTokens(key, float(window_frames - 1 + lookahead)))
    return out
