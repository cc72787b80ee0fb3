"""VRM 1.0 export: the VRMC_vrm humanoid map from the rig, ARKit -> VRM expression presets, look-at and meta;
the Khronos validator on the file."""

from __future__ import annotations

import pytest
from jstools import run_node

from anchorsplat.gaussians.export_vrm import PRESETS, REQUIRED_BONES, VRM_EXTENSION, export_vrm, humanoid_bones
from anchorsplat.gaussians.import_gltf import read_glb

EXPECTED_ANNY = {
    "hips": "root", "spine": "spine05", "chest": "spine03", "upperChest": "spine02", "neck": "neck01",
    "head": "head", "leftUpperArm": "upperarm01.L", "leftLowerArm": "lowerarm01.L", "leftHand": "wrist.L",
    "rightUpperArm": "upperarm01.R", "rightLowerArm": "lowerarm01.R", "rightHand": "wrist.R",
    "leftUpperLeg": "upperleg01.L", "leftLowerLeg": "lowerleg01.L", "leftFoot": "foot.L",
    "rightUpperLeg": "upperleg01.R", "rightLowerLeg": "lowerleg01.R", "rightFoot": "foot.R",
    "leftShoulder": "clavicle.L", "rightShoulder": "clavicle.R", "leftEye": "eye.L", "rightEye": "eye.R",
}  # fmt: skip


def _vrm(path) -> tuple[dict, dict]:
    doc = read_glb(path).json
    return doc, doc["extensions"][VRM_EXTENSION]


def test_humanoid_bones_follow_the_rig(body_vrm, body_avatar):
    doc, vrm = _vrm(body_vrm)
    assert vrm["specVersion"] == "1.0" and VRM_EXTENSION in doc["extensionsUsed"]
    bones = {name: doc["nodes"][b["node"]]["name"] for name, b in vrm["humanoid"]["humanBones"].items()}
    assert set(REQUIRED_BONES) <= set(bones)
    assert {k: bones[k] for k in EXPECTED_ANNY} == EXPECTED_ANNY
    parents = {c: p for p, node in enumerate(doc["nodes"]) for c in node.get("children", [])}

    def ancestors(node: int) -> set[int]:
        out = set()
        while node in parents:
            node = parents[node]
            out.add(node)
        return out

    nodes = {name: b["node"] for name, b in vrm["humanoid"]["humanBones"].items()}
    pairs = [("leftHand", "leftLowerArm"), ("leftLowerArm", "leftUpperArm"), ("rightFoot", "rightLowerLeg"),
             ("head", "neck"), ("neck", "upperChest"), ("spine", "hips"), ("leftUpperLeg", "hips")]  # fmt: skip
    for child, parent in pairs:
        assert nodes[parent] in ancestors(nodes[child]), (child, parent)


def test_expression_presets_bind_the_arkit_morph_targets(body_vrm, body_avatar):
    doc, vrm = _vrm(body_vrm)
    names = body_avatar.rig.expression_names
    surface = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "surface")
    targets = doc["meshes"][doc["nodes"][surface]["mesh"]]["extras"]["targetNames"]
    assert targets == list(names)
    preset = vrm["expressions"]["preset"]
    for required in ("aa", "ih", "ou", "ee", "oh", "blink", "happy", "angry", "sad", "relaxed", "surprised"):
        assert required in preset, required
    assert preset["aa"]["morphTargetBinds"] == [{"node": surface, "index": names.index("jawOpen"), "weight": 1.0}]
    for name, expression in preset.items():
        bound = {targets[b["index"]]: b["weight"] for b in expression["morphTargetBinds"]}
        assert bound == PRESETS[name] and all(b["node"] == surface for b in expression["morphTargetBinds"])
    assert vrm["lookAt"]["type"] == "expression" and {"lookUp", "lookDown", "lookLeft", "lookRight"} <= set(preset)
    meta = vrm["meta"]
    assert meta["name"] == "body" and meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/" and meta["authors"]


def test_vrm_has_no_validator_errors_or_warnings(node, body_vrm):
    report = run_node("validate_gltf.mjs", body_vrm)
    assert [m["pointer"] for m in report["messages"] if m["code"] == "UNSUPPORTED_EXTENSION"] == ["/extensionsUsed/0"]
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report["messages"]


def test_rig_without_humanoid_bones_is_refused(avatar, surface, tmp_path):
    with pytest.raises(ValueError, match="no joint for the VRM humanoid bones"):
        humanoid_bones(avatar.rig)
    with pytest.raises(ValueError, match="must end in .vrm"):
        export_vrm(avatar, tmp_path / "a.glb", surface)
