"""An SMPL-X model folder (the user's download, loaded with the ``smplx`` package) -> :class:`~.rig.Rig`.

SMPL-X already uses our axes (+Y up, facing +Z, meters), rests in the T-pose and has world-aligned joint
rotations, so the conversion is direct: the shaped template, the joint regressor applied to it, the parents,
sparse top-k skinning weights, the expression PCA directions (named ``smplx_expr_000`` ... as in motion files)
and the shape directions (betas, with their joint directions). Pose correctives (``posedirs``) are not used.

The model files are never shipped (their licence forbids it): download them from :data:`SMPLX_DOWNLOAD_URL`
and pass ``--smplx-dir`` or set ``SMPLX_MODEL_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .motion import SMPLX_JOINT_NAMES
from .rig import Rig

SMPLX_DOWNLOAD_URL = "https://smpl-x.is.tue.mpg.de"
SMPLX_ENV = "SMPLX_MODEL_DIR"
SKIN_TOP_K = 8
GENDERS = ("neutral", "male", "female")


def _missing(message: str) -> ValueError:
    return ValueError(
        f"{message}; download the SMPL-X model (SMPLX_NEUTRAL.npz) from {SMPLX_DOWNLOAD_URL} and point "
        f"--smplx-dir or the {SMPLX_ENV} environment variable at its folder"
    )


def find_smplx_file(smplx_dir: str | os.PathLike | None = None, gender: str = "neutral") -> Path:
    """The model file for ``gender`` in ``smplx_dir`` (or ``$SMPLX_MODEL_DIR``): the folder itself, its
    ``smplx/`` subfolder, or a direct path to an ``.npz`` / ``.pkl`` file."""
    if gender not in GENDERS:
        raise ValueError(f"SMPL-X gender {gender!r} is not one of {', '.join(GENDERS)}")
    if smplx_dir is None:
        smplx_dir = os.environ.get(SMPLX_ENV)
        if not smplx_dir:
            raise _missing(f"no SMPL-X model folder given and {SMPLX_ENV} is not set")
    root = Path(smplx_dir).expanduser()
    if root.is_file():
        return root
    if not root.is_dir():
        raise _missing(f"SMPL-X model folder {root} does not exist")
    for folder in (root, root / "smplx"):
        for suffix in (".npz", ".pkl"):
            candidate = folder / f"SMPLX_{gender.upper()}{suffix}"
            if candidate.is_file():
                return candidate
    raise _missing(f"no SMPLX_{gender.upper()}.npz or .pkl in {root}")


def smplx_rig(
    smplx_dir: str | os.PathLike | None = None,
    gender: str = "neutral",
    betas: Tensor | None = None,
    num_betas: int = 10,
    num_expressions: int = 10,
    dtype: torch.dtype = torch.float32,
) -> Rig:
    """Build a :class:`Rig` from an SMPL-X model file.

    Args:
        smplx_dir: folder holding ``SMPLX_NEUTRAL.npz`` (or a file path); default ``$SMPLX_MODEL_DIR``.
        gender: ``neutral``, ``male`` or ``female``.
        betas: shape coefficients baked into the rest mesh (the rest stay available as ``shape_dirs``).
        num_betas / num_expressions: size of the shape and expression bases kept.
    """
    path = find_smplx_file(smplx_dir, gender)
    try:
        import smplx
    except ImportError:
        raise ValueError("building an SMPL-X rig needs the 'smplx' package: pip install 'anchorsplat[body]'") from None
    try:
        model = smplx.SMPLX(
            str(path), gender=gender, num_betas=num_betas, num_expression_coeffs=num_expressions, use_pca=False,
            flat_hand_mean=True, ext=path.suffix.lstrip("."), dtype=torch.float64,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is not a usable model
        raise _missing(f"{path} is not a readable SMPL-X model file ({type(exc).__name__}: {exc})") from None
    return _rig_from_model(model, betas, dtype, path)


def _rig_from_model(model, betas: Tensor | None, dtype: torch.dtype, path: Path) -> Rig:
    J_regressor = model.J_regressor.double()
    if J_regressor.shape[0] < len(SMPLX_JOINT_NAMES):
        raise _missing(f"{path} has {J_regressor.shape[0]} joints, not SMPL-X's {len(SMPLX_JOINT_NAMES)}")
    J_regressor = J_regressor[: len(SMPLX_JOINT_NAMES)]
    shape_dirs = model.shapedirs.double().permute(2, 0, 1)  # S V 3
    vertices = model.v_template.double()
    if betas is not None:
        betas = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
        if betas.shape[0] > shape_dirs.shape[0]:
            raise ValueError(f"{betas.shape[0]} betas given but the rig keeps {shape_dirs.shape[0]}")
        vertices = vertices + torch.einsum("s,svc->vc", betas, shape_dirs[: betas.shape[0]])
    expression_dirs = model.expr_dirs.double().permute(2, 0, 1)
    top_w, skin_indices = model.lbs_weights.double().topk(SKIN_TOP_K, dim=1)
    parents = model.parents.long()[: len(SMPLX_JOINT_NAMES)].clone()
    parents[0] = -1
    n = len(SMPLX_JOINT_NAMES)
    rig = Rig(
        kind="smplx", vertices_rest=vertices, faces=model.faces_tensor.long(), joint_names=SMPLX_JOINT_NAMES,
        parents=parents, joints_rest=J_regressor @ vertices, skin_indices=skin_indices,
        skin_weights=top_w / top_w.sum(1, keepdim=True).clamp_min(1e-12),
        expression_names=tuple(f"smplx_expr_{i:03d}" for i in range(expression_dirs.shape[0])),
        expression_dirs=expression_dirs, smplx_source=torch.arange(n),
        smplx_fraction=torch.ones(n, dtype=torch.float64),
        shape_names=tuple(f"beta_{i:03d}" for i in range(shape_dirs.shape[0])), shape_dirs=shape_dirs,
        joint_shape_dirs=torch.einsum("jv,svc->sjc", J_regressor, shape_dirs),
        info={"source": "smplx", "model_file": path.name, "betas": [] if betas is None else betas.tolist()},
    )  # fmt: skip
    return rig.to(dtype=dtype)
