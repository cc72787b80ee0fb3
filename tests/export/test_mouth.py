"""The mouth cavity: a ball "head" whose ``jawOpen`` drops its lower front (a sharp lip line at y = 0 on the front)
gets its lips cut and a dark cavity behind them. Opened, the mouth shows the cavity's dark colour where the
uncut surface shows its stretched skin; at rest, nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorsplat.export.mouth import MOUTH_RGB, MeshArrays, add_mouth, lip_band, split_lips, stretched_faces
from anchorsplat.export.raycast import render_mesh
from anchorsplat.gaussians.conventions import Cameras, intrinsics_from_fov, look_at

SKIN = (200, 150, 130)
RADIUS = 0.1


@pytest.fixture(scope="module")
def head() -> MeshArrays:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    v = np.asarray(sphere.vertices, np.float64)
    faces = np.asarray(sphere.faces, np.int64)
    # UVs in the left half of the texture (the right half is free, as xatlas leaves some).
    uvs = np.stack([0.25 + 0.24 * v[:, 0] / RADIUS, 0.5 - 0.49 * v[:, 1] / RADIUS], 1)
    texture = np.zeros((64, 64, 3), np.uint8)
    texture[:, :32] = SKIN
    jaw = np.zeros_like(v)
    # A mouth 4 cm wide in front, fading out over 4 cm towards its corners (gradually: no cut there).
    front = np.clip((v[:, 2] - 0.02) / 0.05, 0, 1) * np.clip((0.06 - np.abs(v[:, 0])) / 0.04, 0, 1)
    jaw[:, 1] = -0.02 * front * (v[:, 1] < -0.002)
    ones = np.ones((len(v), 1))
    return MeshArrays(v, faces, uvs, texture, np.zeros((len(v), 1), np.int64), ones, jaw[None])


def _front_view(mesh: MeshArrays, jaw_open: float) -> np.ndarray:
    size = 64
    cameras = Cameras(
        look_at(torch.tensor([[0.0, -0.01, 0.5]], dtype=torch.float64), torch.tensor([[0.0, -0.01, 0.0]],
                dtype=torch.float64)),  # fmt: skip
        intrinsics_from_fov(20.0, size, size)[None].double(), size, size,
    )  # fmt: skip
    vertices = mesh.vertices + jaw_open * mesh.expressions[0]
    rgb, cover = render_mesh(vertices, mesh.faces, mesh.uvs, mesh.texture, cameras)
    assert cover[0].mean() > 0.3  # the head fills the middle of the view
    return (rgb[0] * 255).round()


def test_the_lip_band_is_where_the_jaw_steps_in_front(head):
    band = lip_band(head.vertices, head.faces, head.expressions[0])
    centres = head.vertices[head.faces[band]].mean(1)
    assert band.sum() >= 10
    assert np.abs(centres[:, 1]).max() < 0.01 and centres[:, 2].min() > 0.02  # on the lip line, in front


def test_the_split_along_the_lip_line_opens_a_gap(head):
    jaw = head.expressions[0]
    moving = np.linalg.norm(jaw, axis=1)
    level = 0.5 * moving.max()
    lower = moving > level
    band = lip_band(head.vertices, head.faces, jaw) & lower[head.faces].any(1) & ~lower[head.faces].all(1)
    before = stretched_faces(head.vertices, head.faces, jaw)
    cut = split_lips(head, 0, band, level)
    n, kept = len(head.vertices), int((~band).sum())
    assert band.sum() >= 6 and len(cut.faces) == len(head.faces) + 2 * band.sum()
    np.testing.assert_array_equal(cut.faces[:kept], head.faces[~band])  # the other faces, in order
    # The new vertices lie on the split faces' edges, where the jaw's motion crosses the level, in pairs: one
    # moving with the jaw and one staying with the upper lip.
    new_moving = np.linalg.norm(cut.expressions[0, n:], axis=1)
    assert len(new_moving) % 2 == 0 and ((new_moving > level).sum() == (new_moving <= level).sum())
    assert np.abs(np.linalg.norm(cut.vertices[n:], axis=1) - RADIUS).max() < 0.002  # on the ball's surface
    after = stretched_faces(cut.vertices, cut.faces, cut.expressions[0])
    assert not after[kept:].any() and after.sum() < 0.5 * before.sum()


def test_the_opened_mouth_is_dark_not_skin_or_background(head):
    mouthed = add_mouth(head, 0)
    rest_before, rest_after = _front_view(head, 0.0), _front_view(mouthed, 0.0)
    np.testing.assert_array_equal(rest_after, rest_before)  # at rest the cavity is hidden inside
    before, after = _front_view(head, 1.0), _front_view(mouthed, 1.0)
    dark = (np.abs(after - np.array(MOUTH_RGB)).sum(-1) < 6) & (before.sum(-1) > 0)
    assert dark.sum() >= 6, dark.sum()  # the open mouth shows the cavity ...
    assert (np.abs(before[dark] - np.array(SKIN)).sum(-1) < 6).all()  # ... where the uncut head shows skin
    assert not (np.abs(rest_after - np.array(MOUTH_RGB)).sum(-1) < 6).any()


def test_no_jaw_motion_no_mouth(head):
    still = MeshArrays(head.vertices, head.faces, head.uvs, head.texture, head.skin_indices, head.skin_weights,
                       np.zeros_like(head.expressions))  # fmt: skip
    assert add_mouth(still, 0) is still
