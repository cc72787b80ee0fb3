"""The face is textured from the face: a head turned 40 degrees (a 3/4 photo) whose hidden half-face must be
completed with skin from the seen half, not with the hair around it, and whose cheek takes no colour from a lock
of hair that the face oval leaves out."""

import numpy as np
import pytest
import torch

from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.diffusion.generator import Subject
from anchorsplat.diffusion.texture import (
    LABEL_FACE,
    LABEL_PERSON,
    face_zone,
    head_density,
    photo_texture,
)
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import bind_to_surface, canonical_means, pose_motion_mesh

SKIN = (0.85, 0.65, 0.55)
HAIR = (0.15, 0.1, 0.05)
SIZE = 200
YAW = 0.7  # radians, about 40 degrees: toward the person's left


@pytest.fixture(scope="module")
def turned_head():
    """Anny with the head turned by YAW, seen from the front at the head: a photo whose face (the rig's face zone,
    labelled face as FaceMesh's oval would be) is skin and the rest of the head hair, with a lock of hair
    (labelled person: outside the oval) over the seen cheek."""
    import cv2

    rig = load_rig(asset_path("anny_default.rig.safetensors"))
    full = torch.zeros(1, 55, 3)
    full[0, SMPLX_JOINT_NAMES.index("head"), 1] = YAW
    motion = Motion.from_full_pose(full)
    f = 300.0
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = -T[:3, :3] @ torch.tensor([0.0, 0.68, 0.6])
    K = torch.tensor([[f, 0.0, SIZE / 2], [0.0, f, SIZE / 2], [0.0, 0.0, 1.0]])
    camera = Cameras(T[None], K[None], SIZE, SIZE)
    vertices = pose_motion_mesh(rig, motion).vertices[0]
    xy = project_points(vertices, camera)[0].numpy()
    depth = (vertices @ T[:3, :3].T + T[:3, 3])[:, 2].numpy()
    faces = rig.faces.numpy()
    is_face = face_zone(rig).numpy()
    # Far to near, so the nearest triangle's colour and label win (a painter's z-buffer).
    photo = np.ones((SIZE, SIZE, 3), np.float32)
    labels = np.zeros((SIZE, SIZE), np.int32)
    for i in np.argsort(-depth[faces].mean(1)):
        corners = np.round(xy[faces[i]] - 0.5).astype(np.int32)
        cv2.fillConvexPoly(photo, corners, SKIN if is_face[i] else HAIR)
        cv2.fillConvexPoly(labels, corners, LABEL_FACE if is_face[i] else LABEL_PERSON)
    # The lock of hair: over the face's outer third on the seen side (the person's right, the image's left).
    face_cols = np.nonzero((labels == LABEL_FACE).any(0))[0]
    lock = np.zeros((SIZE, SIZE), bool)
    lock[:, face_cols[0] : face_cols[0] + len(face_cols) // 3] = True
    lock &= labels == LABEL_FACE
    photo[lock], labels[lock] = HAIR, LABEL_PERSON
    subject = Subject(torch.from_numpy(photo), torch.from_numpy((labels > 0).astype(np.float32)), rig, motion,
                      camera, torch.from_numpy(labels))  # fmt: skip
    g = bind_to_surface(rig, 20000, generator=torch.Generator().manual_seed(0), face_density=head_density(rig, 4.0))
    return subject, g


def _hair_share(colours: torch.Tensor) -> torch.Tensor:
    """Where each colour lies between SKIN (0) and HAIR (1)."""
    skin, hair = torch.tensor(SKIN), torch.tensor(HAIR)
    return ((colours - skin) @ (hair - skin)) / float((hair - skin) @ (hair - skin))


def test_hidden_half_face_is_completed_with_skin_not_hair(turned_head):
    subject, g = turned_head
    texture = photo_texture(g, subject, backend="torch")
    face = face_zone(subject.rig)[g.face_ids]
    # The face's half turned away (the person's left, +x in the rest frame) is hidden from the photo.
    far_half = face & (canonical_means(g, subject.rig)[:, 0] > 0.03)
    hidden = far_half & ~texture.seen
    assert int(hidden.sum()) > 200
    assert float(_hair_share(texture.colours[hidden]).max()) < 0.25


def test_hair_outside_the_face_oval_never_colours_the_face(turned_head):
    subject, g = turned_head
    texture = photo_texture(g, subject, backend="torch")
    face = face_zone(subject.rig)[g.face_ids]
    assert int((face & texture.seen).sum()) > 300
    assert float(_hair_share(texture.colours[face]).max()) < 0.25
    # the rest of the head still takes the hair: the rule splits the head, it does not drop the photo
    head = ~face & texture.seen & (canonical_means(g, subject.rig)[:, 1] > 0.75)
    assert int(head.sum()) > 100 and float(_hair_share(texture.colours[head]).mean()) > 0.9
