"""A self-contained web page that plays a rigged avatar in the browser.

The folder holds ``index.html``, ``player.js`` (our own minimal WebGL2 splat renderer: linear blend skinning
of every Gaussian's centre and covariance in the vertex shader, expression morphs, back-to-front sorting; the
template lives in ``gaussians/web/``), ``avatar.js`` (the avatar and its animation as base64 typed arrays) and,
when given, the audio file, played in sync with the motion. Plain scripts, no third-party code and no network:
the page works offline and straight from ``file://`` (browsers refuse ES modules and ``fetch`` there, which is
why the player is our own small renderer rather than a splat library such as Spark: those ship as ES modules on
three.js and would need a web server and a download at export time).

The Gaussians use the same conversion as the ``.glb`` export (:func:`anchorsplat.gaussians.rigged.to_lbs`:
top-4 joint weights, per-Gaussian expression deltas), so the page poses exactly like
:func:`anchorsplat.gaussians.rigged.pose_lbs`. Colours are the SH degree-0 term (view-dependent SH is dropped).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from .assets import web_dir
from .conventions import matrix_to_quat, quat_normalize, quat_wxyz_to_xyzw
from .export_gltf import top4_weights
from .fileio import staged_folder
from .io import Avatar
from .motion import Motion
from .retarget import motion_to_rig
from .rigged import SH_C0, to_lbs
from .video import AUDIO_SUFFIXES

WEB_FORMAT = "anchorsplat.web"
WEB_VERSION = 1
TEMPLATES = web_dir()
MARKER = ".anchorsplat-web"


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def web_avatar_data(avatar: Avatar, motion: Motion | None = None) -> dict:
    """The JSON-able payload of ``avatar.js``: Gaussians (canonical, top-4 skinned), sparse expression deltas,
    skeleton and animation, as little-endian typed arrays in base64."""
    rig = avatar.rig.to("cpu", torch.float64)
    gaussians = avatar.gaussians.to("cpu", torch.float64)
    lbs = to_lbs(gaussians, rig)
    joints, weights = top4_weights(
        lbs.joint_indices.numpy().astype(np.int64), lbs.joint_weights.numpy(), rig.num_joints
    )
    rgb = (lbs.sh_coeffs[:, 0] * SH_C0 + 0.5).clamp(0, 1)
    rgba = torch.cat([rgb, torch.sigmoid(lbs.opacity_logits)[:, None]], 1)
    morphs = []
    for deltas in lbs.expression_deltas.numpy().astype(np.float32):
        rows = np.nonzero(np.any(deltas != 0, axis=1))[0]
        morphs.append({"index": _b64(rows.astype("<u4")), "delta": _b64(deltas[rows].astype("<f4"))})
    data = {
        "format": WEB_FORMAT,
        "version": WEB_VERSION,
        "count": len(gaussians),
        "numJoints": rig.num_joints,
        "jointNames": list(rig.joint_names),
        "parents": rig.parents.tolist(),
        "jointsRest": rig.joints_rest.float().reshape(-1).tolist(),
        "expressionNames": list(rig.expression_names),
        "buffers": {
            "centers": _b64(lbs.means_canonical.numpy().astype("<f4")),
            "quats": _b64(quat_wxyz_to_xyzw(quat_normalize(lbs.quats_canonical_wxyz)).numpy().astype("<f4")),
            "scales": _b64(torch.exp(lbs.log_scales).numpy().astype("<f4")),
            "colors": _b64(np.round(rgba.numpy() * 255).astype(np.uint8)),
            "joints": _b64(joints.astype("<u2")),
            "weights": _b64(weights.astype("<f4")),
        },
        "morphs": morphs,
        "animation": None if motion is None else _animation(rig, motion),
    }
    return data


def web_motion_arrays(rig, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the player poses from, per frame: local joint rotations (B J 4, xyzw, = glTF node rotations), the
    root joint's translation (B 3) and the rig's expression weights (B E), float32. The web export's animation
    and the viewer's client mode (one frame at a time) both send these."""
    rig = rig.to("cpu", torch.float64)
    inputs = motion_to_rig(motion.to(device="cpu", dtype=torch.float64), rig)
    quats = quat_wxyz_to_xyzw(matrix_to_quat(inputs.joint_rotations))
    root = rig.joints_rest[0] + inputs.root_translation
    return tuple(np.ascontiguousarray(a.numpy(), dtype="<f4") for a in (quats, root, inputs.expression))


def _animation(rig, motion: Motion) -> dict:
    if len(motion) == 0:
        raise ValueError("the motion has no frames")
    quats, root, weights = web_motion_arrays(rig, motion)
    return {
        "fps": float(motion.fps),
        "frames": len(motion),
        "rotations": _b64(quats),
        "translations": _b64(root),
        "weights": _b64(weights),
    }


def export_web(
    avatar: Avatar,
    out_dir: str | os.PathLike,
    *,
    motion: Motion | None = None,
    audio_path: str | os.PathLike | None = None,
    title: str = "anchorsplat avatar",
) -> Path:
    """Write the web player folder ``out_dir`` (replaced as a whole, atomically) and return it.

    Args:
        avatar: the rig and the Gaussians bound to it.
        out_dir: folder to create; an existing one must be empty or a previous web export.
        motion: SMPL-X-format motion the page loops (or plays in sync with the audio).
        audio_path: an audio file copied next to the page and played with the motion; it needs the motion that
            goes with it (audio-to-motion lives in ``anchorsplat.runtime``; the CLI runs it first).
        title: shown in the page's corner.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MARKER).exists())):
        raise ValueError(
            f"{out_dir} exists and is not an anchorsplat web export; pass a new or empty folder as the output"
        )
    audio_name = None
    if audio_path is not None:
        audio_path = Path(audio_path)
        if not audio_path.is_file():
            raise ValueError(f"audio file {audio_path} does not exist")
        if audio_path.suffix.lower() not in AUDIO_SUFFIXES:
            raise ValueError(f"audio file {audio_path}: browsers play {sorted(AUDIO_SUFFIXES)}; convert it first")
        if motion is None:
            raise ValueError("an audio track needs its motion: make one from the audio first (anchorsplat.runtime)")
        audio_name = "audio" + audio_path.suffix.lower()
    if len(avatar.gaussians) == 0:
        raise ValueError("the avatar has no Gaussians to export")

    data = web_avatar_data(avatar, motion)
    data["audio"] = audio_name
    html = (TEMPLATES / "index.html").read_text(encoding="utf-8")
    audio_tag = (
        f'<audio id="audio" src="{audio_name}" preload="auto"></audio><button id="play" hidden>play with audio</button>'
        if audio_name
        else ""
    )
    html = html.replace("{{TITLE}}", _escape(title)).replace("{{AUDIO}}", audio_tag)

    with staged_folder(out_dir) as staging:
        (staging / "index.html").write_text(html, encoding="utf-8")
        shutil.copyfile(TEMPLATES / "player.js", staging / "player.js")
        with open(staging / "avatar.js", "w", encoding="utf-8") as f:
            f.write("window.ANCHORSPLAT_AVATAR = ")
            json.dump(data, f, separators=(",", ":"))
            f.write(";\n")
        if audio_name:
            shutil.copyfile(audio_path, staging / audio_name)
        (staging / MARKER).write_text(json.dumps({"format": WEB_FORMAT, "version": WEB_VERSION}) + "\n")
    return out_dir


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
