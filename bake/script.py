"""Stage 2: the clip script. The synthetic clips to generate, as SMPL-X-format motion plus cameras, so
every frame's pose, expression and camera are known by construction:

- ``turn``: the camera orbits the body once (front, sides, back), with small head motion;
- ``talk``: speech, from the front arc: the clip carries the speech's audio and its face motion (jaw, visemes,
  blinks, brows, head sway) made from that audio by the runtime's audio-to-motion model (:class:`Speech`, built
  by the CLI, which sees both packages); without a :class:`Speech`, scripted mouth shapes at syllable rate;
- ``expressions``: neutral, happy, sad, surprise, angry, each eased in and held;
- ``head``: the head turns and nods while the camera stays in front;
- ``arms``: gentle shoulder and elbow motion, seen from the front and the sides;
- ``face``: talking (the speech goes on from where ``talk`` stopped) and blinking, framed on the head from yaw
  -60 to +60 degrees at :data:`~.views.FACE_CROP_PX` pixels or more in every preset (identity lives in the face).
A portrait's clips are framed on the head and shoulders. A full-body photo's ``turn`` is framed on the whole body,
its ``arms`` on the body above mid-thigh, and its ``talk``, ``expressions`` and ``head`` clips still on the head and
shoulders: they are about the face, which in a whole-body frame of the preview's size is a few pixels no detector
(nor the fit) can use. The script's base pose keeps the photo's arms and legs but stands the body upright with the
head facing where the body faces (:data:`UPRIGHT_JOINTS`), and every clip's camera yaws are counted from where that
face looks (:func:`face_yaw_deg`): "front" is the face's front, so the face clips sweep around the face and not
around a head turned away from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from anchorsplat.diffusion.generator import ClipAudio, ClipSpec, Subject
from anchorsplat.gaussians.conventions import Cameras, framing_cameras
from anchorsplat.gaussians.fileio import FileFormat, read_safetensors, write_safetensors
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import pose_motion_mesh

from .views import (
    FACE_CROP_PX,
    PORTRAIT_CLIP_BELOW_HEAD,
    PORTRAIT_CLIP_RADIUS,
    head_forward,
    head_position,
    portrait_points,
)

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
UPPER_BODY = 0.6
"""A full-body photo's ``arms`` clip frames this share of the body's height from the top (down to mid-thigh)."""
SCRIPT_FPS = 15.0
"""Frame rate of every clip of the script (a :class:`Speech`'s face motion is made at this rate)."""


@dataclass(frozen=True, eq=False)
class Speech:
    """The speech the talking clips are driven by: its mono audio and the face motion the runtime's audio-to-motion
    model made from it at :data:`SCRIPT_FPS` (SMPL-X neck/head/spine3/jaw rotations + ARKit expression channels,
    already adapted to the bake's rig so that the jaw is not counted twice). Frame k of ``face`` shows time
    k / fps of ``audio``."""

    audio: ClipAudio
    face: Motion

    def __post_init__(self) -> None:
        if self.audio.waveforms.shape[0] != 1:
            raise ValueError(f"speech: one mono track expected, got {self.audio.waveforms.shape[0]}")
        if abs(self.face.fps - SCRIPT_FPS) > 1e-6:
            raise ValueError(f"speech: the face motion must be at {SCRIPT_FPS} fps, got {self.face.fps}")

    def segment(self, start: int, frames: int) -> tuple[Motion, ClipAudio]:
        """``frames`` face frames from frame ``start`` and the audio they show, cut at the same instants. A speech
        shorter than that loops, audio and face together (one period: the face's frames, the audio padded with
        silence to their length)."""
        start = start % len(self.face)
        index = torch.arange(start, start + frames) % len(self.face)
        rate = self.audio.sample_rate
        first, count = round(start / SCRIPT_FPS * rate), round(frames / SCRIPT_FPS * rate)
        period = round(len(self.face) / SCRIPT_FPS * rate)
        one = F.pad(self.audio.waveforms, (0, max(0, period - self.audio.waveforms.shape[1])))[:, :period]
        wave = one.repeat(1, -(-(first + count) // period))[:, first : first + count]
        face = self.face
        motion = Motion.from_full_pose(face.full_pose()[index], face.transl[index], face.expression[index],
                                       face.expression_names, face.fps)  # fmt: skip
        return motion, ClipAudio(wave, rate)


def _speaking(base: torch.Tensor, face: Motion) -> Motion:
    """The base body pose with a speaking face on top: the face's neck, head and spine3 rotations added (small
    angles), its jaw in place of the base's, its expression channels by name (the script's channels it lacks stay
    0; the face's blinks and brows come from the audio-to-motion model's procedural upper face)."""
    full = base.clone()
    face_full = face.full_pose().to(full)
    for joint in ("neck", "head", "spine3"):
        full[:, J[joint]] += face_full[:, J[joint]]
    full[:, J["jaw"]] = face_full[:, J["jaw"]]
    names = ARKIT_CHANNELS + tuple(n for n in face.expression_names if n not in ARKIT_CHANNELS)
    expression = full.new_zeros(len(full), len(names))
    for i, name in enumerate(face.expression_names):
        expression[:, names.index(name)] = face.expression[:, i].to(full)
    return Motion.from_full_pose(full, expression=expression.clamp(0, 1), expression_names=names, fps=face.fps)


UPRIGHT_JOINTS = ("spine1", "spine2", "spine3", "neck", "head")
"""Joints the script straightens: the clips show the person upright with the head facing where the body faces."""


def _base_pose(subject: Subject, frames: int) -> torch.Tensor:
    """The photo's body pose (arms, legs), upright and facing the world's +Z: the script's cameras move instead of
    the body. The photo's torso twist, lean and head turn (:data:`UPRIGHT_JOINTS`) are not kept: a 3/4-view photo
    is a turned head on a turned torso, and kept, every "front" frame would show that head turned away (on the
    3/4-view test photo, 55 degrees: faces were found in 2 of 72 generated frames)."""
    full = subject.motion.full_pose()[:1].repeat(frames, 1, 1).clone()
    full[:, 0] = 0.0
    full[:, [SMPLX_JOINT_NAMES.index(name) for name in UPRIGHT_JOINTS]] = 0.0
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
    return portrait_points(vertices, head, PORTRAIT_CLIP_BELOW_HEAD, PORTRAIT_CLIP_RADIUS)


def clip_script(
    subject: Subject, *, frames: int, resolution: int, portrait: bool, speech: Speech | None = None
) -> list[ClipSpec]:
    """All clips of the script (see the module docstring); ``speech`` drives the talking clips."""
    fps = SCRIPT_FPS
    body = framing_points(subject, portrait).detach().float()
    bust = body if portrait else framing_points(subject, True).detach().float()
    upper = (
        body if portrait else body[body[:, 1] > body[:, 1].max() - UPPER_BODY * (body[:, 1].max() - body[:, 1].min())]
    )
    t = torch.linspace(0, 1, frames)
    front = face_yaw_deg(subject)

    def cameras(yaws: torch.Tensor, pitch: float = 0.0, points: torch.Tensor = body):
        yaws = front + torch.as_tensor(yaws, dtype=torch.float32)
        return framing_cameras(points, yaws, width=resolution, height=resolution, pitch_deg=pitch, margin=1.15)

    def motion(full: torch.Tensor, weights: list[dict[str, float]]) -> Motion:
        return Motion.from_full_pose(full, expression=_expression(frames, weights), expression_names=ARKIT_CHANNELS,
                                     fps=fps)  # fmt: skip

    clips = []
    # turn: a full orbit, head drifting gently
    full = _base_pose(subject, frames)
    full[:, J["head"], 1] += 0.15 * torch.sin(2 * math.pi * t)
    clips.append(ClipSpec("turn", motion(full, _blinks(frames)), cameras(360.0 * t * (frames - 1) / frames)))
    # talk: the speech (audio + the face motion made from it), a slow sweep across the front
    if speech is not None:
        face, audio = speech.segment(0, frames)
        talk_cameras = cameras(-25.0 + 50.0 * t, 0.0, bust)
        clips.append(ClipSpec("talk", _speaking(_base_pose(subject, frames), face), talk_cameras, audio))
    else:  # scripted visemes at syllable rate, blinks, a gentle nod
        weights = [dict(VISEMES[k % len(VISEMES)]) | b for k, b in enumerate(_blinks(frames, 7))]
        full = _base_pose(subject, frames)
        full[:, J["head"], 0] += 0.06 * torch.sin(4 * math.pi * t)
        clips.append(ClipSpec("talk", motion(full, weights), cameras(-25.0 + 50.0 * t, 0.0, bust)))
    # expressions: each held for a share of the clip
    names = list(EXPRESSIONS)
    weights = [EXPRESSIONS[names[min(int(x * len(names)), len(names) - 1)]] for x in t.tolist()]
    clips.append(
        ClipSpec("expressions", motion(_base_pose(subject, frames), weights), cameras(20.0 - 40.0 * t, 5.0, bust))
    )
    # head: turns and nods, front camera
    full = _base_pose(subject, frames)
    full[:, J["neck"], 1] += 0.35 * torch.sin(2 * math.pi * t)
    full[:, J["head"], 1] += 0.35 * torch.sin(2 * math.pi * t)
    full[:, J["head"], 0] += 0.2 * torch.sin(4 * math.pi * t)
    clips.append(ClipSpec("head", motion(full, _blinks(frames, 5)), cameras(torch.zeros(frames), 0.0, bust)))
    # arms: gentle shoulder/elbow motion from the front and the sides
    full = _base_pose(subject, frames)
    swing = torch.sin(2 * math.pi * t)
    full[:, J["left_shoulder"], 2] += 0.25 * swing
    full[:, J["right_shoulder"], 2] -= 0.25 * swing
    full[:, J["left_elbow"], 1] -= 0.3 * (1 + swing) / 2
    full[:, J["right_elbow"], 1] += 0.3 * (1 + swing) / 2
    clips.append(ClipSpec("arms", motion(full, _blinks(frames, 11)), cameras(-60.0 + 120.0 * t, 0.0, upper)))
    # face: close-up at no less than the face crop's size, a sweep from one 3/4 profile to the other
    face_points = face_framing_points(subject)
    face_size = max(FACE_CROP_PX, resolution)
    face_cameras = framing_cameras(face_points, front - 60.0 + 120.0 * t, width=face_size, height=face_size,
                                   margin=1.1)  # fmt: skip
    if speech is not None:  # the speech goes on where the talk clip stopped
        face, audio = speech.segment(frames, frames)
        clips.append(ClipSpec("face", _speaking(_base_pose(subject, frames), face), face_cameras, audio))
    else:
        weights = [dict(VISEMES[k % len(VISEMES)]) | b for k, b in enumerate(_blinks(frames, 6))]
        clips.append(ClipSpec("face", motion(_base_pose(subject, frames), weights), face_cameras))
    return clips


def face_yaw_deg(subject: Subject) -> float:
    """Yaw (degrees, :func:`~anchorsplat.gaussians.conventions.orbit_cameras`' convention: 0 on +Z) of the camera
    that sees the face of the script's base pose from the front; 0 for a rig without a head joint."""
    neutral = Motion.from_full_pose(_base_pose(subject, 1), fps=subject.motion.fps)
    forward = head_forward(subject.rig, pose_motion_mesh(subject.rig, neutral).T_world_joint)
    if forward is None:
        return 0.0
    return math.degrees(math.atan2(float(forward[0, 0]), float(forward[0, 2])))


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


# --- the script file (the job's script/script.safetensors) ----------------------------------------------------------

SCRIPT_FILE = FileFormat(
    "anchorsplat.clip-script", 1, "clip script", "rerun the bake with --force script", unversioned=1
)  # written before it carried its format name, a script reads as version 1 (older job folders resume)


def save_script(path: Path, specs: list[ClipSpec]) -> None:
    """The clip script as one safetensors file (motion, cameras and speech of every clip), atomically."""
    tensors, meta = {}, {"clips": []}
    for spec in specs:
        tensors[f"{spec.name}.full_pose"] = spec.motion.full_pose().float().reshape(len(spec.motion), -1).contiguous()
        tensors[f"{spec.name}.transl"] = spec.motion.transl.float().contiguous()
        tensors[f"{spec.name}.expression"] = spec.motion.expression.float().contiguous()
        tensors[f"{spec.name}.T_cam_world"] = spec.cameras.T_cam_world.float().contiguous()
        tensors[f"{spec.name}.Ks"] = spec.cameras.Ks.float().contiguous()
        clip_meta = {
            "name": spec.name,
            "fps": spec.motion.fps,
            "width": spec.cameras.width,
            "height": spec.cameras.height,
            "expression_names": list(spec.motion.expression_names),
        }
        if spec.audio is not None:  # the clip's speech rides in the script, so a resumed job generates from it
            tensors[f"{spec.name}.audio"] = spec.audio.waveforms.float().contiguous()
            clip_meta["sample_rate"] = spec.audio.sample_rate
        meta["clips"].append(clip_meta)
    write_safetensors(path, SCRIPT_FILE, tensors, meta)


def load_script(path: Path) -> list[ClipSpec]:
    """The clips of a script written by :func:`save_script`; a clear error for a damaged or foreign file."""
    meta, t = read_safetensors(path, SCRIPT_FILE)
    try:
        return _script_from(meta, t)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise SCRIPT_FILE.error(path, f"has inconsistent contents ({type(exc).__name__}: {exc})") from None


def _script_from(meta: dict, t: dict[str, torch.Tensor]) -> list[ClipSpec]:
    specs = []
    for c in meta["clips"]:
        n = c["name"]
        motion = Motion.from_full_pose(
            t[f"{n}.full_pose"].reshape(-1, 55, 3),
            t[f"{n}.transl"],
            t[f"{n}.expression"],
            tuple(c["expression_names"]),
            c["fps"],
        )
        audio = ClipAudio(t[f"{n}.audio"], int(c["sample_rate"])) if f"{n}.audio" in t else None
        cameras = Cameras(t[f"{n}.T_cam_world"], t[f"{n}.Ks"], c["width"], c["height"])
        specs.append(ClipSpec(n, motion, cameras, audio))
    return specs
