"""Identity embedding: dlib's face descriptor on real faces shipped with the repo (public-domain photos)."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

from PIL import Image  # noqa: E402

from anchorsplat.bake import identity  # noqa: E402
from anchorsplat.bake.identity import SAME_PERSON_DISTANCE, face_embedding, identity_distance  # noqa: E402
from anchorsplat.gaussians.assets import asset_path

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = asset_path("sample", "astronaut.png")
OTHER_PERSON = ROOT / "tests" / "data" / "bake" / "grace_hopper.jpg"  # see tests/data/bake/README.md


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return _rgb(ASTRONAUT)


@pytest.fixture(scope="module")
def astronaut_embedding(astronaut) -> np.ndarray:
    embedding = face_embedding(astronaut)
    assert embedding is not None and embedding.shape == (128,)
    return embedding


def test_same_face_shifted_and_scaled_is_close(astronaut, astronaut_embedding):
    crop = astronaut[20:480, 30:470]
    resized = np.asarray(Image.fromarray(crop).resize((400, 418), Image.Resampling.BILINEAR))
    assert identity_distance(astronaut_embedding, face_embedding(resized)) < 0.3


def test_another_person_is_far(astronaut_embedding):
    other = face_embedding(_rgb(OTHER_PERSON))
    assert other is not None
    d_other = identity_distance(astronaut_embedding, other)
    assert d_other > SAME_PERSON_DISTANCE


def test_most_confident_face_is_the_real_one(astronaut, astronaut_embedding):
    # dlib's HOG detector also fires on the mission patch (score ~0.1); the embedding must be of the real face,
    # so embedding the face box given explicitly gives the same descriptor.
    assert identity_distance(astronaut_embedding, face_embedding(astronaut, (175, 76, 265, 166))) < 1e-5


def test_no_face_gives_none():
    assert face_embedding(np.full((200, 200, 3), 90, np.uint8)) is None


def test_distance_is_euclidean():
    a, b = np.zeros(128, np.float32), np.zeros(128, np.float32)
    b[:4] = [0.3, 0.4, 0.0, 1.2]
    assert identity_distance(a, b) == pytest.approx(1.3)
    assert identity_distance(a, a) == 0.0


def test_models_are_loaded_once():
    assert identity._face_encoder() is identity._face_encoder()
    assert identity._shape_predictor() is identity._shape_predictor()


def test_rejects_non_rgb_arrays():
    with pytest.raises(TypeError):
        face_embedding(np.zeros((64, 64), np.uint8))
