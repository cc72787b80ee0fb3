"""Bake views: the face crop camera (>= 256 px in every preset) and the portrait view of ``render``."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anchorsplat.bake.presets import PRESETS
from anchorsplat.bake.views import FACE_CROP_PX, face_crop, portrait_cameras
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_avatar

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = asset_path("sample.anchorsplat")


def test_face_crop_camera_sees_the_head_where_the_photo_does():
    h, w = 300, 200
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    photo = torch.stack([xs / w, ys / h, torch.zeros(h, w)], -1)  # a ramp: colour says where a pixel came from
    f = 250.0
    T = torch.eye(4)
    T[1, 1] = T[2, 2] = -1.0
    T[2, 3] = 2.0
    camera = Cameras(T[None], torch.tensor([[[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]]]), w, h)
    head = torch.randn(200, 3, generator=torch.Generator().manual_seed(1)) * 0.06 + torch.tensor([0.05, 0.3, 0.0])
    for preset in PRESETS.values():
        crop = face_crop(photo, torch.ones(h, w), camera, head, max(FACE_CROP_PX, preset.resolution))
        assert crop.image.shape[0] >= 256 and crop.camera.width >= 256
    crop = face_crop(photo, torch.ones(h, w), camera, head, FACE_CROP_PX)
    xy_photo = project_points(head, camera)[0]
    xy_crop = project_points(head, crop.camera)[0]
    inside = ((xy_crop >= 0) & (xy_crop < FACE_CROP_PX)).all(-1)
    assert int(inside.sum()) > 190  # the crop holds the head
    colour = crop.image[xy_crop[inside, 1].long(), xy_crop[inside, 0].long()]
    expected = torch.stack([xy_photo[inside, 0] / w, xy_photo[inside, 1] / h], -1)
    assert float((colour[:, :2] - expected).abs().max()) < 1.5 / h  # the same photo pixel, within a pixel


def test_portrait_cameras_frame_head_and_shoulders():
    avatar = load_avatar(SAMPLE)
    from anchorsplat.gaussians.rigged import canonical_means

    means = canonical_means(avatar.gaussians, avatar.rig).float()
    head = avatar.rig.joints_rest[avatar.rig.joint_names.index("head")].float()
    cams = portrait_cameras(means, head, torch.tensor([0.0, 30.0, -60.0]), 128)
    xy = project_points(head[None], cams)[:, 0]
    assert bool(((xy > 16) & (xy < 112)).all())  # the head is inside every frame
    feet = means[means[:, 1].argmin()][None]
    assert bool((project_points(feet, cams)[:, 0, 1] > 128).all())  # the feet are not


def test_portrait_face_is_a_fifth_of_the_frame():
    """Head and shoulders as in a portrait photo: eyes to chin span a fifth of the frame's height (16% when the
    view framed the chest too), so dlib and a user see the face in detail."""
    from anchorsplat.bake.landmarks import face_landmark_vertices
    from anchorsplat.bake.pipeline import DEFAULT_RIG
    from anchorsplat.bake.views import head_position, portrait_motion
    from anchorsplat.gaussians.io import load_rig
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    rig = load_rig(DEFAULT_RIG)
    mesh = pose_motion_mesh(rig, portrait_motion(rig))
    vertices = mesh.vertices[0]
    cameras = portrait_cameras(vertices, head_position(rig, mesh.T_world_joint[0]), torch.tensor([0.0]), 256)
    face = project_points(vertices[list(face_landmark_vertices(rig).values())], cameras)[0]
    eyes_to_chin = float(face[:, 1].max() - face[:, 1].min())
    assert 0.19 * 256 < eyes_to_chin < 0.3 * 256, eyes_to_chin


@pytest.mark.skipif(not SAMPLE.is_file(), reason="assets/sample.anchorsplat missing")
def test_render_view_portrait_frames_the_face(tmp_path):
    from anchorsplat.cli import main

    out = {}
    for view in ("front", "portrait"):
        main(["render", str(SAMPLE), "--view", view, "--out", str(tmp_path / f"{view}.png"), "--resolution", "96",
              "--backend", "torch", "--device", "cpu"])  # fmt: skip
        image = np.asarray(Image.open(tmp_path / f"{view}.png").convert("RGB")).astype(int)
        rows = np.nonzero((image < 235).any(axis=(1, 2)))[0]
        out[view] = (rows.min(), rows.max())
        if view == "portrait":  # arms hanging as in a portrait photo, not the T-pose's arms out to the edges
            assert not (image[:, :4] < 235).any() and not (image[:, -4:] < 235).any()
    # The whole body fills the front view's height; the portrait shows the top of the body enlarged: its content
    # reaches the bottom edge (the shoulders are cut there) and starts near the top (the head).
    assert out["front"][1] < 95 and out["portrait"][1] >= 94 and out["portrait"][0] < 25, out


def test_occluders_are_replaced_by_the_completed_body():
    from anchorsplat.bake.views import occluders_completed
    from anchorsplat.diffusion.texture import LABEL_BACKGROUND, LABEL_FACE, LABEL_HAND, LABEL_PERSON

    h, w = 6, 8
    photo = torch.zeros(h, w, 3)
    photo[..., 1] = 1.0  # green everywhere: whatever is not replaced stays green
    labels = torch.full((h, w), LABEL_PERSON)
    labels[:, :2] = LABEL_BACKGROUND  # a held object / the background
    labels[0, 4] = LABEL_HAND
    labels[5, 5] = LABEL_FACE
    mask = (labels != LABEL_BACKGROUND).float()
    body_rgb = torch.full((h, w, 3), 0.5)
    body_alpha = torch.ones(h, w)
    body_alpha[:, 0] = 0.0  # column 0: no body behind the object
    image, fit_mask = occluders_completed(photo, mask, labels, body_rgb, body_alpha)
    assert torch.equal(image[:, 2:][labels[:, 2:] != LABEL_HAND], photo[:, 2:][labels[:, 2:] != LABEL_HAND])
    assert torch.equal(image[0, 4], body_rgb[0, 4]) and torch.equal(image[:, 1], body_rgb[:, 1])
    assert torch.equal(fit_mask[:, 0], torch.zeros(h)) and torch.equal(fit_mask[:, 1], torch.ones(h))
    assert float(fit_mask[0, 4]) == 1.0 and float(fit_mask[5, 5]) == 1.0
    # no object colour (green) is left anywhere the fit sees as the body
    assert not bool(((image[..., 1] == 1.0) & (fit_mask > 0) & (labels != LABEL_PERSON) & (labels != LABEL_FACE)).any())
