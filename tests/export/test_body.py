"""The shipped Anny-rig demo avatar through the glb: the file's skinning against our triangle-bound posing (small
triangles, so the top-4 LBS conversion is close), and the round trip through the importer."""

from __future__ import annotations

import numpy as np
import torch
from gltf_skinning import skinned_positions

from anchorsplat.gaussians.import_gltf import import_glb, read_glb
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh
from anchorsplat.gaussians.rigged import pose


def test_file_skinning_follows_our_posing_of_the_anny_body(body_glb, body_avatar, body_motion):
    glb = read_glb(body_glb)
    rig = body_avatar.rig
    for key in (1, 2):
        inputs = motion_to_rig(body_motion.frame(slice(key, key + 1)), rig)
        mesh = pose_mesh(rig, inputs.joint_rotations, inputs.root_translation, inputs.expression).vertices[0].numpy()
        body = skinned_positions(glb, "body", key)
        # the body mesh is the rig reduced to top-4 weights per vertex (engines' limit)
        assert np.median(np.linalg.norm(body - mesh, axis=1)) < 1e-4
        bound = pose(body_avatar.gaussians, rig, inputs).means[0].numpy()
        error = np.linalg.norm(skinned_positions(glb, "gaussians", key) - bound, axis=1)
        assert np.median(error) < 5e-4 and np.quantile(error, 0.99) < 1e-2, (np.median(error), np.quantile(error, 0.99))


def test_anny_body_round_trip(body_glb, body_avatar, body_motion):
    back = import_glb(body_glb)
    assert back.rig.joint_names == body_avatar.rig.joint_names and len(back.gaussians) == len(body_avatar.gaussians)
    assert torch.equal(back.rig.skin_indices, body_avatar.rig.skin_indices)
    frame = body_motion.frame(slice(2, 3))
    a = pose(body_avatar.gaussians, body_avatar.rig, frame)
    b = pose(back.gaussians, back.rig, frame)
    torch.testing.assert_close(b.means, a.means, atol=1e-5, rtol=0)
