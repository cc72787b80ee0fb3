"""Segmentation and visibility-aware texturing: masked pixels never colour a Gaussian, back-facing and occluded
surface is not painted, unseen surface is completed from the same body part."""

import numpy as np
import pytest
import torch

from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.segment import segment
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.diffusion.generator import Subject
from anchorsplat.diffusion.texture import (
    LABEL_BACKGROUND,
    LABEL_HAND,
    LABEL_PERSON,
    MIN_FACING_COS,
    PART_NAMES,
    photo_texture,
    triangle_parts,
)
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rigged import bind_to_surface, pose_motion_mesh, triangle_frames

ANNY_RIG = asset_path("anny_default.rig.safetensors")
SKIN = (0.8, 0.6, 0.5)
HAIR = (0.2, 0.12, 0.08)
GREEN = (0.0, 1.0, 0.0)
MAGENTA = (1.0, 0.0, 1.0)
SIZE = 200


@pytest.fixture(scope="module")
def scene():
    """Anny in its rest pose seen from the front: skin body, dark head, a green object held in front of the
    chest (left out of the person mask, as a segmenter does) and a magenta hand region on the belly."""
    import cv2

    rig = load_rig(ANNY_RIG)
    motion = Motion.zeros(1)
    f = float(0.5 * SIZE / np.tan(np.radians(22.5)))
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = torch.tensor([0.0, 0.0, 3.0])
    K = torch.tensor([[f, 0.0, SIZE / 2], [0.0, f, SIZE / 2], [0.0, 0.0, 1.0]])
    camera = Cameras(T[None], K[None], SIZE, SIZE)
    vertices = pose_motion_mesh(rig, motion).vertices[0]
    xy = project_points(vertices, camera)[0].numpy()
    tris = np.round(xy[rig.faces.numpy()] - 0.5).astype(np.int32)
    body = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(body, list(tris), 1)
    head = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(head, list(tris[(triangle_parts(rig) == PART_NAMES.index("head")).numpy()]), 1)
    photo = np.ones((SIZE, SIZE, 3), np.float32)
    photo[body > 0] = SKIN
    photo[head > 0] = HAIR
    chest = project_points(torch.tensor([[0.0, 0.3, 0.15]]), camera)[0, 0].numpy().astype(int)
    belly = project_points(torch.tensor([[0.0, 0.05, 0.15]]), camera)[0, 0].numpy().astype(int)
    obj = np.zeros((SIZE, SIZE), bool)
    obj[chest[1] - 6 : chest[1] + 6, chest[0] - 8 : chest[0] + 8] = True
    photo[obj] = GREEN
    hand = np.zeros((SIZE, SIZE), bool)
    hand[belly[1] - 5 : belly[1] + 5, belly[0] - 6 : belly[0] + 6] = True
    photo[hand] = MAGENTA
    parts = np.where((body > 0) & ~obj, LABEL_PERSON, LABEL_BACKGROUND)
    parts[hand & (body > 0)] = LABEL_HAND
    subject = Subject(
        torch.from_numpy(photo), torch.from_numpy(((body > 0) & ~obj).astype(np.float32)), rig, motion, camera,
        torch.from_numpy(parts),
    )  # fmt: skip
    g = bind_to_surface(rig, 12000, generator=torch.Generator().manual_seed(0))
    return subject, g


def _part(subject, g, name):
    return triangle_parts(subject.rig)[g.face_ids] == PART_NAMES.index(name)


def test_masked_and_hand_pixels_never_colour_the_torso(scene):
    subject, g = scene
    texture = photo_texture(g, subject, backend="torch")
    torso = _part(subject, g, "torso")
    c = texture.colours
    greenness = c[:, 1] - torch.maximum(c[:, 0], c[:, 2])
    magentaness = torch.minimum(c[:, 0], c[:, 2]) - c[:, 1]
    assert float(greenness.max()) < 0.0  # the held object reaches no Gaussian at all, seen or completed
    assert float(magentaness[torso].max()) < 0.35  # skin is 0.3 "magenta"; the hand region is 1.0
    seen_torso = texture.seen & torso
    assert int(seen_torso.sum()) > 200
    assert torch.allclose(c[seen_torso], torch.tensor(SKIN), atol=1e-4)


def test_back_facing_and_occluded_surface_is_not_seen(scene):
    subject, g = scene
    mesh = pose_motion_mesh(subject.rig, subject.motion)
    frames = triangle_frames(mesh.vertices[0], subject.rig.faces, g.face_ids, g.barycentric)
    to_camera = subject.camera.T_world_cam[0, :3, 3] - frames.points
    cos = (to_camera * frames.rotations[..., 2]).sum(-1) / to_camera.norm(dim=-1)
    # Without the z-buffer (huge tolerance) only the facing test stands between the back and the photo.
    no_zbuffer = photo_texture(g, subject, depth_tolerance=100.0, backend="torch")
    assert int((cos < 0).sum()) > 1000 and not bool((no_zbuffer.seen & (cos < MIN_FACING_COS)).any())
    # With it, the back of the torso (well behind its front) is never seen, though it faces away only partly.
    texture = photo_texture(g, subject, backend="torch")
    back = _part(subject, g, "torso") & (frames.points[:, 2] < -0.02)
    assert int(back.sum()) > 100 and not bool(texture.seen[back].any())


def test_unseen_torso_is_completed_from_the_torso_not_the_hair(scene):
    subject, g = scene
    texture = photo_texture(g, subject, backend="torch")
    hidden_torso = ~texture.seen & _part(subject, g, "torso")
    assert int(hidden_torso.sum()) > 500
    assert torch.allclose(texture.colours[hidden_torso], torch.tensor(SKIN), atol=0.02)
    hidden_head = ~texture.seen & _part(subject, g, "head")
    assert torch.allclose(texture.colours[hidden_head].mean(0), torch.tensor(HAIR), atol=0.05)


def test_segment_labels_hands_face_and_drops_a_second_blob():
    h = w = 160
    mask = np.zeros((h, w), np.float32)
    mask[40:150, 40:120] = 1.0  # the subject
    mask[10:30, 130:155] = 1.0  # a stray region (another person's shoulder)
    pose_xy = np.full((33, 2), 80.0, np.float32)
    visibility = np.ones(33, np.float32)
    for name, xy in {"nose": (80, 60), "left_shoulder": (100, 90), "right_shoulder": (60, 90)}.items():
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = xy
    for i, name in enumerate(("wrist", "index", "pinky", "thumb")):
        pose_xy[POSE_LANDMARK_NAMES.index(f"left_{name}")] = (95 + 3 * i, 120 + 2 * i)
        visibility[POSE_LANDMARK_NAMES.index(f"right_{name}")] = 0.1
    face = np.random.default_rng(0).uniform((70, 50), (90, 72), (478, 2)).astype(np.float32)
    face[:4] = [(70, 50), (90, 50), (90, 72), (70, 72)]
    det = Detections(w, h, pose_xy, visibility, np.zeros((33, 3), np.float32), mask, face, None, None, 1)
    labels = segment(det)
    assert labels[20, 140] == LABEL_BACKGROUND and labels[0, 0] == LABEL_BACKGROUND
    assert labels[60, 80] == 3 and labels[121, 98] == LABEL_HAND and labels[100, 60] == LABEL_PERSON
    assert labels[40, 60] == LABEL_BACKGROUND  # the outline is eroded: its pixels are half background
