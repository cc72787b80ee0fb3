"""A textured, skinned surface mesh bound to a rig: what engines draw of an avatar (see ``anchorsplat.export``).

The surface is extracted from the Gaussians in the rest pose (so it has hair and clothing volume the body mesh
lacks), UV-unwrapped and textured, and rigged from the body: its own skinning weights and expression blendshapes
over the rig's skeleton and expression names. Posing it is posing a rig that has the surface as its mesh
(:meth:`SkinnedSurface.as_rig`), so it follows the same skeleton, retarget and motion as the Gaussians.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from .rig import Rig


@dataclass(frozen=True, eq=False)
class SkinnedSurface:
    """A UV-mapped triangle mesh with a colour texture, skinned to a rig's skeleton, with its expressions.

    Attributes:
        vertices_rest: rest-pose vertices (the rig's rest pose), meters; seams are split, so a vertex has one UV.
        faces: triangles, counter-clockwise seen from outside.
        uvs: texture coordinates, glTF convention (origin at the image's top-left, v down).
        texture: sRGB colour texture, H x W x 3 bytes (H and W powers of two).
        skin_indices / skin_weights: sparse skinning over the rig's joints; weights of a vertex sum to 1.
        expression_dirs: per-expression vertex offsets at weight 1, in the rig's ``expression_names`` order.
    """

    vertices_rest: Float[Tensor, "V 3"]
    faces: Int[Tensor, "F 3"]
    uvs: Float[Tensor, "V 2"]
    texture: np.ndarray
    skin_indices: Int[Tensor, "V K"]
    skin_weights: Float[Tensor, "V K"]
    expression_dirs: Float[Tensor, "E V 3"]

    def __post_init__(self) -> None:
        v = self.vertices_rest.shape[0]
        checks = [
            (self.vertices_rest.ndim == 2 and self.vertices_rest.shape[1] == 3, "vertices_rest must be V x 3"),
            (self.faces.ndim == 2 and self.faces.shape[1] == 3, "faces must be F x 3"),
            (tuple(self.uvs.shape) == (v, 2), "uvs must be V x 2"),
            (self.texture.ndim == 3 and self.texture.shape[2] == 3 and self.texture.dtype == np.uint8,
             "texture must be H x W x 3 uint8"),
            (self.skin_indices.shape == self.skin_weights.shape and self.skin_indices.shape[0] == v,
             "skinning must have one row per vertex"),
            (self.expression_dirs.ndim == 3 and self.expression_dirs.shape[1:] == (v, 3),
             "expression_dirs must be E V 3"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid surface: {message}")
        if self.faces.numel() and (int(self.faces.min()) < 0 or int(self.faces.max()) >= v):
            raise ValueError("invalid surface: a face index is out of range")

    @property
    def num_vertices(self) -> int:
        return self.vertices_rest.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    def as_rig(self, rig: Rig) -> Rig:
        """``rig`` with this surface as its mesh: pose it with :func:`~anchorsplat.gaussians.rig.pose_mesh` or
        :func:`~anchorsplat.gaussians.rigged.pose_motion_mesh` to pose the surface (no shape basis: the surface
        was extracted from one shaped subject)."""
        if self.expression_dirs.shape[0] != len(rig.expression_names):
            raise ValueError(
                f"the surface has {self.expression_dirs.shape[0]} expressions, the rig {len(rig.expression_names)}"
            )
        device, dtype = rig.vertices_rest.device, rig.vertices_rest.dtype
        return dataclasses.replace(
            rig,
            vertices_rest=self.vertices_rest.to(device, dtype),
            faces=self.faces.to(device),
            skin_indices=self.skin_indices.to(device),
            skin_weights=self.skin_weights.to(device, dtype),
            expression_dirs=self.expression_dirs.to(device, dtype),
            shape_names=(),
            shape_dirs=None,
            joint_shape_dirs=None,
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SkinnedSurface:
        def move(t: Tensor, floating: bool) -> Tensor:
            return t.to(device=device, dtype=dtype if floating else None)

        return SkinnedSurface(
            move(self.vertices_rest, True), move(self.faces, False), move(self.uvs, True), self.texture,
            move(self.skin_indices, False), move(self.skin_weights, True), move(self.expression_dirs, True),
        )  # fmt: skip
