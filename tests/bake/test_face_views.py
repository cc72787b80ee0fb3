"""The generated frames can show the face: the proxy's hair shell stays off it, the clip plan sweeps around the
face's front, and the score counts faces over the frames whose camera sees the face side of the head."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from anchorsplat.bake.landmarks import face_landmark_vertices
from anchorsplat.bake.pipeline import DEFAULT_RIG, subject_from_fit
from anchorsplat.bake.score import sees_face
from anchorsplat.bake.script import clip_script, face_yaw_deg
from anchorsplat.bake.synthetic import synthetic_avatar, synthetic_photo
from anchorsplat.diffusion.generator import Clip
from anchorsplat.diffusion.proxy import ProxyConfig, ProxyGenerator
from anchorsplat.diffusion.volume import in_front_of_face, volume_shell
from anchorsplat.gaussians.conventions import project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES
from anchorsplat.gaussians.rigged import canonical_means, pose_motion_mesh


@pytest.fixture(scope="module")
def bob():
    """A synthetic subject with a bob (hair beside the cheeks in the photo) and its true fit."""
    photo = synthetic_photo(synthetic_avatar("bob"), width=192, height=256)
    return subject_from_fit(photo.fit, photo.image, load_rig(DEFAULT_RIG))


def test_hair_shell_stays_out_of_the_face(bob):
    """The bob's volume shell would reach in front of the face (hair measured beside the cheeks stands off the
    cheek along its normal); the shell leaves those Gaussians out and keeps the rest, so neither the proxy's frames
    nor the fit's starting avatar (both use :func:`volume_shell`) have them. On the sample, the shell in front of
    the face hid it: dlib found faces in 18 of 72 generated frames instead of 31 without the shell."""
    config = ProxyConfig(num_gaussians=6000, backend="torch", volume_gaussians=3000)
    full = volume_shell(bob, config.volume_gaussians, seed=config.seed, backend="torch", clear_face=False).gaussians
    over_face = in_front_of_face(canonical_means(full, bob.rig), bob.rig)
    assert int(over_face.sum()) > 20  # the case the shell must handle is there
    shell = volume_shell(bob, config.volume_gaussians, seed=config.seed, backend="torch").gaussians
    assert len(shell) == len(full) - int(over_face.sum())
    assert not bool(in_front_of_face(canonical_means(shell, bob.rig), bob.rig).any())
    proxy = ProxyGenerator(config).texture(bob)
    bare = ProxyGenerator(dataclasses.replace(config, volume_gaussians=0)).texture(bob)
    assert torch.equal(proxy.face_ids[: len(bare)], bare.face_ids)
    assert torch.equal(proxy.face_ids[len(bare) :], shell.face_ids)  # the proxy carries the cleared shell


def test_in_front_of_face_is_the_front_of_the_head():
    rig = load_rig(DEFAULT_RIG)
    landmarks = rig.vertices_rest[list(face_landmark_vertices(rig).values())]
    forward = torch.tensor([0.0, 0.0, 0.02])
    # 2 cm in front of the eyes, nose, mouth and chin is in front of the face, and so is 2 cm in front of the
    # forehead (10 cm above the eyes); 2 cm behind the head joint, 13 cm above the eyes (above the hairline) or in
    # front of the chest is not
    assert bool(in_front_of_face(landmarks + forward, rig).all())
    head = rig.joints_rest[rig.joint_names.index("head")]
    head = head[:3, 3] if head.dim() == 2 else head
    assert bool(in_front_of_face((landmarks.mean(0) + torch.tensor([0.0, 0.1, 0.02]))[None], rig).all())
    others = torch.stack([head - forward, landmarks.mean(0) + torch.tensor([0.0, 0.13, 0.02]),
                          landmarks.mean(0) + torch.tensor([0.0, -0.3, 0.05])])  # fmt: skip
    assert not bool(in_front_of_face(others, rig).any())


def _turned_head(subject, degrees: float):
    full = subject.motion.full_pose().clone()
    full[:, SMPLX_JOINT_NAMES.index("head"), 1] = torch.deg2rad(torch.tensor(degrees))
    motion = type(subject.motion).from_full_pose(full, fps=subject.motion.fps)
    return dataclasses.replace(subject, motion=motion)


def test_clip_plan_sweeps_around_the_face_not_the_body(bob):
    """A head turned 25 degrees on the body (as in the sample) is straightened by the script's base pose
    (:data:`UPRIGHT_JOINTS`), so the face clips' middle camera is in front of the face, and every frame of the
    face-centred clips sees the face side of the head."""
    turned = _turned_head(bob, 25.0)
    assert abs(face_yaw_deg(bob)) < 3.0
    yaw = face_yaw_deg(turned)
    assert abs(yaw) < 3.0  # the script's head faces where its body faces, whatever the photo's head did
    clips = {s.name: s for s in clip_script(turned, frames=5, resolution=32, portrait=True)}
    for name in ("talk", "expressions", "head", "face", "arms"):
        spec = clips[name]
        back = -spec.cameras.T_world_cam[len(spec.motion) // 2, :3, 2]  # from the orbit's centre to the camera
        assert abs(float(torch.rad2deg(torch.atan2(back[0], back[2]))) - yaw) < 3.0, name
        clip = Clip(name, torch.zeros(len(spec.motion), 4, 4, 3), torch.zeros(len(spec.motion), 4, 4), spec.motion,
                    spec.cameras)  # fmt: skip
        assert bool(sees_face(turned.rig, clip).all()), name
    turn = clips["turn"]
    turn_clip = Clip("turn", torch.zeros(5, 4, 4, 3), torch.zeros(5, 4, 4), turn.motion, turn.cameras)
    facing = sees_face(turned.rig, turn_clip)
    assert facing.tolist() == [True, True, False, False, True]  # the orbit's back half sees the back of the head


def test_full_body_photo_frames_the_face_clips_on_the_head(bob):
    """A full-body photo's turn clip shows the whole body and its arms clip the body above the thighs, but its talk,
    expressions and head clips frame the head and shoulders: in a whole-body frame of the preview's 128 px the face
    is a few pixels."""
    clips = {s.name: s for s in clip_script(bob, frames=3, resolution=128, portrait=False)}
    for name in ("turn", "arms", "talk", "expressions", "head"):
        spec = clips[name]
        mesh = pose_motion_mesh(bob.rig, spec.motion)
        head = mesh.vertices[:, (mesh.vertices[0, :, 1] > mesh.vertices[0, :, 1].max() - 0.22)]  # top 22 cm
        for f in range(len(spec.motion)):
            camera = spec.cameras[f : f + 1]
            body_xy = project_points(mesh.vertices[f], camera)[0]
            head_xy = project_points(head[f], camera)[0]
            head_px = float(head_xy[:, 1].max() - head_xy[:, 1].min())
            whole = bool(((body_xy >= 0) & (body_xy <= 128)).all())
            if name == "turn":
                assert whole and head_px < 24, (name, f, head_px)
            elif name == "arms":
                assert not whole and 20 < head_px < 30, (name, f, head_px)
            else:  # the head fills a good share of the frame; the feet are out of it
                assert not whole and head_px > 30, (name, f, head_px)


def test_small_frames_are_rendered_finer_and_area_averaged(bob):
    """A preview frame (128 px) point-sampled at pixel centres aliases the face's small Gaussians into speckle;
    the proxy renders frames under ``supersample_below`` at an integer multiple and averages each pixel's area."""
    from anchorsplat.bake.script import face_framing_points
    from anchorsplat.diffusion.generator import Anchors, ClipSpec
    from anchorsplat.diffusion.proxy import supersample_factor, supersampled_render
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import pose

    camera = framing_cameras(face_framing_points(bob), torch.tensor([20.0]), width=40, height=40)
    assert supersample_factor(camera, 256) == 4 and supersample_factor(camera, 0) == 1
    assert (
        supersample_factor(framing_cameras(face_framing_points(bob), torch.tensor([0.0]), width=256, height=256), 256)
        == 1
    )
    config = ProxyConfig(num_gaussians=6000, backend="torch", supersample_below=120)
    generator = ProxyGenerator(config)
    (clip,) = generator.generate(bob, [ClipSpec("face", bob.motion, camera)], Anchors(bob.photo))
    white = torch.ones(3)
    posed = pose(generator.texture(bob), bob.rig, bob.motion.frame(0))
    fine_rgb, fine_alpha = supersampled_render(posed, camera, white, factor=3, backend="torch")
    torch.testing.assert_close(clip.frames[0], fine_rgb.clamp(0, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(clip.masks[0], fine_alpha, atol=1e-5, rtol=0)
    point_sampled = render(posed, camera, backend="torch", background=white).rgb[0, 0].clamp(0, 1)
    assert float((point_sampled - clip.frames[0]).abs().max()) > 0.05  # the two differ where it matters


def test_score_counts_turned_faces_dlib_cannot_identify():
    """dlib's frontal detector stops near 40 degrees of turn; the score counts a frame as showing a face when
    MediaPipe's full-range detector finds one and FaceMesh confirms it (the camera-man photo's head is turned
    about 70 degrees), keeps dlib's distance (and the fit weight it sets) only where dlib finds the face, and
    counts no face in a frame without one."""
    import numpy as np
    from PIL import Image

    from anchorsplat.bake.score import score_clips
    from anchorsplat.gaussians.conventions import orbit_cameras
    from anchorsplat.gaussians.motion import Motion

    def rgb(path: str, size: int = 256) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC))

    photo = rgb("tests/data/bake/grace_hopper.jpg", 512)
    frames = np.stack([rgb("tests/data/photos/cameraman.png"), np.full((256, 256, 3), 255, np.uint8), photo[::2, ::2]])
    clip = Clip("turned", torch.from_numpy(frames).float() / 255, torch.ones(3, 256, 256), Motion.zeros(3),
                orbit_cameras(torch.zeros(3), 2.0, torch.zeros(3), width=256, height=256))  # fmt: skip
    turned, blank, same = score_clips([clip], photo)
    assert turned.face and turned.distance is None and turned.weight == 1.0
    assert not blank.face and blank.distance is None
    assert same.face and same.distance is not None and same.distance < 0.3


def test_proxy_textures_each_subject_once(bob, monkeypatch):
    """The bake generates one clip per call (a restart keeps the clips made); the photo texture and the shell are
    made once per subject, not once per clip."""
    from anchorsplat.bake.script import face_framing_points
    from anchorsplat.diffusion.generator import Anchors, ClipSpec
    from anchorsplat.gaussians.conventions import framing_cameras

    generator = ProxyGenerator(ProxyConfig(num_gaussians=2000, backend="torch"))
    calls = []
    texture = generator.texture
    monkeypatch.setattr(generator, "texture", lambda subject: calls.append(subject) or texture(subject))
    spec = ClipSpec("face", bob.motion, framing_cameras(face_framing_points(bob), torch.zeros(1), width=16, height=16))
    first = generator.generate(bob, [spec], Anchors(bob.photo))[0]
    again = generator.generate(bob, [spec], Anchors(bob.photo))[0]
    assert len(calls) == 1 and torch.equal(first.frames, again.frames)
    generator.generate(dataclasses.replace(bob), [spec], Anchors(bob.photo))
    assert len(calls) == 2  # another subject is textured anew
