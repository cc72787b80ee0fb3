"""Regenerate assets/sample/full_body.png: a synthetic full-body subject (the default Anny body avatar,
assets/body.anchorsplat, arms relaxed, seen from the front on a light background, 384 x 512).

    python assets/sample/make_full_body.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.io import load_avatar
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import pose
from anchorsplat.gaussians.video import to_uint8, write_image

HERE = Path(__file__).resolve().parent


def main() -> None:
    avatar = load_avatar(HERE.parent / "body.anchorsplat")
    full = torch.zeros(1, 55, 3)
    full[0, SMPLX_JOINT_NAMES.index("left_shoulder")] = torch.tensor([0.0, 0.0, -1.2])  # arms down, relaxed
    full[0, SMPLX_JOINT_NAMES.index("right_shoulder")] = torch.tensor([0.0, 0.0, 1.2])
    full[0, SMPLX_JOINT_NAMES.index("left_elbow")] = torch.tensor([0.0, -0.3, 0.0])
    full[0, SMPLX_JOINT_NAMES.index("right_elbow")] = torch.tensor([0.0, 0.3, 0.0])
    posed = pose(avatar.gaussians, avatar.rig, Motion.from_full_pose(full))
    camera = framing_cameras(posed.means[0], torch.tensor([0.0]), width=384, height=512)
    with torch.no_grad():
        out = render(posed, camera, background=torch.tensor([0.86, 0.88, 0.9]))
    write_image(HERE / "full_body.png", to_uint8(out.rgb[0, 0]))
    print(f"wrote {HERE / 'full_body.png'}")


if __name__ == "__main__":
    main()
