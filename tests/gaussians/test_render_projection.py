"""The torch renderer's projection against an independent pinhole camera (plain numpy, float64): where each small
Gaussian lands in the image is where a textbook projection of its centre puts it (pixel centres at +0.5)."""

import numpy as np
import pytest
import torch

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import PosedGaussians, rgb_to_sh_dc


def _pinhole(eye, target, up_hint, fx, fy, cx, cy):
    """World -> camera (OpenCV: +X right, +Y down, +Z forward) built from a look-at, and its projection."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up_hint)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world coordinates

    def project(points):
        p = (points - eye) @ R.T
        return np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], -1)

    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, -R @ eye
    return T, project


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splat_centres_land_where_a_pinhole_projects_them(seed):
    rng = np.random.default_rng(seed)
    eye = rng.uniform(-3, 3, 3) + np.array([0.0, 0.0, 4.0])
    target = rng.uniform(-0.3, 0.3, 3)
    width, height = 96, 72
    fx, fy, cx, cy = 80.0 + 20 * rng.random(), 70.0 + 20 * rng.random(), 45.3 + rng.random(), 37.1 + rng.random()
    T, project = _pinhole(eye, target, np.array([0.0, -1.0, 0.0]), fx, fy, cx, cy)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    cameras = Cameras(torch.tensor(T)[None], torch.tensor(K)[None], width, height)
    forward = (target - eye) / np.linalg.norm(target - eye)
    points = []
    while len(points) < 6:  # points in front of the camera that project well inside the image
        p = target + rng.uniform(-0.6, 0.6, 3)
        uv = project(p[None])[0]
        if 12 < uv[0] < width - 12 and 12 < uv[1] < height - 12:
            points.append(p)
    expected = project(np.array(points))
    for point, uv in zip(points, expected, strict=True):
        depth = float((point - eye) @ forward)
        sigma = 0.8 * depth / fx  # about 0.8 px on screen
        posed = PosedGaussians(
            torch.tensor(point)[None, None], torch.tensor([[[1.0, 0, 0, 0]]], dtype=torch.float64),
            torch.full((1, 1, 3), sigma, dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64),
            rgb_to_sh_dc(torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64))[:, None],
        )  # fmt: skip
        out = render(posed, cameras, backend="torch")
        alpha = out.alpha[0, 0, ..., 0].numpy()
        ys, xs = np.mgrid[0:height, 0:width] + 0.5  # pixel (i, j) is sampled at its centre
        centroid = np.array([(alpha * xs).sum(), (alpha * ys).sum()]) / alpha.sum()
        np.testing.assert_allclose(centroid, uv, atol=0.02)
        assert float(out.depth[0, 0, int(uv[1]), int(uv[0]), 0]) == pytest.approx(depth, rel=1e-9)
