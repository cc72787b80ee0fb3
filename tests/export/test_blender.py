"""Headless Blender (Debian's ``blender``, its bundled glTF importer) imports the surface glb: an armature with the
rig's bones, the mesh (and no other: Blender also imports nodes outside the scene) with the 52 ARKit shape keys,
skinned to the armature, and the image texture in its material.

CI installs Blender (``scripts/setup_test_tools.sh``); a machine without it skips this test, saying so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

BLENDER = shutil.which("blender")
pytestmark = pytest.mark.skipif(BLENDER is None, reason="blender is not installed (scripts/setup_test_tools.sh)")

SCRIPT = """
import bpy, json, sys
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=sys.argv[-1])
out = {"armatures": [], "meshes": []}
for o in bpy.data.objects:
    if o.type == "ARMATURE":
        out["armatures"].append([b.name for b in o.data.bones])
    elif o.type == "MESH":
        keys = o.data.shape_keys.key_blocks[1:] if o.data.shape_keys else []
        images = [n.image for m in o.data.materials if m and m.use_nodes for n in m.node_tree.nodes
                  if n.type == "TEX_IMAGE" and n.image]
        parent = o.parent.type if o.parent else None
        out["meshes"].append({"name": o.name, "shapeKeys": [k.name for k in keys], "parent": parent,
                              "images": [list(i.size) for i in images], "groups": len(o.vertex_groups),
                              "armature": any(m.type == "ARMATURE" and m.object for m in o.modifiers),
                              "shown": o.visible_get() and not o.hide_render and o.name in bpy.context.scene.objects,
                              "collections": [c.name for c in o.users_collection]})
print("ANCHORSPLAT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def body_surface_glb(tmp_path_factory, body_avatar, body_surface):
    from anchorsplat.gaussians.export_gltf import export_glb

    return export_glb(body_avatar, tmp_path_factory.mktemp("blender") / "body.glb", surface=body_surface, splats=False)


def test_blender_imports_armature_shape_keys_and_texture(body_surface_glb, body_avatar, body_surface):
    import numpy

    # Blender's glTF importer needs numpy with ``np.bool`` (1.x before 1.24, or 2.x): give it this interpreter's own
    # instead of whatever the system Python has (Debian bookworm's 1.24 lacks it)
    env = dict(os.environ, PYTHONPATH=str(Path(numpy.__file__).parents[1]))
    run = subprocess.run(
        [BLENDER, "-b", "--factory-startup", "--python-use-system-env", "--python-expr", SCRIPT, "--",
         str(body_surface_glb)],
        capture_output=True, text=True, timeout=240, check=False, env=env,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("ANCHORSPLAT ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(lines[-1].split(" ", 1)[1])
    rig = body_avatar.rig
    (bones,) = out["armatures"]
    assert sorted(bones) == sorted(rig.joint_names)
    (mesh,) = out["meshes"]  # the surface alone: no mannequin (the rig's body mesh) beside it
    assert mesh["name"] == "surface" and mesh["shown"] and mesh["parent"] == "ARMATURE"
    assert mesh["shapeKeys"] == list(rig.expression_names) and len(mesh["shapeKeys"]) == 52
    assert mesh["armature"] and mesh["groups"] > 0  # skinned to the armature
    assert mesh["images"] == [[body_surface.texture.shape[1], body_surface.texture.shape[0]]]
