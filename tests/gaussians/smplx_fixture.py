"""A tiny synthetic model file in the SMPL-X .npz layout (same keys and shapes per vertex/joint), so the SMPL-X
rig builder and the real ``smplx`` package can be tested without the licensed model: one small box per joint,
skinned rigidly to it, with random shape and expression directions and no pose correctives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, SMPLX_PARENTS

_BOX = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_BOX_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4],
     [1, 5, 7], [1, 7, 3]]
)  # fmt: skip


def _offset(name: str) -> np.ndarray:
    side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
    if any(k in name for k in ("hip", "knee", "ankle", "foot")):
        return np.array([0.06 * side, -0.2, 0.0])
    if any(k in name for k in ("index", "middle", "ring", "pinky", "thumb")):
        return np.array([0.025 * side, 0.0, 0.01])
    if any(k in name for k in ("collar", "shoulder", "elbow", "wrist")):
        return np.array([0.12 * side, 0.0, 0.0])
    if "eye" in name:
        return np.array([0.03 * side, 0.05, 0.08])
    return np.array([0.0, 0.12, 0.0])


def write_synthetic_smplx(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    parents = list(SMPLX_PARENTS)
    joints = np.zeros((55, 3))
    for j, name in enumerate(SMPLX_JOINT_NAMES):
        if parents[j] >= 0:
            joints[j] = joints[parents[j]] + _offset(name)
    v_template = (joints[:, None, :] + 0.01 * _BOX[None]).reshape(-1, 3)
    n = v_template.shape[0]
    weights = np.zeros((n, 55))
    weights[np.arange(n), np.arange(n) // 8] = 1.0
    J_regressor = weights.T / 8.0
    faces = (np.arange(55)[:, None, None] * 8 + _BOX_FACES[None]).reshape(-1, 3)
    kintree = np.stack([np.array([4294967295] + parents[1:], dtype=np.int64), np.arange(55)])
    shapedirs = 0.01 * rng.standard_normal((n, 3, 400))
    # smplx regresses joints after adding expressions; zero-mean expression offsets per box keep joints fixed,
    # as the real model's face-local expressions nearly do.
    expr = shapedirs[:, :, 300:].reshape(55, 8, 3, 100)
    shapedirs[:, :, 300:] = (expr - expr.mean(1, keepdims=True)).reshape(n, 3, 100)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SMPLX_NEUTRAL.npz"
    np.savez(
        path, v_template=v_template, f=faces.astype(np.int64), J_regressor=J_regressor, weights=weights,
        kintree_table=kintree, shapedirs=shapedirs, posedirs=np.zeros((n, 3, 486)),
        hands_componentsl=np.eye(45), hands_componentsr=np.eye(45), hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45), lmk_faces_idx=np.zeros(51, dtype=np.int64), lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=np.zeros((79, 17), dtype=np.int64), dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
    )  # fmt: skip
    return path
