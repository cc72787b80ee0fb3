"""Every stage follows its inputs' device: the fit, the proxy generator and the player run a few steps under
:class:`device_guard.DeviceGuard`, which fails on any tensor made off the inputs' device (see its docstring)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from device_guard import DeviceGuard, DeviceViolation

from anchorsplat.bake.fit import FitSettings, View, fit_avatar
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import bind_to_surface, pose, pose_motion_mesh
from anchorsplat.gaussians.synthetic import synthetic_rig


def _fit_inputs(size: int = 16, count: int = 60):
    rig = synthetic_rig()
    known = bind_to_surface(rig, count, generator=torch.Generator().manual_seed(2))
    motion = Motion.zeros(1)
    vertices = pose_motion_mesh(rig, motion).vertices[0]
    posed = pose(known, rig, motion)
    views = []
    for i, yaw in enumerate((0.0, 120.0)):
        camera = framing_cameras(posed.means[0], torch.tensor([yaw]), width=size, height=size)
        out = render(posed, camera, backend="torch", background=torch.ones(3))
        views.append(View(out.rgb[0, 0], out.alpha[0, 0, ..., 0], vertices, camera, 1.0, i == 0))
    init = bind_to_surface(rig, count, generator=torch.Generator().manual_seed(3))
    return rig, views, init


def test_the_guard_catches_a_tensor_made_off_the_inputs_device():
    """The guard itself, checking this file's calls: no device= fails, the inputs' device passes, a tensor
    that ends up on another device fails."""
    here = (str(Path(__file__).parent),)
    with DeviceGuard("cpu", here):
        torch.as_tensor(torch.zeros(3, device="cpu")).sum()
    with pytest.raises(DeviceViolation, match="torch.zeros without device="), DeviceGuard("cpu", here):
        torch.zeros(3)
    with pytest.raises(DeviceViolation, match="on meta"), DeviceGuard("cpu", here):
        torch.ones(2, device="meta")
    with DeviceGuard("cpu") as guard:  # code outside the checked folders is not counted
        torch.zeros(3).sum().item()
    assert guard.total_syncs() == 0


def test_the_fit_follows_its_inputs_device():
    rig, views, init = _fit_inputs()
    settings = FitSettings(iterations=12, densify_every=4, checkpoint_every=1000, backend="torch", log_every=6)
    with DeviceGuard("cpu") as guard:
        result = fit_avatar(rig, views, init, settings)
    assert len(result.losses) == 12 and result.counts[-1] != result.counts[0]  # densify ran under the guard
    # host reads in the fit: the loss log every log_every steps (2) and a few per densify (2), not one per step
    assert guard.syncs_in("bake/fit.py") <= 2 + 2 * 2, guard.syncs


def test_the_proxy_generator_follows_its_inputs_device():
    from anchorsplat.diffusion.generator import Anchors, ClipSpec, Subject
    from anchorsplat.diffusion.proxy import ProxyConfig, ProxyGenerator

    rig, views, _ = _fit_inputs(size=20)
    photo = views[0]
    subject = Subject(photo.image, photo.mask, rig, Motion.zeros(1), photo.camera)
    cameras = framing_cameras(photo.vertices, torch.tensor([0.0, 60.0]), width=16, height=16)
    spec = ClipSpec("turn", Motion.zeros(2), cameras)
    generator = ProxyGenerator(ProxyConfig(num_gaussians=120, backend="torch"))
    with DeviceGuard("cpu") as guard:
        (clip,) = generator.generate(subject, [spec], Anchors(subject.photo))
    assert clip.frames.shape == (2, 16, 16, 3) and float(clip.masks.max()) > 0.5
    assert guard.syncs_in("diffusion/proxy.py") <= 8, guard.syncs  # the texture's one-off host reads (KD-tree)


@pytest.mark.parametrize("model", ["baseline", "learned"])
def test_the_player_follows_its_inputs_device(model):
    from anchorsplat.gaussians.io import Avatar
    from anchorsplat.runtime.audio import Audio
    from anchorsplat.runtime.motion import load_face_model
    from anchorsplat.runtime.player import StreamingPlayer, iter_frames

    rig = synthetic_rig()
    avatar = Avatar(rig, bind_to_surface(rig, 100, generator=torch.Generator().manual_seed(0)))
    t = torch.arange(4800, dtype=torch.float64) / 16000
    speech = (0.3 * torch.sin(2 * torch.pi * 180 * t) * (torch.sin(2 * torch.pi * 3 * t) > 0)).float().numpy()
    face_model = load_face_model(model)  # weights load on the host (audio-to-motion runs there, numpy)
    with DeviceGuard("cpu"):
        player = StreamingPlayer(avatar, resolution=24, fps=10.0, model=face_model, view="face", device="cpu")
        frames = list(iter_frames(player, Audio(speech, 16000), 3))
    assert [f.index for f in frames] == [0, 1, 2]


def test_the_reports_portrait_renders_follow_the_avatars_device():
    import numpy as np

    from anchorsplat.bake.score import portrait_scores
    from anchorsplat.gaussians.io import Avatar

    rig = synthetic_rig()
    avatar = Avatar(rig, bind_to_surface(rig, 100, generator=torch.Generator().manual_seed(0)))
    photo = np.full((64, 64, 3), 200, np.uint8)
    with DeviceGuard("cpu"):
        scores = portrait_scores(avatar, photo, yaws_deg=(0.0, 30.0), size=32, backend="torch")
    assert [s.yaw_deg for s in scores] == [0.0, 30.0] and scores[0].image.shape == (32, 32, 3)
