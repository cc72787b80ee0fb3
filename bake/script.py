"""Stage 2: the clip script. The synthetic clips to generate, as SMPL-X-format motion plus cameras, so
every frame's pose, expression and camera are known by construction:

- ``turn``: the camera orbits the body once (front, sides, back), with small head motion;
- ``talk``: varied mouth shapes (open, round, wide, closed) at speech rate, with blinks, from the front arc;
- ``expressions``: neutral, happy, sad, surprise, angry, each eased in and held;
- ``head``: the head turns and nods while the camera stays in front;
- ``arms``: gentle shoulder and elbow motion, seen from the front and the sides;
- ``face``: talking and blinking, framed on the head from yaw -60 to +60 degrees at
  :data:`~.views.FACE_CROP_PX` pixels or more in every preset (identity lives in the face).
A portrait is framed on the head and shoulders, a full-body photo on the whole body.
"""

from __future__ import annotations

import math

import torch

from anchorsplat.diffusion.generator import ClipSpec, Subject
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import pose_motion_mesh

from .views import FACE_CROP_PX, head_position, portrait_points

ARKIT_CHANNELS = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft", "mouthPressRight", "browInnerUp",
    "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeWideLeft", "eyeWideRight", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5},
    "sad": {"mouthFrownLeft": 0.8, "mouthFrownRight": 0.8, "browInnerUp": 0.7},
    "surprise": {"jawOpen": 0.45, "browInnerUp": 0.8, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8,
                 "eyeWideLeft": 0.7, "eyeWideRight": 0.7},
    "angry": {"browDownLeft": 0.9, "browDownRight": 0.9, "noseSneerLeft": 0.5, "noseSneerRight": 0.5,
              "mouthPressLeft": 0.5, "mouthPressRight": 0.5},
}  # fmt: skip
# Mouth shapes cycled by the talking clip (open vowel, rounded, wide, closed bilabial).
VISEMES: tuple[dict[str, float], ...] = (
    {"jawOpen": 0.55},
    {"jawOpen": 0.25, "mouthFunnel": 0.6, "mouthPucker": 0.4},
    {"jawOpen": 0.2, "mouthStretchLeft": 0.5, "mouthStretchRight": 0.5},
    {"mouthClose": 0.4, "mouthPressLeft": 0.4, "mouthPressRight": 0.4},
    {"jawOpen": 0.35, "mouthSmileLeft": 0.3, "mouthSmileRight": 0.3},
)
J = {name: i for i, name in enumerate(SMPLX_JOINT_NAMES)}


def _base_pose(subject: Subject, frames: int) -> torch.Tensor:
    """The photo's body pose, facing the world's +Z (the script's cameras move instead of the body)."""
    full = subject.motion.full_pose()[:1].repeat(frames, 1, 1).clone()
    full[:, 0] = 0.0
    return full


def _expression(frames: int, weights_per_frame: list[dict[str, float]]) -> torch.Tensor:
    out = torch.zeros(frames, len(ARKIT_CHANNELS))
    for t, weights in enumerate(weights_per_frame):
        for name, value in weights.items():
            out[t, ARKIT_CHANNELS.index(name)] = value
    return out


def _blinks(frames: int, every: int = 9) -> list[dict[str, float]]:
    return [{"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0} if t % every == every - 1 else {} for t in range(frames)]


def framing_points(subject: Subject, portrait: bool) -> torch.Tensor:
    """The posed vertices the cameras must keep in frame (head and shoulders for a portrait)."""
    neutral = Motion.from_full_pose(_base_pose(subject, 1), fps=subject.motion.fps)
    mesh = pose_motion_mesh(subject.rig, neutral)
    vertices = mesh.vertices[0]
    if not portrait:
        return vertices
    head = head_position(subject.rig, mesh.T_world_joint[0])
    if head is None:
        top = vertices[:, 1].max()
        return vertices[vertices[:, 1] > top - 0.45]  # head and shoulders: the top 45 cm
    return portrait_points(vertices, head)


def clip_script(subject: Subject, *, frames: int, resolution: int, portrait: bool, fps: float = 15.0) -> list[ClipSpec]:
    """All clips of the script (see the module docstring)."""
    points = framing_points(subject, portrait).detach().float()
    t = torch.linspace(0, 1, frames)

    def cameras(yaws: torch.Tensor, pitch: float = 0.0):
        return framing_cameras(points, yaws, width=resolution, height=resolution, pitch_deg=pitch, margin=1.15)

    def motion(full: torch.Tensor, weights: list[dict[str, float]]) -> Motion:
        return Motion.from_full_pose(full, expression=_expression(frames, weights), expression_names=ARKIT_CHANNELS,
                                     fps=fps)  # fmt: skip

    clips = []
    # turn: a full orbit, head drifting gently
    full = _base_pose(subject, frames)
    full[:, J["head"], 1] += 0.15 * torch.sin(2 * math.pi * t)
    clips.append(ClipSpec("turn", motion(full, _blinks(frames)), cameras(360.0 * t * (frames - 1) / frames)))
    # talk: visemes at syllable rate, blinks, a slow sweep across the front
    weights = [dict(VISEMES[k % len(VISEMES)]) | b for k, b in enumerate(_blinks(frames, 7))]
    full = _base_pose(subject, frames)
    full[:, J["head"], 0] += 0.06 * torch.sin(4 * math.pi * t)
    clips.append(ClipSpec("talk", motion(full, weights), cameras(-25.0 + 50.0 * t)))
    # expressions: each held for a share of the clip
    names = list(EXPRESSIONS)
    weights = [EXPRESSIONS[names[min(int(x * len(names)), len(names) - 1)]] for x in t.tolist()]
    clips.append(ClipSpec("expressions", motion(_base_pose(subject, frames), weights), cameras(20.0 - 40.0 * t, 5.0)))
    # head: turns and nods, front camera
    full = _base_pose(subject, frames)
    full[:, J["neck"], 1] += 0.35 * torch.sin(2 * math.pi * t)
    full[:, J["head"], 1] += 0.35 * torch.sin(2 * math.pi * t)
    full[:, J["head"], 0] += 0.2 * torch.sin(4 * math.pi * t)
    clips.append(ClipSpec("head", motion(full, _blinks(frames, 5)), cameras(torch.zeros(frames))))
    # arms: gentle shoulder/elbow motion from the front and the sides
    full = _base_pose(subject, frames)
    swing = torch.sin(2 * math.pi * t)
    full[:, J["left_shoulder"], 2] += 0.25 * swing
    full[:, J["right_shoulder"], 2] -= 0.25 * swing
    full[:, J["left_elbow"], 1] -= 0.3 * (1 + swing) / 2
    full[:, J["right_elbow"], 1] += 0.3 * (1 + swing) / 2
    clips.append(ClipSpec("arms", motion(full, _blinks(frames, 11)), cameras(-60.0 + 120.0 * t)))
    # face: close-up at no less than the face crop's size, a sweep from one 3/4 profile to the other
    weights = [dict(VISEMES[k % len(VISEMES)]) | b for k, b in enumerate(_blinks(frames, 6))]
    face_points = face_framing_points(subject)
    face_size = max(FACE_CROP_PX, resolution)
    face_cameras = framing_cameras(face_points, -60.0 + 120.0 * t, width=face_size, height=face_size, margin=1.1)
    clips.append(ClipSpec("face", motion(_base_pose(subject, frames), weights), face_cameras))
    return clips


def face_framing_points(subject: Subject) -> torch.Tensor:
    """The posed vertices a face close-up frames: the head (within 15 cm of its axis, from 10 cm under the head
    joint up; the top 25 cm of the body for a rig without a head joint)."""
    neutral = Motion.from_full_pose(_base_pose(subject, 1), fps=subject.motion.fps)
    mesh = pose_motion_mesh(subject.rig, neutral)
    vertices = mesh.vertices[0].detach().float()
    head = head_position(subject.rig, mesh.T_world_joint[0])
    if head is None:
        return vertices[vertices[:, 1] > vertices[:, 1].max() - 0.25]
    near = (vertices[:, 1] > head[1] - 0.1) & ((vertices[:, [0, 2]] - head[[0, 2]]).norm(dim=-1) < 0.15)
    return vertices[near] if int(near.sum()) >= 10 else vertices
