"""Fixtures for the export tests: a tiny synthetic avatar, a seeded motion, the exported files (made once per
session), and the external checkers: node with the npm packages of ``tests/export/js`` (gltf-validator, three,
Babylon.js, playwright-core; ``npm ci --prefix tests/export/js``) and the system Chromium (Debian package ``chromium``).

CI installs all of them, so a missing package or browser fails the test with the command that installs it.
Only a machine without node at all skips these checks (saying so); ``ANCHORSPLAT_REQUIRE_EXPORT_TOOLS=1`` turns
that skip into a failure too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from jstools import JS_DIR

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.io import Avatar
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rigged import bind_to_surface
from anchorsplat.gaussians.synthetic import synthetic_rig

REQUIRE_TOOLS = os.environ.get("ANCHORSPLAT_REQUIRE_EXPORT_TOOLS") == "1"
NPM_HINT = f"run `npm ci --prefix {JS_DIR}`"


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        message = "node is not installed (Debian packages nodejs and npm), so the JavaScript checks cannot run"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    for package in ("gltf-validator", "three", "playwright-core", "@babylonjs/core", "@babylonjs/loaders"):
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"the npm package {package} is not installed in {JS_DIR}: {NPM_HINT}")
    return path


@pytest.fixture(scope="session")
def chromium(node) -> str:
    path = os.environ.get("ANCHORSPLAT_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(f"headless Chromium is not at {path}: `apt-get install -y chromium` or set ANCHORSPLAT_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def avatar() -> Avatar:
    """The synthetic rig (11 joints, 2 blendshapes) with 96 varied Gaussians (SH degree 1), lifted off the surface."""
    rig = synthetic_rig()
    gaussians = bind_to_surface(rig, 96, sh_degree=1, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    n = len(gaussians)
    gaussians = type(gaussians)(
        gaussians.face_ids, gaussians.barycentric, 0.01 * torch.randn(n, generator=g),
        torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        gaussians.log_scales + 0.3 * torch.randn(n, 3, generator=g), 3 * torch.randn(n, generator=g),
        gaussians.sh_coeffs + 0.2 * torch.randn(gaussians.sh_coeffs.shape, generator=g),
    )  # fmt: skip
    return Avatar(rig, gaussians, {"name": "synthetic test avatar"})


@pytest.fixture(scope="session")
def motion() -> Motion:
    """Five frames at 10 fps: random joint rotations (0.4 rad std; frame 0 is the rest pose), a root translation,
    both blendshapes and one channel the rig does not have."""
    g = torch.Generator().manual_seed(3)
    full = 0.4 * torch.randn(5, 55, 3, generator=g)
    full[0] = 0.0
    transl = 0.1 * torch.randn(5, 3, generator=g)
    transl[0] = 0.0
    expression = torch.rand(5, 3, generator=g)
    expression[0] = 0.0
    return Motion.from_full_pose(full, transl, expression, ("jawOpen", "eyeBlinkLeft", "notInTheRig"), 10.0)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, avatar, motion) -> dict[str, Path]:
    """The avatar exported once in every format: an animated glb, a rest-pose glb, ply, spz and a web folder."""
    from anchorsplat.gaussians.export_gltf import export_glb
    from anchorsplat.gaussians.export_web import export_web
    from anchorsplat.gaussians.ply import save_ply
    from anchorsplat.gaussians.rigged import canonical_posed
    from anchorsplat.gaussians.spz import save_spz

    root = tmp_path_factory.mktemp("exported")
    rest = canonical_posed(avatar.gaussians, avatar.rig)
    return {
        "glb": export_glb(avatar, root / "animated.glb", motion=motion),
        "glb_rest": export_glb(avatar, root / "rest.glb"),
        "ply": save_ply(root / "rest.ply", rest),
        "spz": save_spz(root / "rest.spz", rest),
        "web": export_web(avatar, root / "web", motion=motion),
    }


BODY_AVATAR = asset_path("body.anchorsplat")


@pytest.fixture(scope="session")
def body_avatar() -> Avatar:
    """The shipped demo avatar on the default Anny rig (104 joints, 52 ARKit blendshapes)."""
    from anchorsplat.gaussians.io import load_avatar

    if not BODY_AVATAR.is_file():
        pytest.fail(f"{BODY_AVATAR} is missing: it ships with the repository (scripts/make_body_avatar.py makes it)")
    return load_avatar(BODY_AVATAR)


@pytest.fixture(scope="session")
def body_motion(body_avatar) -> Motion:
    """Three frames at 30 fps: rest, then random body rotations (0.3 rad std) with jaw and blink."""
    g = torch.Generator().manual_seed(4)
    full = 0.3 * torch.randn(3, 55, 3, generator=g)
    full[0] = 0.0
    expression = torch.tensor([[0.0, 0.0], [0.8, 0.3], [0.4, 1.0]])
    return Motion.from_full_pose(full, torch.zeros(3, 3), expression, ("jawOpen", "eyeBlinkLeft"), 30.0)


@pytest.fixture(scope="session")
def body_glb(tmp_path_factory, body_avatar, body_motion) -> Path:
    from anchorsplat.gaussians.export_gltf import export_glb

    return export_glb(body_avatar, tmp_path_factory.mktemp("body") / "body.glb", motion=body_motion)


SURFACE_OPTIONS = dict(max_triangles=1500, texture_size=64, render_resolution=160, mouth=False)
"""Tiny budgets for the surface tests (the defaults are 30k triangles, 2048^2 texture, 384^2 renders). No mouth
cavity: the synthetic rig's "jawOpen" drops its whole head box's bottom ring, it has no lips (test_mouth.py and
the sample face in test_face.py check the mouth)."""


@pytest.fixture(scope="session")
def dense_avatar() -> Avatar:
    """The synthetic rig covered by 3000 opaque Gaussians coloured by height (red feet, green waist, blue head):
    dense enough for a closed surface, coloured so a wrong texel lookup shows."""
    rig = synthetic_rig()
    gaussians = bind_to_surface(rig, 3000, sh_degree=0, generator=torch.Generator().manual_seed(5))
    tri = rig.vertices_rest[rig.faces[gaussians.face_ids]]
    means = (gaussians.barycentric[:, :, None] * tri).sum(1)
    t = ((means[:, 1] - 0.05) / 1.75).clamp(0, 1)[:, None]
    rgb = torch.cat([(1 - 2 * t).clamp(0, 1), 1 - (2 * t - 1).abs(), (2 * t - 1).clamp(0, 1)], 1)
    from anchorsplat.gaussians.rigged import rgb_to_sh_dc

    sh = rgb_to_sh_dc(0.1 + 0.8 * rgb)[:, None]
    gaussians = type(gaussians)(
        gaussians.face_ids, gaussians.barycentric, gaussians.normal_offsets, gaussians.quats_canonical_wxyz,
        gaussians.log_scales, torch.full_like(gaussians.opacity_logits, 4.0), sh,
    )  # fmt: skip
    return Avatar(rig, gaussians, {"name": "dense synthetic avatar"})


@pytest.fixture(scope="session")
def surface(dense_avatar):
    from anchorsplat.export.surface import SurfaceOptions, extract_surface

    return extract_surface(dense_avatar, SurfaceOptions(**SURFACE_OPTIONS))


@pytest.fixture(scope="session")
def surface_glb(tmp_path_factory, dense_avatar, surface, motion) -> Path:
    from anchorsplat.gaussians.export_gltf import export_glb

    path = tmp_path_factory.mktemp("surface") / "surface.glb"
    return export_glb(dense_avatar, path, motion=motion, surface=surface, splats=False)


@pytest.fixture(scope="session")
def body_surface(body_avatar):
    """The Anny body's own mesh as a surface (planar UVs, a flat texture, the rig's skinning and 52 expressions):
    the VRM and glb structure does not depend on how the surface was made, and this costs no extraction."""
    import numpy as np

    from anchorsplat.gaussians.surface import SkinnedSurface

    rig = body_avatar.rig
    v = rig.vertices_rest
    uvs = (v[:, :2] - v[:, :2].min(0).values) / (v[:, :2].max(0).values - v[:, :2].min(0).values)
    return SkinnedSurface(
        v, rig.faces, torch.stack([uvs[:, 0], 1 - uvs[:, 1]], 1), np.full((16, 16, 3), 180, np.uint8),
        rig.skin_indices, rig.skin_weights, rig.expression_dirs,
    )  # fmt: skip


@pytest.fixture(scope="session")
def body_vrm(tmp_path_factory, body_avatar, body_surface) -> Path:
    """The Anny body avatar as VRM, with the rig's own mesh as its surface."""
    from anchorsplat.gaussians.export_vrm import export_vrm

    return export_vrm(body_avatar, tmp_path_factory.mktemp("vrm") / "body.vrm", body_surface, name="body")
