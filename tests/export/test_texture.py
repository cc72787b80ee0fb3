"""The texture bake at its requested size: a square facing a camera whose render is one-pixel stripes, baked at
2048^2 (two texels per render pixel). Every texel takes the colour of the pixel its surface point projects to,
so the stripes come out sharp: a texture baked smaller and upsampled would blur them to grey."""

from __future__ import annotations

import numpy as np
import torch

from anchorsplat.export.extract import RGBDViews
from anchorsplat.export.texture import UVMesh, bake_texture
from anchorsplat.gaussians.conventions import Cameras, look_at

SIZE = 2048


def test_texels_are_baked_at_the_requested_size():
    vertices = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +Z: facing the camera
    uvs = np.stack([vertices[:, 0] + 0.5, 0.5 - vertices[:, 1]], 1)  # glTF: v down
    mesh = UVMesh(vertices, faces, uvs, np.arange(4))
    width = SIZE // 2
    # The camera 2 m in front, its frame exactly the square: pixel column = u * width.
    T = look_at(torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[0.0, 0.0, 0.0]]))
    K = torch.tensor([[[2.0 * width, 0, width / 2], [0, 2.0 * width, width / 2], [0, 0, 1]]])
    stripes = (np.arange(width) % 2).astype(np.float32)  # one-pixel columns: black, white, black, ...
    rgb = torch.from_numpy(np.broadcast_to(stripes[None, :, None], (width, width, 3)).copy())[None]
    views = RGBDViews(Cameras(T, K, width, width), rgb, torch.ones(1, width, width), torch.full((1, width, width), 2.0))
    texture = bake_texture(mesh, views, SIZE, tolerance=0.01)
    assert texture.shape == (SIZE, SIZE, 3)
    expected = (((np.arange(SIZE) // 2) % 2) * 255).astype(np.uint8)  # texel column c sees pixel column c // 2
    # The camera looks along -Z with +Y up on the image, so rows follow v as columns follow u.
    agree = (texture[..., 0] == expected[None, :]).mean()
    assert agree > 0.999, agree
