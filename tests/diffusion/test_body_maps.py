from __future__ import annotations

import torch

from anchorsplat.diffusion.body_maps import render_body_maps, to_latent_grid
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig


def test_body_maps_geometry():
    rig = synthetic_rig()
    cams = framing_cameras(rig.vertices_rest, torch.tensor([0.0]), width=48, height=48)
    maps = render_body_maps(rig, Motion.zeros(1), cams)
    hit = maps.mask[0] > 0
    assert 0.02 < hit.float().mean() < 0.9
    # visible surfaces face the camera: normal z (OpenCV, +Z forward) is negative on most body pixels
    assert (maps.normals[0][hit][:, 2] < 0).float().mean() > 0.9
    # depth agrees with the distance from the camera to the body centre, give or take the body's depth
    centre = rig.vertices_rest.mean(0)
    dist = (cams.T_cam_world[0, :3, :3] @ centre + cams.T_cam_world[0, :3, 3])[2]
    assert (maps.depth[0][hit] - dist).abs().max() < 0.5
    # face pixels (vertices moved by expression blendshapes) are a small part of the silhouette
    assert 0 < maps.face[0].sum() < hit.sum()
    assert torch.all(maps.face[0][~hit] == 0)


def test_latent_grid_alignment():
    maps = torch.arange(9.0).view(9, 1, 1, 1).expand(9, 2, 16, 16)
    grid = to_latent_grid(maps, 4, 8)
    assert grid.shape == (2, 3, 2, 2)
    assert torch.allclose(grid[0, :, 0, 0], torch.tensor([0.0, 2.5, 6.5]))
