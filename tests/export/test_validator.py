"""The Khronos glTF validator (npm gltf-validator) on our .glb files.

The validator (2.0.0-dev.3.10, the newest release) predates the ratification of KHR_gaussian_splatting: it reports
the extension as unsupported (an info) and each ``KHR_gaussian_splatting:*`` attribute name as invalid (its rule
for names outside the core set is "start with an underscore"; the extension defines prefixed names). Those errors,
and only those, are expected: the check asserts that every other part of the file has no error and no warning.
"""

from __future__ import annotations

from jstools import run_node

from anchorsplat.gaussians.export_gltf import SPLAT_EXTENSION
from anchorsplat.gaussians.import_gltf import read_glb

PREFIX = f"{SPLAT_EXTENSION}:"


def _splat_attribute_pointers(path) -> set[str]:
    doc = read_glb(path).json
    out = set()
    for m, mesh in enumerate(doc["meshes"]):
        for p, primitive in enumerate(mesh["primitives"]):
            for name in primitive["attributes"]:
                if name.startswith(PREFIX):
                    out.add(f"/meshes/{m}/primitives/{p}/attributes/{name}")
    return out


def _check(path) -> dict:
    report = run_node("validate_gltf.mjs", path)
    unknown_extension = [m for m in report["messages"] if m["code"] == "UNSUPPORTED_EXTENSION"]
    assert [m["pointer"] for m in unknown_extension] in ([], ["/extensionsUsed/0"])
    errors = [m for m in report["messages"] if m["severity"] == 0]
    extension_names = {m["pointer"] for m in errors if m["code"] == "MESH_PRIMITIVE_INVALID_ATTRIBUTE"}
    assert extension_names == _splat_attribute_pointers(path)  # exactly the extension's attributes, nothing else
    others = [
        m for m in errors if m["code"] != "MESH_PRIMITIVE_INVALID_ATTRIBUTE" or m["pointer"] not in extension_names
    ]
    assert others == [], others
    assert report["numErrors"] == len(extension_names)
    assert report["numWarnings"] == 0, [m for m in report["messages"] if m["severity"] == 1]
    return report


def test_animated_synthetic_glb_has_no_validator_errors(node, exported, avatar):
    report = _check(exported["glb"])
    info = report["info"]
    assert info["animationCount"] == 1 and info["hasSkins"] and info["hasMorphTargets"] and info["drawCallCount"] == 2
    assert info["totalVertexCount"] == avatar.rig.num_vertices + len(avatar.gaussians)


def test_rest_pose_glb_has_no_validator_errors(node, exported):
    assert _check(exported["glb_rest"])["info"]["animationCount"] == 0


def test_anny_body_glb_has_no_validator_errors(node, body_glb, body_avatar):
    report = _check(body_glb)
    assert report["info"]["totalVertexCount"] == body_avatar.rig.num_vertices + len(body_avatar.gaussians)


def test_surface_glb_has_no_validator_errors_or_warnings(node, surface_glb, surface):
    """The surface-only file (no splat extension): nothing to filter, 0 errors and 0 warnings."""
    report = run_node("validate_gltf.mjs", surface_glb, timeout=300)
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report["messages"]
    info = report["info"]
    assert info["hasSkins"] and info["hasMorphTargets"] and info["hasTextures"] and info["animationCount"] == 1
